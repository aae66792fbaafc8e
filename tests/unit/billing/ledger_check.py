"""What the ledger must say about each closed day, checked against the day's statement (not a tautology:
the entries and the statement figures are computed apart in the core)."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.envelope import Event
from schemas.events import DayClosed
from services.billing.core import BillingCore, ClosedDayEvent
from services.billing.ledger import balances, provider


def check_closed_days(derived: list[Event], carried: dict[str, int]) -> None:
    """For every day `derived` closes: each listed provider's micro-USD nets to 0 (fees, forfeits and
    adjustments all converted) and its alpha moves by payable + carried − carried_in; an unlisted provider
    does not move. `carried` holds each hotkey's last carried rest and is updated."""
    for event in derived:
        if not isinstance(event, ClosedDayEvent):
            continue
        statement = event.data
        assert isinstance(statement, DayClosed)
        moved = balances(list(event.entries))
        listed = {provider(p.hotkey) for p in statement.providers}
        for p in statement.providers:
            account = provider(p.hotkey)
            assert moved.get((account, "usd_micros"), 0) == 0, (statement.billing_day, p.hotkey)
            want = p.payable_rao + p.carried_rao - carried.get(p.hotkey, 0)
            assert moved.get((account, "rao"), 0) == want, (statement.billing_day, p.hotkey)
            carried[p.hotkey] = p.carried_rao
        for (account, _unit), amount in moved.items():
            if account.startswith("provider:") and account not in listed:
                assert amount == 0, (statement.billing_day, account)


def fold_checked(core: BillingCore, log: Iterable[Event], carried: dict[str, int] | None = None) -> list[Event]:
    """Every event of `log` into `core`, each closed day checked by `check_closed_days` as it closes; returns
    everything derived, in order. `carried` (updated) holds each hotkey's last carried rest."""
    out: list[Event] = []
    rests: dict[str, int] = {} if carried is None else carried
    for event in log:
        derived = core.handle(event)
        check_closed_days(derived, rests)
        out += derived
    return out
