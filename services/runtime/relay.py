"""The outbox relay: publishes unpublished outbox rows, in outbox order, then moves its position past them.

At-least-once: a crash between the broker's ack and the mark republishes those rows on restart; readers
drop them as duplicates (same id, same content). A plain producer with acks=all; no idempotent or
transactional producer (Tansu refuses them). Any error propagates and ends the process.

Where the rows come from: the consumer hands over what each committed transaction queued by one COPY
(`wake(queued)`), and the relay publishes those from memory when they follow its position directly (one
COPY's rows have consecutive seqs, and rows become visible in seq order: see `outbox`); finding that out
costs one index lookup of two ids, against reading every row back. Anything else it reads from the table:
rows other writers queued (dead letters, background tasks), a gap left by a rolled-back seq, what is pending
at start-up, or what was handed while more than `hand_limit` rows already waited.

The relay runs on the consumer's event loop. In a process of its own (tried twice, reading the outbox back
and woken by a notification) it took up to a quarter of the service's CPU elsewhere and gained nothing end to
end: on two cores that work is paid for beside the core's (`bench/BILLING.md`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import asyncpg
from aiokafka import AIOKafkaProducer

from services.runtime import metrics
from services.runtime.kafka import CachedPartitioner, Record, send_in_order
from services.runtime.outbox import Queued, mark_published, pending_records, published_position


class Relay:
    def __init__(self, service: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, *, batch: int = 1_000,
                 idle_seconds: float = 0.5, hand_limit: int = 50_000) -> None:
        self.service = service
        self.pool = pool
        self.producer = producer
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.hand_limit = hand_limit
        self._wake = asyncio.Event()
        self._handed: deque[Queued] = deque()
        self._handed_rows = 0
        self._span: tuple[Queued, int, int] | None = None  # the first handed rows' seqs, once looked up
        self.position: int | None = None  # the last published seq, once read
        self.partitioner = CachedPartitioner()

    def wake(self, queued: Queued | None = None) -> None:
        """Called after a commit that wrote outbox rows: publish now rather than at the next poll. `queued`:
        the rows that commit queued, if one COPY queued them all."""
        if queued is not None:
            if self._handed_rows + len(queued.rows) > self.hand_limit:  # far behind: the table serves
                self._handed.clear()
                self._handed_rows = 0
            self._handed.append(queued)
            self._handed_rows += len(queued.rows)
        self._wake.set()

    async def _take_handed(self, conn: asyncpg.Connection, position: int) -> tuple[int, list[Record]] | None:
        """The last seq and the records of the handed rows that follow `position` directly, if any; drops what
        the table served meanwhile."""
        while self._handed:
            queued = self._handed[0]
            if self._span is None or self._span[0] is not queued:
                first, last = await queued.span(conn) or (0, 0)  # not as expected: dropped, the table serves
                self._span = (queued, first, last)
                continue  # `wake` may have dropped it meanwhile
            _, first, last = self._span
            if last > position and first > position + 1:
                return None  # rows before these were queued by someone else, or a seq was left unused: the table
            self._handed.popleft()
            self._handed_rows -= len(queued.rows)
            if last > position:
                return last, queued.records_after(first, position)
        return None

    async def publish_once(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        if self.position is None:
            self.position = await published_position(conn)
        handed = await self._take_handed(conn, self.position)
        last_seq, records = handed if handed is not None else await pending_records(conn, self.batch)
        if records:  # the backlog gauge is read from the tables at each scrape (`metrics.refresh`), not here
            await send_in_order(self.producer, self.partitioner, records)
            await mark_published(conn, last_seq)
            self.position = last_seq
            metrics.PUBLISHED.labels(self.service).inc(len(records))
        return len(records)

    async def run(self) -> None:
        """Publish for ever, on one connection held while it runs (a connection taken from the pool for each
        round cost a reset round trip on its release, as often as a hundred times a second)."""
        async with self.pool.acquire() as conn:
            while True:
                self._wake.clear()  # before reading: a commit from now on wakes the next round
                published = await self.publish_once(conn)
                if published and (published >= self.batch or self._handed):
                    continue  # more waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
