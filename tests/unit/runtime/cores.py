"""A small real fold for the runtime's tests: counts listings per hotkey, one `score.updated` per listing."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar

import asyncpg

from schemas.codec import Refused
from schemas.envelope import Event, derive
from schemas.events import ExecutorListed, ScoreUpdated
from services.runtime.processor import ProjectHook
from services.runtime.service import ServiceSpec
from tests.factories import envelope

REFUSED_HOTKEY = "refuse-me"


class CountingCore:
    service: ClassVar[str] = "counting"
    reads: ClassVar[frozenset[str]] = frozenset({"executor.listed"})

    def __init__(self) -> None:
        self.listings: Counter[str] = Counter()
        self.handled: list[str] = []

    def handle(self, event: Event) -> list[Event]:
        data = event.data
        assert isinstance(data, ExecutorListed)
        if data.hotkey == REFUSED_HOTKEY:
            raise Refused("bad_listing", "this hotkey is refused by the test core")
        self.listings[data.hotkey] += 1
        self.handled.append(event.id)
        n = self.listings[data.hotkey]
        out = ScoreUpdated(
            executor_id=data.executor_id, hotkey=data.hotkey, score=1 if n % 2 else 0, reasons=[f"listings={n}"]
        )
        return [derive("score.updated", out, event, source="scoring", key=data.executor_id)]


def listing(id_: str, hotkey: str, executor: str = "ex-1", price: str = "2.85") -> dict[str, Any]:
    """An `executor.listed` envelope (dict) with a chosen id."""
    return envelope(
        "executor.listed", "2026-11-21T17:00:00Z",
        {"executor_id": executor, "hotkey": hotkey, "coldkey": "ck", "gpu_model": "NVIDIA H200", "gpu_count": 1,
         "price_per_gpu_usd": price, "sysbox": True},
        id=id_,
    )


PROJECTION_SQL = "CREATE TABLE listing_counts (hotkey text PRIMARY KEY, n integer NOT NULL)"


def projection(slow_seconds: float = 0.0) -> ProjectHook:
    """The read model of the counting core: listings per hotkey (optionally slow, for crash tests)."""

    async def project(conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
        assert isinstance(event.data, ExecutorListed)
        await conn.execute(
            """INSERT INTO listing_counts VALUES ($1, 1)
               ON CONFLICT (hotkey) DO UPDATE SET n = listing_counts.n + 1""",
            event.data.hotkey,
        )
        if slow_seconds:
            await asyncio.sleep(slow_seconds)

    return project


class CountsProjection:
    """The same read model as a two-step projection: the hotkey prepared per event, one statement per batch."""

    def prepare(self, event: Event, derived: list[Event]) -> str | None:
        return event.data.hotkey if isinstance(event.data, ExecutorListed) else None

    async def write(self, conn: asyncpg.Connection, prepared: list[str]) -> None:
        await conn.executemany(
            """INSERT INTO listing_counts VALUES ($1, $2)
               ON CONFLICT (hotkey) DO UPDATE SET n = listing_counts.n + EXCLUDED.n""",
            sorted(Counter(prepared).items()),
        )


def spec(name: str, slow_seconds: float = 0.0) -> ServiceSpec:
    return ServiceSpec(
        name=name, core_factory=CountingCore, migrations=[PROJECTION_SQL], project=projection(slow_seconds)
    )


if __name__ == "__main__":  # a runtime process for crash tests: python -m tests.unit.runtime.cores NAME SLOW_S
    import sys

    from services.runtime.service import run

    asyncio.run(run(spec(sys.argv[1], float(sys.argv[2]))))
