"""Settlement planning core (SPEC 3.5) on hand-worked runs."""

from __future__ import annotations

from schemas.envelope import Event
from schemas.events import PayoutDeferred, PayoutPlanned
from services.settlement.core import SettlementCore
from tests.factories import day_closed, epoch, params


def run(core: SettlementCore, *events: Event) -> list[Event]:
    return [d for e in events for d in core.handle(e)]


def test_pays_closed_days_after_the_delay_at_the_payout_hour_summed_per_coldkey() -> None:
    core = SettlementCore()
    out = run(
        core,
        day_closed("2026-11-01", [("hk1", "ck1", 30_000_000), ("hk2", "ck1", 5_000_000), ("hk3", "ck2", 1)]),
        epoch(1, "2026-11-02T17:00:00Z"),  # T = 11-02: only days ≤ 10-31: nothing
        day_closed("2026-11-02", [("hk1", "ck1", 20_000_000)]),
        epoch(2, "2026-11-03T16:59:59Z"),  # before the hour
        epoch(3, "2026-11-03T17:00:00Z"),  # T = 11-03: pays 11-01
        epoch(4, "2026-11-03T18:00:00Z"),  # second epoch of the day: no run
    )
    planned = [e.data for e in out if isinstance(e.data, PayoutPlanned)]
    deferred = [e.data for e in out if isinstance(e.data, PayoutDeferred)]
    assert [(p.coldkey, p.amount_rao, p.billing_days, p.hotkeys) for p in planned] == [
        ("ck1", 35_000_000, ["2026-11-01"], ["hk1", "hk2"])]
    assert [(d.coldkey, d.amount_rao) for d in deferred] == [("ck2", 1)]
    out = run(core, day_closed("2026-11-03", []), epoch(5, "2026-11-04T17:30:00Z"))
    planned = [e.data for e in out if isinstance(e.data, PayoutPlanned)]
    deferred = [e.data for e in out if isinstance(e.data, PayoutDeferred)]
    assert [(p.coldkey, p.amount_rao, p.billing_days) for p in planned] == [("ck1", 20_000_000, ["2026-11-02"])]
    # ck2's 1 rao is still carried and still under the minimum
    assert [(d.coldkey, d.amount_rao, d.billing_days) for d in deferred] == [("ck2", 1, ["2026-11-01"])]


def test_batches_and_deterministic_ids() -> None:
    rows = [(f"hk{i:03d}", f"ck{i:03d}", 10_000_000 + i) for i in range(130)]
    log = [params("2026-11-01T00:00:00Z", max_batch=64), day_closed("2026-11-01", rows),
           day_closed("2026-11-02", []), epoch(1, "2026-11-03T17:00:00Z")]
    first, second = run(SettlementCore(), *log), run(SettlementCore(), *log)
    assert [e.to_json() for e in first] == [e.to_json() for e in second]
    batches = [e.data.batch for e in first if isinstance(e.data, PayoutPlanned)]
    assert batches == [0] * 64 + [1] * 64 + [2] * 2


def test_a_run_waits_for_days_billing_has_not_delivered_yet() -> None:
    core = SettlementCore()
    assert run(core, day_closed("2026-11-01", [("hk1", "ck1", 50_000_000)])) == []
    # The epoch closing 11-02 triggers the run of 11-03 before billing's day.closed of 11-02 arrives (live).
    assert run(core, params("2026-11-01T00:00:00Z", payout_delay_days=1), epoch(1, "2026-11-03T17:00:00Z")) == []
    out = run(core, day_closed("2026-11-02", [("hk1", "ck1", 20_000_000)]))
    planned = [e.data for e in out if isinstance(e.data, PayoutPlanned)]
    assert [(p.amount_rao, p.billing_days) for p in planned] == [(70_000_000, ["2026-11-01", "2026-11-02"])]
