"""The demo's reconciliation: landed on chain vs the payables of the days each confirmed payout paid."""

from __future__ import annotations

from typing import Any

from sn51.demo_report import alpha, reconcile, summarize


def day_closed(day: str, providers: list[tuple[str, str, int]]) -> dict[str, Any]:
    return {"type": "day.closed", "data": {"billing_day": day, "providers": [
        {"hotkey": hk, "coldkey": ck, "payable_rao": rao, "emission_rao": rao, "rental_fee_usd_micros": 0,
         "forfeited_rao": 0, "forfeited_usd_micros": 0, "adjustment_rao": 0, "adjustment_usd_micros": 0,
         "carried_rao": 0, "slashed_wei": 0} for hk, ck, rao in providers]}}


def payout(state: str, pid: str, coldkey: str, days: list[str], amount: int, **extra: Any) -> dict[str, Any]:
    return {"type": f"payout.{state}", "data": {"payout_id": pid, "coldkey": coldkey, "billing_days": days,
                                                 "amount_rao": amount, **extra}}


EVENTS = [
    day_closed("2026-11-01", [("hk1", "ck1", 700), ("hk2", "ck1", 300), ("hk3", "ck3", 50)]),
    day_closed("2026-11-02", [("hk1", "ck1", 10)]),
    payout("planned", "p1", "ck1", ["2026-11-01"], 1000, hotkeys=["hk1", "hk2"], batch=0),
    payout("planned", "p3", "ck3", ["2026-11-01"], 50, hotkeys=["hk3"], batch=0),
    payout("confirmed", "p1", "ck1", ["2026-11-01"], 1000, extrinsic_hash="0xab", block_hash="0xcd",
           block_number=1),
    payout("confirmed", "p3", "ck3", ["2026-11-01"], 50, extrinsic_hash="0xab", block_hash="0xcd", block_number=1),
    {"type": "collateral.slashed", "data": {"executor_id": "e1", "amount_wei": 5}},
]


def test_landed_equal_to_payables_reconciles() -> None:
    summary = summarize(EVENTS, {"e1": "hk1"})
    assert reconcile(summary, {"ck1": 1000, "ck3": 50}) == []
    assert summary.providers["hk1"].slashed_wei == 5
    assert summary.payouts["p1"].state == "confirmed" and summary.payouts["p1"].extrinsic_hash == "0xab"


def test_a_rao_missing_on_chain_is_reported() -> None:
    problems = reconcile(summarize(EVENTS, {}), {"ck1": 999, "ck3": 50})
    assert problems == ["coldkey ck1: 999 rao landed on chain, 1000 rao payable for the days paid"]


def test_a_payout_that_differs_from_its_days_and_a_held_one_are_reported() -> None:
    events = [*EVENTS[:2], payout("confirmed", "p1", "ck1", ["2026-11-01"], 1001, extrinsic_hash="0x1",
                                  block_hash="0x2", block_number=1),
              payout("held", "p3", "ck3", ["2026-11-01"], 50, reason="not_owner")]
    problems = reconcile(summarize(events, {}), {"ck1": 1001})
    assert any("p1 to ck1: 1001 rao planned, the paid days' statements say 1000" in p for p in problems)
    assert any("p3 to ck3 is held: not_owner" in p for p in problems)


def test_a_later_planned_event_does_not_hide_the_confirmation() -> None:
    events = [EVENTS[0], EVENTS[4], EVENTS[2]]  # confirmed read before planned (export order is per service)
    assert summarize(events, {}).payouts["p1"].state == "confirmed"


def test_alpha_formats_rao_exactly() -> None:
    assert alpha(1) == "0.000000001"
    assert alpha(-1_500_000_000) == "-1.500000000"
