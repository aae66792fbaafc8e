"""The consumer loop: poll a batch and decide it; the writer (`writer.py`, its own thread) stores decided
batches in PostgreSQL transactions (every batch waiting for it in one) while the next are decided, and the
committer commits their offsets after each.

Commit policy: offsets are committed after, and only after, the transaction that stored their batches
committed; a crash in between redelivers those batches, which the inbox turns into duplicates (no effect) and
the dead-letter and outbox tables into no-ops. `enable_auto_commit=False`, `auto_offset_reset="earliest"`.
After each commit the relay is woken (`on_commit`) with the outbox rows the transaction queued, if one COPY
queued them all (`outbox.Queued`).

Why aiokafka directly and not FastStream (the project guide's preference): the runtime must control the
order poll -> transaction -> offset commit per batch, must re-fold the inbox before the first poll, and must
let any failure kill the process (FastStream's subscriber wraps handlers in its own ack/nack and error
handling and keeps consuming). With aiokafka that policy is this one readable loop.

Within a batch, records of different partitions are merged by Kafka timestamp (each partition's own order is
kept), so a derived event and its cause on different topics are folded in the order they were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.runtime.outbox import Message, Queued
from services.runtime.processor import Accepted, DeadLetter, Decided, Processor
from services.runtime.settings import Settings
from services.runtime.writer import Writer


def new_consumer(settings: Settings, topics: Sequence[str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        # Fetch whole stretches of a backlog at once, and do not let the broker hold a fetch long: with
        # aiokafka's defaults (1 MiB a partition, 500 ms) a consumer catching up on Tansu ran dry several times
        # a run and waited up to 0.3 s each time (the billing bench lost a fifth of its drain time so).
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        fetch_max_bytes=max(settings.max_partition_fetch_bytes * 4, 50 * 1024 * 1024),
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )


def merge(batches: Mapping[Any, Iterable[Message]]) -> list[Message]:
    """One processing order for a poll: partitions interleaved by timestamp, each partition in offset order."""
    ordered = [sorted(ms, key=lambda m: m.offset) for _, ms in sorted(batches.items(), key=lambda kv: str(kv[0]))]
    return list(heapq.merge(*ordered, key=lambda m: m.timestamp))


def split(messages: list[Message], max_bytes: int) -> Iterator[list[Message]]:
    """A poll in runs of at most `max_bytes` of message values (at least one message each), in order: each is
    decided and stored as one batch. Bytes stand for the work a batch makes: an epoch split of 200 kB derives
    a thousand events, a rental one. Batches of even cost keep deciding and storing side by side, and the last
    transaction short (two batches of forty epoch splits each took seconds to store, one after the other)."""
    run: list[Message] = []
    size = 0
    for m in messages:
        if run and size + len(m.value) > max_bytes:
            yield run
            run, size = [], 0
        run.append(m)
        size += len(m.value)
    if run:
        yield run


def next_offsets(messages: Iterable[Message]) -> dict[TopicPartition, int]:
    """What to commit after a batch: per partition, the offset after the last processed record."""
    out: dict[TopicPartition, int] = {}
    for m in messages:
        tp = TopicPartition(m.topic, m.partition)
        out[tp] = max(out.get(tp, 0), m.offset + 1)
    return out


class Committer:
    """Commits offsets behind the writer. The writer hands over the offsets of each transaction once it has
    committed and goes on to the next one; one offset commit runs at a time, with the latest offsets handed
    over (they only grow), so the broker's round trip, tens of milliseconds and at times hundreds, never holds
    up a transaction."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.pending: dict[TopicPartition, int] = {}
        self._handed = asyncio.Event()

    def hand(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The offsets of a transaction that has committed (after those handed before)."""
        self.pending.update(offsets)
        self._handed.set()

    async def run(self) -> None:
        while True:
            await self._handed.wait()
            self._handed.clear()
            offsets, self.pending = self.pending, {}
            await self.consumer.commit(offsets)


async def consume(
    consumer: AIOKafkaConsumer,
    pool: asyncpg.Pool,
    processor: Processor,
    settings: Settings,
    connect: Callable[[], Awaitable[asyncpg.Connection]],
    on_commit: Callable[[Queued | None], None] = lambda queued: None,
    on_idle: Callable[[], None] = lambda: None,
) -> None:
    """Run forever (until cancelled or until something fails, which propagates).

    Three steps side by side: this loop polls and has the core decide batch after batch; the `Writer` stores
    them on its own thread and connection (`connect`), one transaction at a time, in the order they were
    decided; the `Committer` commits each stored transaction's offsets. Up to `settings.decided_ahead` decided
    batches wait for the writer (then the loop waits); the writer takes every batch waiting at once, in one
    transaction: a poll that brought a few messages costs a transaction of its own only when the writer was
    idle. After each transaction, back on this loop, its ids are settled, the relay is woken (`on_commit`,
    with the rows its COPY queued) and its offsets handed to the committer. A failure of any step ends the
    loop with its exception, and nothing decided after a failed store is stored. A poll that finds nothing
    calls `on_idle` (the service's full collections: `collector.IdleCollections`).

    The loop holds a connection of the pool while it runs, to look batches up in the inbox (taken from the
    pool for each batch, every release cost a reset round trip)."""
    committer = Committer(consumer)

    def stored(decided: Decided, queued: Queued | None) -> None:
        processor.settle(decided)
        if any(isinstance(o, Accepted | DeadLetter) for o in decided.outcomes):  # rows may be queued
            on_commit(queued)
        committer.hand(next_offsets(decided.messages))

    writer = Writer(processor, connect, stored, ahead=settings.decided_ahead)
    await writer.start()
    committing = asyncio.create_task(committer.run(), name="offset commits")

    def check() -> None:
        """Raise what the writer or the committer failed with."""
        writer.check()
        if committing.done():
            committing.result()

    try:
        async with pool.acquire() as lookup:
            while True:
                check()
                polled = await consumer.getmany(timeout_ms=settings.poll_timeout_ms,
                                                max_records=settings.batch_size)
                if not polled:
                    on_idle()
                    continue
                messages = merge({
                    tp: [Message(r.topic, r.partition, r.offset, r.key, r.value or b"", r.timestamp)
                         for r in records]
                    for tp, records in polled.items()
                })
                for batch in split(messages, settings.batch_bytes):
                    await writer.submit(await processor.decide(lookup, batch))
                    check()
    finally:
        committing.cancel()
        with contextlib.suppress(BaseException):
            await writer.stop()
