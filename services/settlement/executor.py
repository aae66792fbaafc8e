"""The payout executor: drives planned payouts onto the chain, two-phase, never paying twice.

The decisions are the pure transitions of `execution`; this shell reads the chain, commits each `Change` to
the store, and only then acts. The rules it keeps:
- a batch is signed with an explicit nonce and its intent (hash, nonce, first block) is committed before it
  is sent;
- while any batch's outcome is unknown nothing new is sent; after a timeout, a node failure or a restart the
  chain is read (`next_nonce`, then `find_extrinsic` over the stored hashes) and the batch is recorded as
  landed, reverted, or sent again under the same nonce (so that at most one attempt can land);
- guards before sending: a payout whose coldkey does not own every hotkey it pays for is held; a run whose
  total exceeds the payout hotkey's stake, or the daily ceiling, is held whole;
- a reverted batch is split and each payout retried alone with backoff; one that keeps failing fails with
  its reason while the others are paid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import structlog

from services.settlement.chain import (
    BatchFailed,
    ChainClient,
    Landing,
    NodeDown,
    OutcomeUnknown,
    SignedBatch,
)
from services.settlement.execution import (
    BatchRecord,
    Change,
    Landed,
    PayoutRecord,
    PayoutState,
    PlannedPayout,
    Resend,
    Reverted,
    decide,
    fail,
    hold,
    intend,
    land,
    owner_mismatches,
    reattempt,
    run_refusal,
    schedule,
)
from services.settlement.execution_store import ExecutionStore

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
log = structlog.get_logger("settlement.executor")


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    max_batch: int = 64
    daily_ceiling_rao: int | None = None
    max_attempts: int = 3  # single-recipient attempts after a batch reverted
    backoff_seconds: float = 2.0  # doubled per retry
    max_chain_retries: int = 6  # reads/sends of one batch before leaving it unresolved for the next run


class Outcome(StrEnum):
    LANDED = "landed"
    FAILED = "failed"
    UNRESOLVED = "unresolved"


@dataclass
class RunReport:
    dry_run: bool = False
    planned: int = 0
    confirmed: int = 0
    held: int = 0
    failed: int = 0
    pending: int = 0
    extrinsics_sent: int = 0
    unresolved_batches: list[str] = field(default_factory=list)


class Executor:
    def __init__(
        self,
        chain: ChainClient | None,
        store: ExecutionStore,
        config: ExecutorConfig | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.chain = chain
        self.store = store
        self.config = config or ExecutorConfig()
        self.sleep = sleep
        self.extrinsics_sent = 0

    # --- entry points --------------------------------------------------------------------------------------

    async def run(self, planned: Sequence[PlannedPayout]) -> RunReport:
        """Store the planned payouts, finish what an earlier run left open, then pay what is pending."""
        await self.store.add_planned(planned)
        if self.chain is None:
            total = sum(p.amount_rao for p in planned)
            log.warning(
                "settlement.dry_run",
                reason="no payout wallet or chain endpoint configured: nothing is sent",
                payouts=len(planned),
                total_rao=total,
                batches=len(schedule((PayoutRecord(p) for p in planned), self.config.max_batch)),
            )
            return RunReport(dry_run=True, planned=len(planned), pending=len(planned))
        try:
            unresolved = await self.resume()
            if not unresolved:
                unresolved = await self.execute_pending()
        except NodeDown as e:  # raised only by reads and signing, which change nothing: try again later
            log.error("settlement.run.interrupted", error=str(e))
            unresolved = [b.batch_id for b in await self.store.open_batches()]
        return await self._report(planned, unresolved)

    async def resume(self) -> list[str]:
        """Settle every batch whose outcome was not recorded (a crash or an unknown outcome). Returns the
        ids of batches still unresolved."""
        left: list[str] = []
        for batch in await self.store.open_batches():
            log.info("settlement.batch.resume", batch_id=batch.batch_id, nonce=batch.nonce, hashes=batch.hashes)
            if await self._drive(batch, None) is Outcome.UNRESOLVED:
                left.append(batch.batch_id)
        return left

    async def execute_pending(self) -> list[str]:
        """Guard and send every planned payout in the store, run by run."""
        pending = await self.store.payouts_in(PayoutState.PLANNED)
        runs: dict[str, list[PayoutRecord]] = {}
        for r in pending:
            runs.setdefault(r.planned.run_id, []).append(r)
        for run_id in sorted(runs, key=lambda k: (runs[k][0].planned.time, k)):
            eligible = await self._guard(runs[run_id])
            for group in schedule(eligible, self.config.max_batch):
                if await self._send_group(group) is Outcome.UNRESOLVED:
                    return [b.batch_id for b in await self.store.open_batches()]
        return []

    # --- guards --------------------------------------------------------------------------------------------

    async def _guard(self, records: list[PayoutRecord]) -> list[PayoutRecord]:
        assert self.chain is not None
        chain = self.chain
        hotkeys = sorted({hk for r in records for hk in r.planned.hotkeys})
        owners = await self._retrying(lambda: chain.hotkey_owners(hotkeys))
        mismatched = owner_mismatches(records, owners)
        if mismatched:
            await self._commit(hold(mismatched))
        held = {r.payout_id for r, _ in mismatched}
        eligible = [r for r in records if r.payout_id not in held]
        if not eligible:
            return []
        available = await self._retrying(lambda: chain.stake(chain.payout_hotkey, chain.payout_coldkey))
        committed = await self.store.amount_committed(eligible[0].planned.run_day)
        total = sum(r.planned.amount_rao for r in eligible)
        refusal = run_refusal(total, available, committed, self.config.daily_ceiling_rao)
        if refusal is not None:
            log.warning("settlement.run.held", run_id=eligible[0].planned.run_id, reason=refusal)
            await self._commit(hold((r, refusal) for r in eligible))
            return []
        return eligible

    # --- sending -------------------------------------------------------------------------------------------

    async def _send_group(self, group: list[PayoutRecord]) -> Outcome:
        outcome = await self._send(group)
        if outcome is not Outcome.FAILED:
            return outcome
        for payout_id in (r.payout_id for r in group):
            while True:
                [record] = await self.store.payouts([payout_id])
                if record.state is not PayoutState.PLANNED:
                    break
                if record.failures:
                    await self.sleep(self.config.backoff_seconds * 2 ** (record.failures - 1))
                if await self._send([record]) is Outcome.UNRESOLVED:
                    return Outcome.UNRESOLVED
        return Outcome.LANDED

    async def _send(self, records: list[PayoutRecord]) -> Outcome:
        """Sign, record the intent, send, record the outcome."""
        assert self.chain is not None
        chain = self.chain
        transfers = [r.transfer for r in records]
        nonce = await self._retrying(chain.next_nonce)
        head = await self._retrying(chain.head)
        signed = await self._retrying(lambda: chain.sign_batch(transfers, nonce=nonce))
        change = intend(records, signed, head.number)
        await self._commit(change)  # stored before sent
        return await self._drive(change.batches[0], signed)

    async def _drive(self, batch: BatchRecord, signed: SignedBatch | None) -> Outcome:
        """Bring a batch in state intent to landed or failed. `signed=None`: the outcome is unknown, so the
        chain is read first."""
        assert self.chain is not None
        chain = self.chain
        for attempt in range(self.config.max_chain_retries):
            if attempt:
                await self.sleep(self.config.backoff_seconds * 2 ** (attempt - 1))
            try:
                if signed is None:
                    chain_nonce = await chain.next_nonce()  # before the search: see execution.decide
                    head = await chain.head()
                    landing = await chain.find_extrinsic(batch.hashes, batch.from_block, head.number)
                    verdict = decide(batch, landing, chain_nonce)
                    if isinstance(verdict, Landed):
                        return await self._landed(batch, verdict.landing)
                    if isinstance(verdict, Reverted):
                        return await self._reverted(batch, verdict.landing.reason or "dispatch failed", verdict.landing)
                    signed = await self._resign(batch, verdict)
                    batch = await self._reattempt(batch, signed)  # stored before sent
                self.extrinsics_sent += 1
                result = await chain.submit_batch(signed)
            except BatchFailed as e:
                landing = (
                    Landing(e.extrinsic_hash, e.block_hash, e.block_number, False, e.reason)
                    if e.extrinsic_hash and e.block_hash and e.block_number is not None
                    else None
                )
                return await self._reverted(batch, e.reason, landing)
            except OutcomeUnknown as e:
                log.warning("settlement.batch.unknown", batch_id=batch.batch_id, error=str(e), kind=type(e).__name__)
                signed = None
                continue
            landing = Landing(result.extrinsic_hash, result.block_hash, result.block_number, True)
            return await self._landed(batch, landing)
        log.error("settlement.batch.unresolved", batch_id=batch.batch_id, nonce=batch.nonce, hashes=batch.hashes)
        return Outcome.UNRESOLVED

    async def _resign(self, batch: BatchRecord, verdict: Resend) -> SignedBatch:
        assert self.chain is not None
        return await self.chain.sign_batch(batch.transfers, nonce=verdict.nonce)

    async def _reattempt(self, batch: BatchRecord, signed: SignedBatch) -> BatchRecord:
        records = await self.store.payouts(batch.payout_ids)
        change = reattempt(batch, records, signed)
        await self._commit(change)
        log.info("settlement.batch.resend", batch_id=batch.batch_id, nonce=signed.nonce, hash=signed.extrinsic_hash)
        return change.batches[0]

    async def _landed(self, batch: BatchRecord, landing: Landing) -> Outcome:
        records = await self.store.payouts(batch.payout_ids)
        await self._commit(land(batch, records, landing))
        log.info(
            "settlement.batch.landed",
            batch_id=batch.batch_id,
            payouts=len(records),
            extrinsic_hash=landing.extrinsic_hash,
            block_number=landing.block_number,
        )
        return Outcome.LANDED

    async def _reverted(self, batch: BatchRecord, reason: str, landing: Landing | None) -> Outcome:
        records = await self.store.payouts(batch.payout_ids)
        await self._commit(fail(batch, records, reason, self.config.max_attempts, landing))
        log.warning("settlement.batch.failed", batch_id=batch.batch_id, payouts=len(records), reason=reason)
        return Outcome.FAILED

    # --- plumbing ------------------------------------------------------------------------------------------

    async def _commit(self, change: Change) -> None:
        await self.store.commit(change)
        for e in change.events:
            payout_id = getattr(e.data, "payout_id", None)
            log.debug("settlement.event", event_id=e.id, event_type=e.type, payout_id=payout_id)

    async def _retrying(self, read: Callable[[], Awaitable[T]]) -> T:
        """A read or a signing, retried with backoff while the node is down (they change nothing)."""
        for attempt in range(self.config.max_chain_retries):
            try:
                return await read()
            except NodeDown as e:
                log.warning("settlement.node_down", attempt=attempt + 1, error=str(e))
                await self.sleep(self.config.backoff_seconds * 2**attempt)
        return await read()

    async def _report(self, planned: Sequence[PlannedPayout], unresolved: list[str]) -> RunReport:
        records = await self.store.payouts([p.payout_id for p in planned])
        count = {s: 0 for s in PayoutState}
        for r in records:
            count[r.state] += 1
        return RunReport(
            planned=len(planned),
            confirmed=count[PayoutState.CONFIRMED],
            held=count[PayoutState.HELD],
            failed=count[PayoutState.FAILED],
            pending=count[PayoutState.PLANNED] + count[PayoutState.SUBMITTING],
            extrinsics_sent=self.extrinsics_sent,
            unresolved_batches=unresolved,
        )
