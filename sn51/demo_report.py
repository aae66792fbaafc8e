"""What `sn51 demo` prints at the end, and its reconciliation: pure functions over what the services published
(an audit export's `published` events), the memory chain's stakes and the billing ledger's balances.

Reconciliation (exit code of the demo): for every coldkey, what landed on the chain (its alpha stake on the
payout hotkey) must equal the sum of the payable_rao of the days its confirmed payouts paid, and no payout of a
paid day may be held or failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

RAO_PER_ALPHA = 10**9
WEI_PER_TAO = 10**18


@dataclass
class ProviderView:
    hotkey: str
    coldkey: str
    days: dict[str, dict[str, Any]] = field(default_factory=dict)  # billing_day -> day.closed figures
    slashed_wei: int = 0


@dataclass
class PayoutView:
    payout_id: str
    coldkey: str
    billing_days: list[str]
    amount_rao: int
    state: str
    extrinsic_hash: str | None = None
    block_number: int | None = None
    reason: str | None = None


@dataclass
class Summary:
    providers: dict[str, ProviderView]
    payouts: dict[str, PayoutView]
    epochs: int
    emission_rao: int
    burn_rao: int
    slashes: int
    slashed_wei: int
    closed_days: list[str]


def summarize(published: Iterable[dict[str, Any]], executor_hotkeys: dict[str, str]) -> Summary:
    providers: dict[str, ProviderView] = {}
    payouts: dict[str, PayoutView] = {}
    epochs = emission = burn = slashes = slashed = 0
    closed: set[str] = set()
    order = {"planned": 0, "deferred": 0, "submitted": 1, "held": 2, "failed": 2, "confirmed": 3}
    for e in published:
        t, d = e.get("type", ""), e.get("data", {})
        if t == "epoch.scored":
            epochs += 1
            emission += int(d["miner_emission_rao"])
            burn += int(d["burn_rao"])
        elif t == "day.closed":
            closed.add(d["billing_day"])
            for p in d["providers"]:
                view = providers.setdefault(p["hotkey"], ProviderView(p["hotkey"], p["coldkey"]))
                view.coldkey = p["coldkey"]
                view.days[d["billing_day"]] = p
        elif t.startswith("payout."):
            state = t.split(".", 1)[1]
            known = payouts.get(d["payout_id"])
            if known is not None and order.get(known.state, 0) > order.get(state, 0):
                continue
            payouts[d["payout_id"]] = PayoutView(
                d["payout_id"], d["coldkey"], list(d["billing_days"]), int(d["amount_rao"]), state,
                d.get("extrinsic_hash") or (known.extrinsic_hash if known else None),
                d.get("block_number"), d.get("reason"))
        elif t == "collateral.slashed":
            slashes += 1
            slashed += int(d["amount_wei"])
            hotkey = executor_hotkeys.get(d["executor_id"])
            if hotkey is not None:
                providers.setdefault(hotkey, ProviderView(hotkey, "?")).slashed_wei += int(d["amount_wei"])
    return Summary(providers, payouts, epochs, emission, burn, slashes, slashed, sorted(closed))


def reconcile(summary: Summary, landed: dict[str, int]) -> list[str]:
    """Problems, in words; empty when every coldkey got exactly the payables of the days it was paid for."""
    problems: list[str] = []
    payable: dict[tuple[str, str], int] = defaultdict(int)  # (coldkey, day) -> Σ payable_rao
    for view in summary.providers.values():
        for day, fig in view.days.items():
            payable[(fig["coldkey"], day)] += int(fig["payable_rao"])
    owed: dict[str, int] = defaultdict(int)
    for p in summary.payouts.values():
        if p.state in ("held", "failed"):
            problems.append(f"payout {p.payout_id} to {p.coldkey} is {p.state}: {p.reason}")
        if p.state != "confirmed":
            continue
        due = sum(payable[(p.coldkey, day)] for day in p.billing_days)
        if due != p.amount_rao:
            problems.append(f"payout {p.payout_id} to {p.coldkey}: {p.amount_rao} rao planned, "
                            f"the paid days' statements say {due}")
        owed[p.coldkey] += due
    for coldkey in sorted(set(owed) | set(landed)):
        if owed.get(coldkey, 0) != landed.get(coldkey, 0):
            problems.append(f"coldkey {coldkey}: {landed.get(coldkey, 0)} rao landed on chain, "
                            f"{owed.get(coldkey, 0)} rao payable for the days paid")
    return problems


def alpha(rao: int) -> str:
    sign = "-" if rao < 0 else ""
    whole, frac = divmod(abs(rao), RAO_PER_ALPHA)
    return f"{sign}{whole}.{frac:09d}"


def usd(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 10**6)
    return f"{sign}${whole}.{frac:06d}"


def tao(wei: int) -> str:
    whole, frac = divmod(wei, WEI_PER_TAO)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") + " TAO" if wei else "0"


def short(text: str | None, n: int = 18) -> str:
    s = text or ""
    return s if len(s) <= n else s[: n - 1] + "…"


def render(out: Console, summary: Summary, ledger: dict[tuple[str, str], int], landed: dict[str, int]) -> None:
    for hotkey in sorted(summary.providers):
        view = summary.providers[hotkey]
        t = Table(title=f"provider {hotkey} → coldkey {view.coldkey}", title_justify="left")
        for col in ("day", "emission α", "rental fees", "forfeited", "adjustments", "payable α", "carried α",
                    "slashed"):
            t.add_column(col, justify="left" if col == "day" else "right")
        for day in sorted(view.days):
            f = view.days[day]
            t.add_row(day, alpha(f["emission_rao"]), usd(f["rental_fee_usd_micros"]),
                      f"{alpha(f['forfeited_rao'])} α + {usd(f['forfeited_usd_micros'])}",
                      f"{alpha(f['adjustment_rao'])} α + {usd(f['adjustment_usd_micros'])}",
                      alpha(f["payable_rao"]), alpha(f["carried_rao"]), tao(int(f["slashed_wei"])))
        out.print(t)
        paid = [p for p in summary.payouts.values() if p.coldkey == view.coldkey]
        for p in sorted(paid, key=lambda p: p.billing_days):
            out.print(f"  payout {alpha(p.amount_rao)} α for {', '.join(p.billing_days)}: {p.state}"
                      + (f", extrinsic {p.extrinsic_hash} in block {p.block_number}" if p.extrinsic_hash else "")
                      + (f" ({p.reason})" if p.reason else ""), highlight=False)
        if view.slashed_wei:
            out.print(f"  collateral slashed: {tao(view.slashed_wei)}", highlight=False)
    totals = Table(title="platform totals", title_justify="left")
    totals.add_column("what")
    totals.add_column("amount", justify="right")
    totals.add_row("epochs scored", str(summary.epochs))
    totals.add_row("miner emission", f"{alpha(summary.emission_rao)} α")
    totals.add_row("burned", f"{alpha(summary.burn_rao)} α")
    totals.add_row("days closed", ", ".join(summary.closed_days) or "none")
    for (account, unit), amount in sorted(ledger.items()):
        if account.startswith("provider:") or amount == 0:
            continue
        totals.add_row(f"ledger of closed days: {account}",
                       f"{alpha(amount)} α" if unit == "rao" else usd(amount))
    confirmed = [p for p in summary.payouts.values() if p.state == "confirmed"]
    totals.add_row("payouts confirmed", f"{len(confirmed)}: {alpha(sum(p.amount_rao for p in confirmed))} α")
    totals.add_row("landed on chain", f"{alpha(sum(landed.values()))} α to {len(landed)} coldkeys")
    totals.add_row("collateral slashed", f"{summary.slashes} slash(es): {tao(summary.slashed_wei)}")
    out.print(totals)
