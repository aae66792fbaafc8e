"""The billing core against the naive reference (`reference.py`) on random scenarios: late and out-of-order
starts and stops, replaced stops, incidents on time and late, emission before and after days close, several
epochs a day with their prices. Every statement must agree field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode_obj
from schemas.envelope import Event
from schemas.events import DayClosed
from schemas.values import format_time
from services.billing.core import BillingCore
from tests.factories import envelope, epoch, incident, listed, started, stopped
from tests.unit.billing.ledger_check import fold_checked
from tests.unit.billing.reference import NaiveBilling

T0 = datetime(2026, 11, 1, tzinfo=UTC)
EXECUTORS = {"ex0": "hk0", "ex1": "hk1", "ex2": "hk1"}


def at(minutes: int) -> str:
    return format_time(T0 + timedelta(minutes=minutes, microseconds=minutes * 7 % 1000))


def scored(n: int, closed_at: str, nodes: list[tuple[str, int]]) -> Event:
    data: dict[str, Any] = {
        "netuid": 51, "epoch": n, "closed_at": closed_at, "miner_emission_rao": 10**12,
        "shares": {"rented": "0.09", "unrented": "0", "burn": "0.91"}, "burn_rao": 10**12 - sum(a for _, a in nodes),
        "nodes": [{"executor_id": ex, "hotkey": EXECUTORS[ex], "pool": "rented", "incentive": "0.01",
                   "alpha_rao": a, "reason": None} for ex, a in nodes],
    }
    return decode_obj(envelope("epoch.scored", closed_at, data))


@st.composite
def scenarios(draw: st.DrawFn) -> list[Event]:
    timeline: list[Event] = []
    minutes: list[int] = []
    for day in range(1, 7):
        minutes.append(day * 1440 + draw(st.integers(120, 300)))  # closes the day before
        if draw(st.booleans()):
            minutes.append(day * 1440 + draw(st.integers(1000, 1430)))  # an evening epoch: that day's prices
    for n, m in enumerate(sorted(minutes), start=1):
        nodes = [(ex, draw(st.integers(0, 10**9))) for ex in EXECUTORS if draw(st.booleans())]
        timeline.append(scored(n, at(m), nodes))
        timeline.append(epoch(n, at(m), tao_usd=draw(st.sampled_from(["400", "333.33", "512.5"])),
                              alpha_tao=draw(st.sampled_from(["0.05", "0.0437", "0.07"]))))
    late: list[Event] = []
    for i in range(draw(st.integers(1, 4))):
        ex = draw(st.sampled_from(sorted(EXECUTORS)))
        begin = draw(st.integers(0, 5 * 1440))
        end = begin + draw(st.integers(1, 3 * 1440))
        price = draw(st.sampled_from(["2.85", "0.6923", "1.494", "0.01"]))
        late.append(started(f"r{i}", ex, at(begin), price=price, at=at(begin)))
        late.append(stopped(f"r{i}", ex, at(end), at=at(end)))
        if draw(st.booleans()):
            again = begin + draw(st.integers(1, 4 * 1440))
            late.append(stopped(f"r{i}", ex, at(again), at=at(again)))  # a correction replaces the stop
    for _ in range(draw(st.integers(0, 3))):
        ex = draw(st.sampled_from(sorted(EXECUTORS)))
        when = draw(st.integers(0, 6 * 1440))
        late.append(incident("rx", ex, at(when), at=at(when)))
    log = [listed(ex, hk, f"ck{hk[-1]}", at(0), count=draw(st.sampled_from([1, 8]))) for ex, hk in EXECUTORS.items()]
    log += timeline
    for e in late:  # each at a random place after the listings, early, on time or late
        log.insert(draw(st.integers(len(EXECUTORS), len(log))), e)
    return log


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_the_core_agrees_with_the_naive_reference(log: list[Event]) -> None:
    core, ref = BillingCore(await_scores=False), NaiveBilling()
    statements: dict[str, dict[str, dict[str, Any]]] = {}
    for d in fold_checked(core, log):
        if isinstance(d.data, DayClosed):
            statements[d.data.billing_day] = {
                p.hotkey: {k: v for k, v in p.model_dump().items() if k not in ("hotkey", "slashed_wei")}
                for p in d.data.providers}
    for e in log:
        ref.handle(e)
    assert statements == ref.statements
    assert len(statements) >= 5
