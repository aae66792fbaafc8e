"""Where the payout executor keeps its state: an async port, and an in-memory implementation for tests.

`commit(change)` must be atomic and durable before it returns (PostgreSQL: one transaction upserting the
payout and batch rows and inserting the events into an outbox). The executor relies on it for "stored before
sent": it commits a batch intent, then sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from schemas.envelope import Event
from services.settlement.execution import (
    BatchRecord,
    BatchState,
    Change,
    PayoutRecord,
    PayoutState,
    PlannedPayout,
)

COMMITTED = (PayoutState.SUBMITTING, PayoutState.CONFIRMED)


class ExecutionStore(Protocol):
    async def add_planned(self, payouts: Sequence[PlannedPayout]) -> None:
        """Insert planned payouts that are not known yet (by payout_id); known ones are left as they are."""
        ...

    async def commit(self, change: Change) -> None:
        """Upsert the records and append the events, atomically and durably."""
        ...

    async def payouts(self, payout_ids: Sequence[str]) -> list[PayoutRecord]:
        """The records of these payouts, in the given order (unknown ids are skipped)."""
        ...

    async def payouts_in(self, state: PayoutState) -> list[PayoutRecord]: ...

    async def open_batches(self) -> list[BatchRecord]:
        """Batches still in state intent: sent or maybe sent, outcome not yet recorded."""
        ...

    async def amount_committed(self, run_day: str) -> int:
        """Sum of amount_rao of the payouts of runs of `run_day` that are submitting or confirmed."""
        ...


class MemoryExecutionStore:
    """`ExecutionStore` in memory; `events` is the outbox, in commit order."""

    def __init__(self) -> None:
        self.records: dict[str, PayoutRecord] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.events: list[Event] = []
        self.commits = 0

    async def add_planned(self, payouts: Sequence[PlannedPayout]) -> None:
        for p in payouts:
            self.records.setdefault(p.payout_id, PayoutRecord(p))

    async def commit(self, change: Change) -> None:
        self.commits += 1
        for r in change.payouts:
            self.records[r.payout_id] = r
        for b in change.batches:
            self.batches[b.batch_id] = b
        self.events.extend(change.events)

    async def payouts(self, payout_ids: Sequence[str]) -> list[PayoutRecord]:
        return [self.records[i] for i in payout_ids if i in self.records]

    async def payouts_in(self, state: PayoutState) -> list[PayoutRecord]:
        return [r for r in self.records.values() if r.state is state]

    async def open_batches(self) -> list[BatchRecord]:
        return [b for b in self.batches.values() if b.state is BatchState.INTENT]

    async def amount_committed(self, run_day: str) -> int:
        return sum(
            r.planned.amount_rao
            for r in self.records.values()
            if r.planned.run_day == run_day and r.state in COMMITTED
        )
