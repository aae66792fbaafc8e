"""A deliberately naive billing reference for SPEC 3.4, written from the spec and not from the core.

It keeps the whole history and, after every event, recomputes from scratch what every closed day pays every
provider; any change against what that day has paid so far becomes an adjustment on the oldest open day.
The core instead books changes incrementally per rental and executor-day. Slow; for small scenarios only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from schemas.envelope import Event

DAY = timedelta(days=1)


def start_of(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@dataclass
class RentalFacts:
    executor: str
    hotkey: str
    gpus: int
    price: Fraction
    start: datetime
    stop: datetime | None


class NaiveBilling:
    def __init__(self, rate: Fraction = Fraction("0.9"), grace: int = 7200) -> None:
        self.rate, self.grace = rate, grace
        self.listing: dict[str, dict[str, Any]] = {}
        self.coldkey: dict[str, str] = {}
        self.rentals: dict[str, RentalFacts] = {}
        self.held: dict[str, datetime] = {}
        self.incidents: set[tuple[str, date]] = set()
        self.emission: list[tuple[date, str, str, int]] = []  # (accrual day, hotkey, executor, rao)
        self.epochs: list[tuple[datetime, int, Fraction, Fraction]] = []
        self.first: date | None = None
        self.open: date | None = None
        self.day_rate: dict[date, Fraction] = {}
        self.paid: dict[date, dict[str, tuple[int, int]]] = {}  # closed day → hotkey → (usd, rao) so far
        self.adj: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self.carry: dict[str, int] = defaultdict(int)
        self.statements: dict[str, dict[str, dict[str, int | str]]] = {}

    def parts(self, d: date, rate: Fraction) -> dict[tuple[str, str], int]:
        """(hotkey, executor) → provider part of the fees of day d."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        lo, hi = start_of(d), start_of(d) + DAY
        for r in self.rentals.values():
            a, b = max(r.start, lo), min(r.stop or hi, hi)
            if b <= a:
                continue
            us = (b - a) // timedelta(microseconds=1)
            charge = round(Fraction(us) * r.price * r.gpus / 3600)
            out[(r.hotkey, r.executor)] += math.floor(charge * rate)
        return out

    def pays(self, d: date) -> dict[str, tuple[int, int]]:
        """What closed day d pays each hotkey now, after forfeits: (usd, rao)."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (hk, ex), part in self.parts(d, self.day_rate[d]).items():
            if (ex, d) not in self.incidents:
                out[hk][0] += part
        for day, hk, ex, rao in self.emission:
            if day == d and (ex, d) not in self.incidents:
                out[hk][1] += rao
        return {hk: (v[0], v[1]) for hk, v in out.items()}

    def handle(self, e: Event) -> None:
        d: Any = e.data
        if self.first is None:
            self.first = self.open = e.time.date()
        assert self.open is not None
        if e.type == "executor.listed":
            self.listing[d.executor_id] = {"hotkey": d.hotkey, "gpus": d.gpu_count}
            self.coldkey[d.hotkey] = d.coldkey
        elif e.type == "rental.started" and d.rental_id not in self.rentals:
            lst = self.listing[d.executor_id]
            self.rentals[d.rental_id] = RentalFacts(d.executor_id, lst["hotkey"], lst["gpus"],
                                                    Fraction(d.price_per_gpu_usd), d.started_at,
                                                    self.held.pop(d.rental_id, None))
        elif e.type == "rental.stopped":
            if d.rental_id in self.rentals:
                self.rentals[d.rental_id].stop = d.stopped_at
            else:
                self.held[d.rental_id] = d.stopped_at
        elif e.type == "rental.incident":
            if d.at.date() >= self.first:
                self.incidents.add((d.executor_id, d.at.date()))
        elif e.type == "epoch.scored":
            day = max(d.closed_at.date(), self.open)
            self.emission += [(day, n.hotkey, n.executor_id, n.alpha_rao) for n in d.nodes if n.alpha_rao > 0]
        elif e.type == "epoch.closed":
            self.epochs.append((d.closed_at, len(self.epochs), Fraction(d.tao_usd), Fraction(d.alpha_tao)))
            while d.closed_at >= start_of(self.open) + DAY + timedelta(seconds=self.grace):
                self.close(self.open, (Fraction(d.tao_usd), Fraction(d.alpha_tao)))
                self.open += DAY
            return
        for day, before in self.paid.items():  # a change to what a closed day pays: adjust on the open day
            now = self.pays(day)
            for hk in set(before) | set(now):
                b, n = before.get(hk, (0, 0)), now.get(hk, (0, 0))
                self.adj[self.open][hk][0] += n[0] - b[0]
                self.adj[self.open][hk][1] += n[1] - b[1]
            self.paid[day] = now

    def close(self, day: date, fallback: tuple[Fraction, Fraction]) -> None:
        self.day_rate[day] = self.rate
        before = [p for p in self.epochs if p[0] < start_of(day) + DAY]
        tao, alpha = max(before)[2:] if before else fallback
        parts = self.parts(day, self.rate)
        rows: dict[str, dict[str, int | str]] = {}
        hotkeys = {hk for hk, _ in parts} | {hk for dd, hk, _, _ in self.emission if dd == day} \
            | set(self.adj[day]) | {hk for hk, c in self.carry.items() if c}
        for hk in sorted(hotkeys):
            fee = sum(v for (h, _), v in parts.items() if h == hk)
            f_usd = sum(v for (h, ex), v in parts.items() if h == hk and (ex, day) in self.incidents)
            em = sum(r for dd, h, _, r in self.emission if dd == day and h == hk)
            f_rao = sum(r for dd, h, ex, r in self.emission if dd == day and h == hk and (ex, day) in self.incidents)
            a_usd, a_rao = self.adj[day].get(hk, (0, 0))
            usd = fee - f_usd + a_usd
            rao = em - f_rao + a_rao + self.carry[hk] + math.floor(Fraction(usd * 1000) / (tao * alpha))
            row = {"coldkey": self.coldkey[hk], "emission_rao": em, "rental_fee_usd_micros": fee,
                   "forfeited_rao": f_rao, "forfeited_usd_micros": f_usd, "adjustment_rao": a_rao,
                   "adjustment_usd_micros": a_usd, "payable_rao": max(rao, 0), "carried_rao": min(rao, 0)}
            carried_in = self.carry[hk]
            self.carry[hk] = min(rao, 0)
            if any(v for k, v in row.items() if k != "coldkey") or carried_in:
                rows[hk] = row
        self.statements[day.isoformat()] = rows
        self.paid[day] = self.pays(day)
