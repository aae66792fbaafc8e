"""Properties of the billing core (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.envelope import Event
from schemas.events import DayClosed
from schemas.values import format_time
from services.billing.core import BillingCore
from tests.factories import epoch, incident, listed, started, stopped
from tests.unit.billing.ledger_check import fold_checked

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def t(offset_us: int) -> str:
    return format_time(T0 + timedelta(microseconds=offset_us))


def epochs(days: int) -> list[Event]:
    return [epoch(i, t(((i * 24) + 2) * 3_600_000_000)) for i in range(1, days + 1)]


def total_usd(out: list[Event]) -> int:
    return sum(p.rental_fee_usd_micros - p.forfeited_usd_micros + p.adjustment_usd_micros
               for e in out if isinstance(e.data, DayClosed) for p in e.data.providers)


rentals = st.tuples(
    st.integers(0, 3 * 86_400 * 10**6),  # start offset, µs
    st.integers(1, 3 * 86_400 * 10**6),  # duration, µs
    st.decimals(min_value="0.01", max_value="9.99", places=4).map(str),
    st.integers(1, 8),
)


@settings(max_examples=60, deadline=None)
@given(rentals)
def test_a_late_stop_ends_up_paying_what_a_timely_one_pays(rental: tuple[int, int, str, int]) -> None:
    start, duration, price, gpus = rental
    head = [listed("ex1", "hk1", "ck1", t(0), count=gpus), started("r1", "ex1", t(start), price=price)]
    stop = stopped("r1", "ex1", t(start + duration))
    timely = BillingCore(await_scores=False)
    out_timely = [d for e in [*head, stop, *epochs(9)] for d in timely.handle(e)]
    late = BillingCore(await_scores=False)
    out_late = [d for e in [*head, *epochs(7), stop, *epochs(9)[7:]] for d in late.handle(e)]
    assert total_usd(out_timely) == total_usd(out_late)


@settings(max_examples=40, deadline=None)
@given(rentals, st.integers(0, 5 * 86_400 * 10**6), st.integers(0, 8))
def test_closed_days_never_change_and_ledger_balances(
    rental: tuple[int, int, str, int], incident_at: int, deliver_after: int
) -> None:
    start, duration, price, gpus = rental
    log = [listed("ex1", "hk1", "ck1", t(0), count=gpus), started("r1", "ex1", t(start), price=price)]
    ep = epochs(9)
    late = [incident("r1", "ex1", t(max(incident_at, 1)), at=t(incident_at)),
            stopped("r1", "ex1", t(start + duration))]
    log += [*ep[:deliver_after], *late, *ep[deliver_after:]]
    core = BillingCore(await_scores=False)
    seen: dict[str, str] = {}
    for d in fold_checked(core, log):
        if isinstance(d.data, DayClosed):
            assert d.data.billing_day not in seen  # each day closes once
            seen[d.data.billing_day] = d.to_json()
    for day, statement in core.statements.items():
        assert seen[day.isoformat()].find(statement.ledger_hash) > 0
        for p in statement.providers:
            assert p.payable_rao >= 0 and p.carried_rao <= 0
