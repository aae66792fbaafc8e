"""The payout executor against the in-memory chain: every fault ends with every provider paid exactly once."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from schemas.envelope import Event
from schemas.events import PayoutPlanned
from services.settlement.chain import SignedBatch, SubmitResult, Transfer
from services.settlement.chain_memory import MemoryChain
from services.settlement.execution import (
    BatchRecord,
    Change,
    Landed,
    PayoutRecord,
    PayoutState,
    PlannedPayout,
    Resend,
    decide,
    schedule,
)
from services.settlement.execution_store import MemoryExecutionStore
from services.settlement.executor import Executor, ExecutorConfig

RUN_TIME = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)
FUNDS = 10**15


class Crash(Exception):
    """The process dies here (not a chain error: nothing handles it)."""


def planned(n: int, *, max_batch: int = 4, base: int = 10_000_000, run_id: str = "run-1") -> list[PlannedPayout]:
    return [
        PlannedPayout(
            payout_id=f"p{i:03d}",
            coldkey=f"ck{i:03d}",
            billing_days=("2026-11-01",),
            amount_rao=base + i,
            hotkeys=(f"hk{i:03d}",),
            batch=i // max_batch,
            run_id=run_id,
            run_day=RUN_TIME.date().isoformat(),
            event_id=f"planned-{run_id}-{i}",
            time=RUN_TIME,
        )
        for i in range(n)
    ]


def chain_for(payouts: Sequence[PlannedPayout], funds: int = FUNDS) -> MemoryChain:
    chain = MemoryChain()
    chain.fund(funds)
    for p in payouts:
        for hk in p.hotkeys:
            chain.set_owner(hk, p.coldkey)
    return chain


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def executor(chain: MemoryChain, store: MemoryExecutionStore | None = None, **config: int) -> Executor:
    cfg = ExecutorConfig(**{"max_batch": 4, "backoff_seconds": 1.0, **config})  # type: ignore[arg-type]
    return Executor(chain, store or MemoryExecutionStore(), cfg, sleep=Sleeps())


def assert_paid_exactly_once(chain: MemoryChain, payouts: Sequence[PlannedPayout], funds: int = FUNDS) -> None:
    for p in payouts:
        assert chain.stake_of(p.coldkey) == p.amount_rao, p.payout_id
    assert chain.stake_of(chain.payout_coldkey) == funds - sum(p.amount_rao for p in payouts)


def types(store: MemoryExecutionStore, type_: str) -> list[Event]:
    return [e for e in store.events if e.type == type_]


async def test_pays_everyone_once_in_ceil_n_over_max_batch_extrinsics() -> None:
    payouts = planned(10)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    report = await executor(chain, store).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    assert chain.included == math.ceil(10 / 4) == report.extrinsics_sent
    assert (report.confirmed, report.pending, report.held, report.failed) == (10, 0, 0, 0)
    confirmed = types(store, "payout.confirmed")
    assert sorted(e.data.payout_id for e in confirmed) == [p.payout_id for p in payouts]  # type: ignore[attr-defined]
    assert len(types(store, "payout.submitted")) == 10
    assert all(e.causation_id and e.key.startswith("ck") for e in store.events)
    # the same run on a fresh store and chain gives the same events, ids included
    store2 = MemoryExecutionStore()
    await executor(chain_for(payouts), store2).run(payouts)
    assert [e.to_json() for e in store.events] == [e.to_json() for e in store2.events]


async def test_a_second_run_with_the_same_plan_sends_nothing() -> None:
    payouts = planned(6)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    await executor(chain, store).run(payouts)
    sent, events = chain.included, len(store.events)
    report = await executor(chain, store).run(payouts)
    assert (chain.included, len(store.events), report.confirmed) == (sent, events, 6)
    assert_paid_exactly_once(chain, payouts)


async def test_timeout_after_landing_is_read_back_not_resent() -> None:
    payouts = planned(9)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    chain.timeouts_after_landing = 2
    await executor(chain, store).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    assert chain.included == 3
    assert len(types(store, "payout.confirmed")) == 9


async def test_timeout_before_landing_is_resent_under_the_same_nonce() -> None:
    payouts = planned(9)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    chain.timeouts_before_landing = 2
    await executor(chain, store).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    assert chain.included == 3 and chain.nonce == 3
    first = next(iter(store.batches.values()))
    assert first.nonce == 0 and first.state == "landed"


async def test_node_down_for_a_few_calls() -> None:
    payouts = planned(9)
    chain = chain_for(payouts)
    chain.node_down_calls = 4
    report = await executor(chain).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    assert report.confirmed == 9 and chain.included == 3


async def test_node_down_too_long_leaves_the_run_pending_then_the_next_run_finishes_it() -> None:
    payouts = planned(9)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    chain.timeouts_before_landing = 1  # the first batch's outcome is unknown ...
    chain.node_down_calls = 10**6  # ... and stays unknown: the node is gone
    original_submit = chain.submit_batch

    async def submit_then_node_dies(signed: SignedBatch) -> SubmitResult:
        chain.node_down_calls = 0
        try:
            return await original_submit(signed)
        finally:
            chain.node_down_calls = 10**6

    chain.node_down_calls = 0
    chain.submit_batch = submit_then_node_dies  # type: ignore[method-assign]
    report = await executor(chain, store).run(payouts)
    assert report.unresolved_batches and report.confirmed == 0
    assert chain.included == 0
    chain.node_down_calls = 0
    chain.submit_batch = original_submit  # type: ignore[method-assign]
    report = await executor(chain, store).run(payouts)
    assert report.confirmed == 9 and not report.unresolved_batches
    assert_paid_exactly_once(chain, payouts)


async def test_a_failed_batch_is_split_and_a_recipient_that_keeps_failing_fails_alone() -> None:
    payouts = planned(8)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    bad = payouts[5].coldkey
    chain.failing_dests[bad] = 10**6
    ex = executor(chain, store, max_attempts=3)
    report = await ex.run(payouts)
    others = [p for p in payouts if p.coldkey != bad]
    for p in others:
        assert chain.stake_of(p.coldkey) == p.amount_rao
    assert chain.stake_of(bad) == 0
    assert chain.stake_of(chain.payout_coldkey) == FUNDS - sum(p.amount_rao for p in others)
    assert (report.confirmed, report.failed) == (7, 1)
    [failed] = types(store, "payout.failed")
    assert failed.data.payout_id == payouts[5].payout_id  # type: ignore[attr-defined]
    assert "after 3 attempts" in failed.data.reason and bad in failed.data.reason  # type: ignore[attr-defined]
    assert isinstance(ex.sleep, Sleeps) and ex.sleep.calls == [1.0, 2.0]  # backoff between the retries


async def test_a_transient_batch_failure_ends_with_everyone_paid() -> None:
    payouts = planned(8)
    chain = chain_for(payouts)
    chain.failing_dests[payouts[1].coldkey] = 1
    report = await executor(chain).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    assert report.confirmed == 8


class CrashingStore(MemoryExecutionStore):
    """Dies on the first commit that records a landed batch (the crash between submit and record), and
    before the commits numbered in `crash_at` (a crash anywhere): the write is lost, the process gone."""

    def __init__(self, crash_at: Sequence[int] = ()) -> None:
        super().__init__()
        self.armed = True
        self.crash_at = set(crash_at)
        self.attempts = 0

    async def commit(self, change: Change) -> None:
        self.attempts += 1
        if self.attempts in self.crash_at:
            raise Crash()
        if self.armed and any(b.state == "landed" for b in change.batches):
            self.armed = False
            raise Crash()
        await super().commit(change)


async def test_crash_between_submit_and_record_then_restart_pays_exactly_once() -> None:
    payouts = planned(10)
    chain, store = chain_for(payouts), CrashingStore()
    with pytest.raises(Crash):
        await executor(chain, store).run(payouts)
    assert chain.included == 1  # the first batch landed; its outcome was never recorded
    [open_batch] = await store.open_batches()
    assert open_batch.hashes and open_batch.state == "intent"
    report = await executor(chain, store).run(payouts)  # a new process on the stored state
    assert_paid_exactly_once(chain, payouts)
    assert chain.included == 3 and report.confirmed == 10


async def test_crash_after_the_intent_before_sending_then_restart_pays_exactly_once() -> None:
    payouts = planned(6)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    original_submit = chain.submit_batch

    async def die(signed: SignedBatch) -> SubmitResult:
        raise Crash()

    chain.submit_batch = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await executor(chain, store).run(payouts)
    assert chain.included == 0 and len(await store.open_batches()) == 1
    chain.submit_batch = original_submit  # type: ignore[method-assign]
    await executor(chain, store).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    assert chain.included == 2


async def test_a_nonce_used_by_another_extrinsic_gets_a_fresh_one() -> None:
    payouts = planned(3)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    original_submit = chain.submit_batch

    async def die(signed: SignedBatch) -> SubmitResult:
        raise Crash()

    chain.submit_batch = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await executor(chain, store).run(payouts)
    chain.submit_batch = original_submit  # type: ignore[method-assign]
    chain.nonce += 1  # the operator used the payout coldkey for something else meanwhile
    await executor(chain, store).run(payouts)
    assert_paid_exactly_once(chain, payouts)
    [batch] = store.batches.values()
    assert batch.nonce == 1 and len(batch.hashes) == 2


async def test_random_faults_always_end_with_everyone_paid_exactly_once() -> None:
    for seed in range(25):
        rng = random.Random(seed)
        payouts = planned(11, max_batch=3)
        chain, store = chain_for(payouts), CrashingStore()
        store.armed = rng.random() < 0.5
        chain.timeouts_after_landing = rng.randint(0, 2)
        chain.timeouts_before_landing = rng.randint(0, 2)
        chain.node_down_calls = rng.randint(0, 3)
        chain.failing_dests = {payouts[rng.randrange(11)].coldkey: rng.randint(1, 2)}
        for _ in range(3):  # restarts after a crash
            try:
                report = await executor(chain, store, max_batch=3, max_attempts=3).run(payouts)
                break
            except Crash:
                continue
        assert report.confirmed == 11, seed
        assert_paid_exactly_once(chain, payouts)


async def test_a_crash_at_any_commit_then_restarts_pays_everyone_exactly_once() -> None:
    for seed in range(20):
        rng = random.Random(1000 + seed)
        payouts = planned(9, max_batch=3)
        chain = chain_for(payouts)
        store = CrashingStore(crash_at=rng.sample(range(1, 30), 4))
        store.armed = False
        chain.failing_dests = {payouts[rng.randrange(9)].coldkey: rng.randint(0, 3)}
        chain.timeouts_after_landing = rng.randint(0, 1)
        crashes = 0
        while True:
            try:
                report = await executor(chain, store, max_batch=3, max_attempts=5).run(payouts)
                break
            except Crash:
                crashes += 1
                assert crashes <= 4
        assert report.confirmed == 9, seed
        assert_paid_exactly_once(chain, payouts)


async def test_owner_mismatch_is_held_and_the_others_are_paid() -> None:
    payouts = planned(5)
    chain, store = chain_for(payouts), MemoryExecutionStore()
    chain.set_owner(payouts[2].hotkeys[0], "ck-somebody-else")
    report = await executor(chain, store).run(payouts)
    [held] = types(store, "payout.held")
    assert held.data.payout_id == payouts[2].payout_id  # type: ignore[attr-defined]
    assert held.data.reason.startswith("owner_mismatch")  # type: ignore[attr-defined]
    assert chain.stake_of(payouts[2].coldkey) == 0
    assert (report.confirmed, report.held) == (4, 1)
    assert store.records[payouts[2].payout_id].state is PayoutState.HELD


async def test_a_run_above_the_available_stake_is_held_whole() -> None:
    payouts = planned(5)
    total = sum(p.amount_rao for p in payouts)
    chain, store = chain_for(payouts, funds=total - 1), MemoryExecutionStore()
    report = await executor(chain, store).run(payouts)
    assert chain.included == 0 and report.held == 5
    reasons = {e.data.reason for e in types(store, "payout.held")}  # type: ignore[attr-defined]
    assert len(reasons) == 1 and next(iter(reasons)).startswith("insufficient_stake")


async def test_the_daily_ceiling_holds_a_run_that_would_cross_it() -> None:
    first, second = planned(4, run_id="run-a"), planned(4, run_id="run-b", base=20_000_000)
    second = [replace(p, payout_id="b" + p.payout_id) for p in second]
    ceiling = sum(p.amount_rao for p in first) + 1
    chain, store = chain_for(first + second), MemoryExecutionStore()
    await executor(chain, store, daily_ceiling_rao=ceiling).run(first)
    report = await executor(chain, store, daily_ceiling_rao=ceiling).run(second)
    assert report.held == 4 and chain.included == 1
    assert all(e.data.reason.startswith("daily_ceiling") for e in types(store, "payout.held"))  # type: ignore[attr-defined]


async def test_dry_run_without_a_chain_sends_nothing_and_says_so() -> None:
    payouts = planned(3)
    store = MemoryExecutionStore()
    report = await Executor(None, store, ExecutorConfig(max_batch=4)).run(payouts)
    assert report.dry_run and report.pending == 3 and not store.events


def test_planned_payout_from_a_payout_planned_event() -> None:
    data = PayoutPlanned(payout_id="p1", coldkey="ck", billing_days=["2026-11-01"], amount_rao=5,
                         hotkeys=["hk"], batch=0)
    event = Event(id="e1", type="payout.planned", source="settlement", time=RUN_TIME, key="ck",
                  causation_id="epoch-9", data=data)
    p = PlannedPayout.from_event(event)
    assert (p.run_id, p.run_day, p.event_id, p.hotkeys, p.amount_rao) == ("epoch-9", "2026-11-03", "e1", ("hk",), 5)


def test_schedule_cuts_planner_batches_at_max_batch_and_isolates_retries() -> None:
    records = [PayoutRecord(p) for p in planned(10, max_batch=5)]
    records[7] = PayoutRecord(records[7].planned, isolated=True)
    sizes = [len(g) for g in schedule(records, 3)]
    assert sizes == [3, 2, 3, 1, 1]


def test_decide_keeps_the_nonce_until_the_chain_used_it() -> None:
    batch = BatchRecord("b", "r", ("p",), (Transfer("ck", 1),), nonce=7, from_block=10, hashes=("0xa",))
    assert decide(batch, None, 7) == Resend(7)
    assert decide(batch, None, 5) == Resend(7)  # never a lower nonce: the old attempt could still land
    assert decide(batch, None, 8) == Resend(8)  # nonce 7 went to another extrinsic: ours can never land
    from services.settlement.chain import Landing

    landing = Landing("0xa", "0xb", 11, True)
    assert decide(batch, landing, 8) == Landed(landing)
