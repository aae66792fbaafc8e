"""Settlement planning core (SPEC 3.5) on hand-worked runs."""

from __future__ import annotations

from schemas.envelope import Event
from schemas.events import PayoutDeferred, PayoutPlanned
from services.pipeline import Pipeline
from services.settlement.core import SettlementCore
from tests.factories import day_closed, epoch, listed, params, started


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
    # The first epoch is at or after the payout hour of 11-02 and of 11-03: the run of 11-02 pays 11-01 at once;
    # the run of 11-03 waits for billing's day.closed of 11-02, which arrives after the epoch (live).
    out = run(core, params("2026-11-01T00:00:00Z", payout_delay_days=1), epoch(1, "2026-11-03T17:00:00Z"))
    assert [(p.amount_rao, p.billing_days) for p in planned_of(out)] == [(50_000_000, ["2026-11-01"])]
    out = run(core, day_closed("2026-11-02", [("hk1", "ck1", 20_000_000)]))
    assert [(p.amount_rao, p.billing_days) for p in planned_of(out)] == [(20_000_000, ["2026-11-02"])]


def planned_of(out: list[Event]) -> list[PayoutPlanned]:
    return [e.data for e in out if isinstance(e.data, PayoutPlanned)]


def test_an_epoch_after_a_pause_runs_every_day_whose_payout_hour_has_passed_in_order() -> None:
    """SPEC 3.5: the run of day T is at "the first epoch.closed at or after payout_hour_utc" of T, an instant: after
    epochs pause, an epoch at 03:00 is that first epoch for each day whose 17:00 has passed since the last one."""
    core = SettlementCore()
    run(core, epoch(1, "2026-11-02T10:00:00Z"),
        day_closed("2026-11-01", [("hk1", "ck1", 30_000_000)]), day_closed("2026-11-02", [("hk1", "ck1", 5_000_000)]))
    after_pause = epoch(2, "2026-11-05T03:00:00Z")  # past 17:00 of 11-02, 11-03 and 11-04, not of 11-05
    out = run(core, after_pause)
    # run of 11-03 pays 11-01; run of 11-04 pays 11-02, under the minimum: deferred (its own check, its own id)
    assert [(e.type, e.data.amount_rao, e.data.billing_days) for e in out  # type: ignore[union-attr]
            ] == [("payout.planned", 30_000_000, ["2026-11-01"]), ("payout.deferred", 5_000_000, ["2026-11-02"])]
    assert len({e.id for e in out}) == 2 and {e.causation_id for e in out} == {after_pause.id}
    assert run(core, epoch(3, "2026-11-05T16:59:00Z")) == []
    # the run of 11-05 (after billing's statement of 11-03): the carried 5M is still below the minimum
    out = run(core, epoch(4, "2026-11-05T17:00:00Z"), day_closed("2026-11-03", []))
    assert [(e.type, e.data.amount_rao) for e in out] == [("payout.deferred", 5_000_000)]  # type: ignore[union-attr]


def test_a_day_billing_closed_stays_payable_when_the_grace_grows_afterwards() -> None:
    """A day closed under one grace is closed for good: a later, longer grace must not hide it from a run."""
    core = SettlementCore()
    run(core, params("2026-11-01T00:00:00Z", payout_delay_days=0, day_close_grace_seconds=0),
        epoch(1, "2026-11-01T17:00:00Z"),
        epoch(2, "2026-11-02T00:04:00Z"), day_closed("2026-11-01", [("hk1", "ck1", 30_000_000)]))  # closes 11-01
    out = run(core, params("2026-11-02T09:00:00Z", day_close_grace_seconds=40_000, payout_hour_utc=0),
              epoch(3, "2026-11-02T10:52:00Z"))  # the run of 11-02; this epoch alone could not have closed 11-01
    assert [(p.amount_rao, p.billing_days) for p in planned_of(out)] == [(30_000_000, ["2026-11-01"])]


def test_days_t_count_from_the_first_input_so_a_late_first_epoch_runs_each_day_apart() -> None:
    """SPEC 3.5 pays at the payout hour "of each UTC day T": when the first epoch comes days after the log began
    (and closes those days at once), the runs of those days still happen one by one, each with its minimum."""
    pipeline = Pipeline()
    log = [params("2026-11-01T00:00:00Z", payout_delay_days=0, min_payout_rao=10_000_000_000),
           listed("ex1", "hk1", "ck1", "2026-11-01T00:00:00Z"),
           started("r1", "ex1", "2026-11-01T00:00:00Z", price="20"),  # 432 USD to the provider a day: 2.16e10 rao
           epoch(1, "2026-11-03T20:00:00Z")]  # closes 11-01 and 11-02; past 17:00 of 11-01, 11-02 and 11-03
    out = [e for event in log for e in pipeline.feed(event, event.to_bytes())]
    payouts = [(e.type, e.data.billing_days) for e in out if e.type.startswith("payout.")]  # type: ignore[union-attr]
    # the run of 11-01 pays 11-01 alone (above the minimum); the run of 11-02 pays 11-02; 11-03 has not closed
    assert payouts == [("payout.planned", ["2026-11-01"]), ("payout.planned", ["2026-11-02"])]
