"""An in-memory `WatchStore` (and slash-plan store) for tests and the benchmark: the same semantics as the
PostgreSQL store in `store.py`, without durability."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from schemas.envelope import Event
from services.collateral.trustee import SlashPlan
from services.collateral.watcher import Checkpoint, ObservedLog, ReclaimInfo


@dataclass
class LogRow:
    observed: ObservedLog
    retracted: bool = False


@dataclass
class MemoryStore:
    rows: dict[str, LogRow] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)
    anchor_map: dict[int, str] = field(default_factory=dict)
    current: Checkpoint | None = None
    plans: dict[str, SlashPlan] = field(default_factory=dict)

    # --- WatchStore ---------------------------------------------------------------------------------------

    async def checkpoint(self) -> Checkpoint | None:
        return self.current

    async def anchors(self) -> list[Checkpoint]:
        return [Checkpoint(n, h) for n, h in sorted(self.anchor_map.items(), reverse=True)]

    async def reclaim(self, reclaim_request_id: int) -> ReclaimInfo | None:
        for row in self.rows.values():
            d = row.observed.data
            if (row.observed.event.type == "collateral.reclaim_started" and not row.retracted
                    and d.reclaim_request_id == reclaim_request_id):
                return ReclaimInfo(d.executor_id, d.miner_evm_address, d.amount_wei)
        return None

    async def commit(self, logs: list[ObservedLog], checkpoint: Checkpoint) -> list[Event]:
        new: list[Event] = []
        for o in logs:
            row = self.rows.get(o.event.id)
            if row is None:
                self.rows[o.event.id] = LogRow(o)
                new.append(o.event)
            elif row.retracted:
                self.rows[o.event.id] = LogRow(o)  # back on the canonical chain: un-retracted, not re-published
            self.anchor_map[o.data.block_number] = o.block_hash
        self.anchor_map[checkpoint.block_number] = checkpoint.block_hash
        self.current = checkpoint
        self.published.extend(new)
        return new

    async def rewind(self, anchor: Checkpoint | None) -> list[str]:
        floor = -1 if anchor is None else anchor.block_number
        retracted = []
        for event_id, row in self.rows.items():
            if not row.retracted and row.observed.data.block_number > floor:
                row.retracted = True
                retracted.append(event_id)
        self.anchor_map = {n: h for n, h in self.anchor_map.items() if n <= floor}
        self.current = anchor
        return retracted

    def live(self) -> list[Event]:
        return [r.observed.event for r in self.rows.values() if not r.retracted]

    # --- slash plans (trustee) ----------------------------------------------------------------------------

    async def plan(self, plan: SlashPlan) -> SlashPlan:
        return self.plans.setdefault(plan.request_id, plan)

    async def update(self, plan: SlashPlan) -> None:
        self.plans[plan.request_id] = replace(plan)

    async def open_plans(self) -> list[SlashPlan]:
        return [p for p in self.plans.values() if not p.final]
