"""Billing core (SPEC 3.4) on hand-worked examples. Prices 400 USD/TAO × 0.05 TAO/alpha = 20 USD/alpha, so
1 micro-USD = 1000 / 20 = 50 rao unless a test says otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codec import Refused, decode_obj
from schemas.envelope import Event
from schemas.events import DayClosed, EarningsAccrued, ProviderStatement
from services.billing.core import BillingCore
from services.pipeline import Pipeline
from services.scoring.core import ScoringCore
from tests.factories import benchmark, envelope, epoch, incident, listed, params, started, stopped
from tests.unit.billing.ledger_check import fold_checked


def scored(n: int, closed_at: str, nodes: list[tuple[str, str, int]], emission: int = 10**12) -> Event:
    data: dict[str, Any] = {
        "netuid": 51, "epoch": n, "closed_at": closed_at, "miner_emission_rao": emission,
        "shares": {"rented": "0.09", "unrented": "0", "burn": "0.91"},
        "nodes": [{"executor_id": ex, "hotkey": hk, "pool": "rented", "incentive": "0.01", "alpha_rao": rao,
                   "reason": None} for ex, hk, rao in nodes],
        "burn_rao": emission - sum(r for _, _, r in nodes),
    }
    return decode_obj(envelope("epoch.scored", closed_at, data))


def run(core: BillingCore, *events: Event) -> list[Event]:
    out: list[Event] = []
    for e in events:
        out.extend(core.handle(e))
    return out


def statements(out: list[Event]) -> dict[str, DayClosed]:
    return {e.data.billing_day: e.data for e in out if isinstance(e.data, DayClosed)}


def row(day: DayClosed, hotkey: str) -> ProviderStatement:
    return next(p for p in day.providers if p.hotkey == hotkey)


def test_rental_across_midnight_is_charged_per_day_at_the_day_prices() -> None:
    core = BillingCore(await_scores=False)
    out = run(
        core,
        listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        started("r1", "ex1", "2026-11-01T22:00:00Z"),
        stopped("r1", "ex1", "2026-11-02T03:30:00Z"),
        epoch(1, "2026-11-02T02:00:00Z"),  # closes 11-01; no epoch before midnight: its own prices
        epoch(2, "2026-11-02T23:00:00Z", tao_usd="500"),  # last before 11-03 00:00: prices of 11-02
        epoch(3, "2026-11-03T02:00:00Z", tao_usd="1000"),  # closes 11-02, its prices unused
    )
    days = statements(out)
    d1 = row(days["2026-11-01"], "hk1")
    # 2 h × 2.85 USD = 5.70 USD = 5,700,000 µUSD; provider 90 % = 5,130,000; × 50 rao.
    assert (d1.rental_fee_usd_micros, d1.payable_rao, d1.coldkey) == (5_130_000, 256_500_000, "ck1")
    d2 = row(days["2026-11-02"], "hk1")
    # 3.5 h × 2.85 = 9.975 USD → 8,977,500 µUSD; at 500 × 0.05 = 25 USD/alpha: 1000/25 = 40 rao per µUSD.
    assert (d2.rental_fee_usd_micros, d2.payable_rao) == (8_977_500, 359_100_000)
    assert days["2026-11-02"].prices.tao_usd == "500"


def test_late_stop_books_an_adjustment_and_a_negative_rest_carries() -> None:
    core = BillingCore(await_scores=False)
    out = run(
        core,
        listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        started("r1", "ex1", "2026-11-01T20:00:00Z"),
        epoch(1, "2026-11-02T02:00:00Z"),  # closes 11-01 with the rental open: 4 h charged
        stopped("r1", "ex1", "2026-11-02T05:00:00Z", at="2026-11-01T22:00:00Z"),  # really only 2 h
        epoch(2, "2026-11-03T02:00:00Z"),  # closes 11-02
        scored(3, "2026-11-03T10:00:00Z", [("ex1", "hk1", 300_000_000)]),
        epoch(3, "2026-11-04T02:00:00Z"),  # closes 11-03
    )
    days = statements(out)
    assert row(days["2026-11-01"], "hk1").rental_fee_usd_micros == 10_260_000  # 11.40 USD × 0.9
    d2 = row(days["2026-11-02"], "hk1")
    assert (d2.adjustment_usd_micros, d2.payable_rao, d2.carried_rao) == (-5_130_000, 0, -256_500_000)
    d3 = row(days["2026-11-03"], "hk1")
    assert (d3.emission_rao, d3.payable_rao, d3.carried_rao) == (300_000_000, 43_500_000, 0)
    adjustments = [e.data for e in out if isinstance(e.data, EarningsAccrued) and e.data.kind == "adjustment"]
    assert [(a.billing_day, a.amount_usd_micros) for a in adjustments] == [("2026-11-02", -5_130_000)]
    assert core.statements[__import__("datetime").date(2026, 11, 1)] == days["2026-11-01"]  # never rewritten


def test_incident_forfeits_the_executor_day_and_a_late_incident_is_an_adjustment() -> None:
    core = BillingCore(await_scores=False)
    out = run(
        core,
        listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        listed("ex2", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        started("r1", "ex1", "2026-11-01T12:00:00Z"),
        scored(1, "2026-11-01T13:00:00Z", [("ex1", "hk1", 1_000), ("ex2", "hk1", 2_000)]),
        incident("r1", "ex1", "2026-11-01T14:00:00Z"),
        epoch(1, "2026-11-02T02:00:00Z"),  # closes 11-01: ex1's day forfeited
        scored(2, "2026-11-02T03:00:00Z", [("ex1", "hk1", 5_000)]),
        incident("r1", "ex1", "2026-11-02T04:00:00Z", at="2026-11-01T15:00:00Z"),  # same day again: no change
        epoch(2, "2026-11-03T02:00:00Z"),  # closes 11-02
        incident("r1", "ex1", "2026-11-03T05:00:00Z", at="2026-11-02T09:00:00Z"),  # late, for closed 11-02
        epoch(3, "2026-11-04T02:00:00Z"),  # closes 11-03
    )
    days = statements(out)
    d1 = row(days["2026-11-01"], "hk1")
    # 12 h × 2.85 = 34.2 USD → 30,780,000 provider part, all forfeited with ex1's 1,000 rao.
    assert (d1.emission_rao, d1.forfeited_rao, d1.rental_fee_usd_micros, d1.forfeited_usd_micros) == (
        3_000, 1_000, 30_780_000, 30_780_000)
    assert d1.payable_rao == 2_000
    d2 = row(days["2026-11-02"], "hk1")
    # 24 h × 2.85 = 68.4 USD → 61,560,000 µUSD → 3,078,000,000 rao, plus 5,000 rao emission.
    assert (d2.emission_rao, d2.forfeited_rao, d2.payable_rao) == (5_000, 0, 5_000 + 3_078_000_000)
    d3 = row(days["2026-11-03"], "hk1")
    # The late incident takes back what 11-02 paid for ex1: 5,000 rao and 61,560,000 µUSD.
    assert (d3.adjustment_rao, d3.adjustment_usd_micros) == (-5_000, -61_560_000)
    assert d3.rental_fee_usd_micros == 61_560_000  # 11-03 itself is earned normally
    assert d3.payable_rao == 0 and d3.carried_rao == -5_000


def test_negative_usd_floors_toward_minus_infinity() -> None:
    core = BillingCore(await_scores=False)
    out = run(
        core,
        listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        started("r1", "ex1", "2026-11-01T23:59:59Z", price="0.0036"),  # 1 s: 1 µUSD, provider part 0
        epoch(1, "2026-11-02T02:00:00Z", tao_usd="3", alpha_tao="0.07"),
        stopped("r1", "ex1", "2026-11-02T03:00:00Z", at="2026-11-01T23:59:59Z"),  # 0 s: change of 0
        epoch(2, "2026-11-02T23:00:00Z", tao_usd="3", alpha_tao="0.07"),
        epoch(3, "2026-11-03T02:00:00Z", tao_usd="3", alpha_tao="0.07"),
    )
    days = statements(out)
    assert days["2026-11-01"].providers == []  # a provider part of 0 is no figure
    assert days["2026-11-02"].providers == []


def test_negative_usd_rounds_down_in_alpha() -> None:
    core = BillingCore(await_scores=False)
    run(core, listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        started("r1", "ex1", "2026-11-01T23:00:00Z", price="0.01"),  # 1 h × 0.01 = 10,000 µUSD → 9,000
        epoch(1, "2026-11-02T02:00:00Z", tao_usd="3", alpha_tao="0.07"))
    out = run(core, stopped("r1", "ex1", "2026-11-02T03:00:00Z", at="2026-11-01T23:00:01Z"),
              epoch(2, "2026-11-02T23:00:00Z", tao_usd="3", alpha_tao="0.07"),
              epoch(3, "2026-11-03T02:00:00Z", tao_usd="3", alpha_tao="0.07"))
    d2 = row(statements(out)["2026-11-02"], "hk1")
    # 1 s at 0.01 USD/h = 2.777… µUSD → 3 (half-even) → provider floor(2.7) = 2: adjustment 2 − 9,000 = −8,998.
    # −8,998 × 1000 / 0.21 = −42,847,619.04… → floor −42,847,620.
    assert (d2.adjustment_usd_micros, d2.carried_rao) == (-8_998, -42_847_620)


def test_rate_in_force_when_the_day_closes() -> None:
    core = BillingCore(await_scores=False)
    out = run(core, listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
              started("r1", "ex1", "2026-11-01T23:00:00Z", price="1"),
              params("2026-11-02T01:00:00Z", rental_fees_rate="0.5"),
              epoch(1, "2026-11-02T02:00:00Z"))
    assert row(statements(out)["2026-11-01"], "hk1").rental_fee_usd_micros == 500_000


def test_stop_before_start_is_held_and_applied() -> None:
    core = BillingCore(await_scores=False)
    out = run(core, listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
              stopped("r1", "ex1", "2026-11-01T10:00:00Z"),
              started("r1", "ex1", "2026-11-01T11:00:00Z", at="2026-11-01T09:00:00Z", price="1"),
              started("r1", "ex1", "2026-11-01T12:00:00Z", at="2026-11-01T01:00:00Z", price="9"),  # ignored
              epoch(1, "2026-11-02T02:00:00Z"))
    assert row(statements(out)["2026-11-01"], "hk1").rental_fee_usd_micros == 900_000


def test_refusals_change_nothing() -> None:
    core = BillingCore(await_scores=False)
    run(core, listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"), epoch(1, "2026-11-01T01:00:00Z"))
    for bad, code in [
        (started("r9", "nope", "2026-11-01T02:00:00Z"), "unknown_executor"),
        (stopped("r9", "nope", "2026-11-01T02:00:00Z"), "unknown_executor"),
        (epoch(1, "2026-11-02T05:00:00Z"), "duplicate_epoch"),
        (epoch(2, "2026-11-02T05:00:00Z", tao_usd="0"), "bad_prices"),
        (params("2026-11-01T03:00:00Z", models={"NVIDIA H200": {"portion": "0.5"}}), "bad_params"),
        (params("2026-11-01T03:00:00Z", models={"New GPU": {"price": "1"}}), "bad_params"),
    ]:
        with pytest.raises(Refused) as info:
            core.handle(bad)
        assert info.value.code == code
    assert core.next_day is not None and core.next_day.isoformat() == "2026-11-01"
    assert core.admission.epochs == {(51, 1)}
    # SPEC: "a rental (or stop)" of an executor never listed is refused; an incident is taken (it forfeits that
    # executor's day, which earns nothing anyway)
    assert core.handle(incident("r9", "nope", "2026-11-01T02:00:00Z")) == []
    assert ("nope", core.next_day) in core.forfeited


def test_days_count_from_the_first_accepted_input_of_any_type() -> None:
    """SPEC 3.4: "Days are counted from the UTC day of the first accepted event in the log" -- a benchmark the
    day before the first listing makes that day the first: the rental time on it is billed, and it closes."""
    pipeline = Pipeline([ScoringCore(), BillingCore()])
    log = [benchmark("ex1", "hk1", "2026-10-31T12:00:00Z"), listed("ex1", "hk1", "ck1", "2026-11-01T00:10:00Z"),
           started("r1", "ex1", "2026-11-01T00:20:00Z", at="2026-10-31T23:00:00Z"),
           epoch(1, "2026-11-01T02:00:00Z"), epoch(2, "2026-11-02T03:00:00Z")]
    out = [e for event in log for e in pipeline.feed(event, event.to_bytes())]
    days = statements(out)
    assert sorted(days) == ["2026-10-31", "2026-11-01"]
    # one hour of 2.85 USD on 10-31 (before the listing, after the origin), 90 % to the provider
    assert row(days["2026-10-31"], "hk1").rental_fee_usd_micros == 2_850_000 * 9 // 10


def test_ledger_explains_each_statement_and_payable_never_negative() -> None:
    core = BillingCore(await_scores=False)
    carried: dict[str, int] = {}
    out = fold_checked(core, (
        listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
        started("r1", "ex1", "2026-11-01T20:00:00Z"),
        scored(1, "2026-11-01T21:00:00Z", [("ex1", "hk1", 7_000)]),
        epoch(1, "2026-11-02T02:00:00Z"),
        stopped("r1", "ex1", "2026-11-02T05:00:00Z", at="2026-11-01T21:00:00Z"),
        epoch(2, "2026-11-03T02:00:00Z"),
    ), carried)
    days = statements(out)
    assert len(days) == 2 and carried == {"hk1": row(days["2026-11-02"], "hk1").carried_rao}
    for day in days.values():
        assert all(p.payable_rao >= 0 and p.carried_rao <= 0 for p in day.providers)
