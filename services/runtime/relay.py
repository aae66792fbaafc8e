"""The outbox relay: publishes unpublished outbox rows, in outbox order, then moves its position past them.

At-least-once: a crash between the broker's ack and the mark republishes those rows on restart; readers
drop them as duplicates (same id, same content). A plain producer with acks=all; no idempotent or
transactional producer (Tansu refuses them). Any error propagates and ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aiokafka import AIOKafkaProducer

from services.runtime import metrics
from services.runtime.kafka import CachedPartitioner, send_in_order
from services.runtime.outbox import mark_published, pending_records


class Relay:
    def __init__(self, service: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, *, batch: int = 1_000,
                 idle_seconds: float = 0.5) -> None:
        self.service = service
        self.pool = pool
        self.producer = producer
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        self.partitioner = CachedPartitioner()

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: publish now rather than at the next poll."""
        self._wake.set()

    async def publish_once(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        last_seq, records = await pending_records(conn, self.batch)
        if records:  # the backlog gauge is read from the tables at each scrape (`metrics.refresh`), not here
            await send_in_order(self.producer, self.partitioner, records)
            await mark_published(conn, last_seq)
            metrics.PUBLISHED.labels(self.service).inc(len(records))
        return len(records)

    async def run(self) -> None:
        """Publish for ever, on one connection held while it runs (a connection taken from the pool for each
        round cost a reset round trip on its release, as often as a hundred times a second)."""
        async with self.pool.acquire() as conn:
            while True:
                self._wake.clear()  # before reading: a commit from now on wakes the next round
                if await self.publish_once(conn) == self.batch:
                    continue  # more waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
