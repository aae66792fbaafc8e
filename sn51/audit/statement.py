"""A provider's statement: what it earned, why, and what was paid, from derived events (a replay of the log,
or what the services published)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DayView:
    day: str
    figures: dict[str, Any] | None = None
    prices: dict[str, str] | None = None
    earnings: list[dict[str, Any]] = field(default_factory=list)
    payouts: list[dict[str, Any]] = field(default_factory=list)


def build(events: Iterable[dict[str, Any]], hotkey: str, first: str | None, last: str | None) -> list[DayView]:
    days: dict[str, DayView] = {}

    def view(day: str) -> DayView:
        return days.setdefault(day, DayView(day))

    payouts: list[dict[str, Any]] = []
    for e in events:
        t, d = e.get("type"), e.get("data", {})
        if t == "earnings.accrued" and d.get("hotkey") == hotkey:
            view(d["billing_day"]).earnings.append({
                "kind": d["kind"], "executor_id": d["executor_id"], "cause_id": d["cause_id"],
                "amount_rao": d.get("amount_rao"), "amount_usd_micros": d.get("amount_usd_micros")})
        elif t == "day.closed":
            for p in d.get("providers", []):
                if p["hotkey"] == hotkey:
                    v = view(d["billing_day"])
                    v.figures, v.prices = p, d["prices"]
        elif t is not None and t.startswith("payout.") and hotkey in d.get("hotkeys", [hotkey]):
            payouts.append({"state": t.split(".", 1)[1], **d})
    planned_ids = {p["payout_id"] for p in payouts if p["state"] == "planned"}
    for p in payouts:
        if p["payout_id"] in planned_ids or p["state"] == "deferred":
            for day in p.get("billing_days", []):
                view(day).payouts.append(p)
    return [days[k] for k in sorted(days) if (first is None or k >= first) and (last is None or k <= last)]


FIGURES = ("emission_rao", "rental_fee_usd_micros", "forfeited_rao", "forfeited_usd_micros", "adjustment_rao",
           "adjustment_usd_micros", "payable_rao", "carried_rao", "slashed_wei")


def to_json(views: list[DayView]) -> str:
    return json.dumps([v.__dict__ for v in views], indent=2, sort_keys=True)


def to_csv(views: list[DayView]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["billing_day", *FIGURES, "paid_in"])
    for v in views:
        f = v.figures or {}
        w.writerow([v.day, *(f.get(k, "") for k in FIGURES),
                    " ".join(sorted({f"{p['payout_id']}:{p['state']}" for p in v.payouts}))])
    return buf.getvalue()
