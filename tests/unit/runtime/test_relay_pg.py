"""The relay against a real PostgreSQL (the producer replaced by a recorder): rows handed over by the consumer
are published from memory when they follow the position directly, and every other row from the table, so
that whatever mix of handed and unhanded writes happens, each row is published once, in seq order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from services.runtime import relay as relay_module
from services.runtime.kafka import Record
from services.runtime.outbox import OutboxRow, Queued, copy_rows, lock_outbox, pending_records, write_rows
from services.runtime.relay import Relay

pytestmark = pytest.mark.integration


def row(i: int) -> OutboxRow:
    return OutboxRow(f"ev-{i}", "score.updated", "sn51.scoring", b"k", f'{{"n":{i}}}'.encode())


class Recorder:
    """Stands in for the broker: what was sent, and how often the relay read the table."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.table_reads = 0

    async def send(self, producer: Any, partitioner: Any, records: Sequence[Record]) -> None:
        self.sent.extend(r[2] for r in records)

    async def pending(self, conn: asyncpg.Connection, limit: int) -> tuple[int, list[Record]]:
        self.table_reads += 1
        return await pending_records(conn, limit)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(relay_module, "send_in_order", rec.send)
    monkeypatch.setattr(relay_module, "pending_records", rec.pending)
    return rec


async def copy(conn: asyncpg.Connection, rows: list[OutboxRow]) -> Queued:
    """What the processor does: a transaction that takes the lock and queues rows by one COPY."""
    async with conn.transaction():
        await lock_outbox(conn)
        await copy_rows(conn, rows)
    return Queued(rows)


async def table_order(conn: asyncpg.Connection) -> list[bytes]:
    return [r["value"] for r in await conn.fetch("SELECT value FROM outbox ORDER BY seq")]


async def drain(relay: Relay, conn: asyncpg.Connection) -> None:
    while await relay.publish_once(conn):
        pass


async def test_a_copy_queues_its_rows_under_consecutive_seqs_which_span_finds(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await write_rows(conn, [row(0)])
        queued = await copy(conn, [row(1), row(2), row(3)])
        table = [(r["seq"], r["event_id"]) for r in await conn.fetch("SELECT seq, event_id FROM outbox ORDER BY seq")]
        span = await queued.span(conn)
        assert span is not None
        assert table[1:] == [(span[0] + i, r.event_id) for i, r in enumerate(queued.rows)]
        assert await Queued([row(1), row(3)]).span(conn) is None  # not consecutive: not what one COPY queued
        assert await Queued([row(7)]).span(conn) is None  # not in the table


async def test_handed_rows_are_published_from_memory(pool: asyncpg.Pool, recorder: Recorder) -> None:
    async with pool.acquire() as conn:
        relay = Relay("t", pool, producer=None, batch=100)
        await drain(relay, conn)  # reads the (empty) table and its position
        reads = recorder.table_reads
        relay.wake(await copy(conn, [row(1), row(2)]))
        relay.wake(await copy(conn, [row(3)]))
        assert await relay.publish_once(conn) == 2
        assert await relay.publish_once(conn) == 1
        assert recorder.table_reads == reads  # neither was read back (one index lookup each instead)
        assert recorder.sent == await table_order(conn)
        assert await conn.fetchval("SELECT published_seq FROM relay_position") == relay.position


async def test_rows_queued_by_others_go_first_from_the_table(pool: asyncpg.Pool, recorder: Recorder) -> None:
    async with pool.acquire() as conn:
        relay = Relay("t", pool, producer=None, batch=2)
        await write_rows(conn, [row(1)])  # a dead letter or a background task's event: not handed
        relay.wake(await copy(conn, [row(2), row(3), row(4)]))
        await drain(relay, conn)
        assert recorder.sent == await table_order(conn)  # ev-1 and ev-2 from the table, the rest from memory
        assert recorder.table_reads == 2  # the first read, and the last one that found nothing


async def test_a_rolled_back_seq_sends_the_relay_to_the_table_once(pool: asyncpg.Pool, recorder: Recorder) -> None:
    async with pool.acquire() as conn:
        relay = Relay("t", pool, producer=None)
        relay.wake(await copy(conn, [row(1)]))
        tx = conn.transaction()
        await tx.start()
        await lock_outbox(conn)
        await copy_rows(conn, [row(2)])
        await tx.rollback()  # its seq is never used
        relay.wake(await copy(conn, [row(3)]))
        await drain(relay, conn)
        assert recorder.sent == await table_order(conn) == [row(1).value, row(3).value]


async def test_past_the_hand_limit_the_table_serves(pool: asyncpg.Pool, recorder: Recorder) -> None:
    async with pool.acquire() as conn:
        relay = Relay("t", pool, producer=None, hand_limit=3)
        await drain(relay, conn)
        relay.wake(await copy(conn, [row(1), row(2)]))
        relay.wake(await copy(conn, [row(3), row(4)]))  # 4 rows would wait: the first two are dropped
        assert len(relay._handed) == 1
        await drain(relay, conn)
        assert recorder.sent == await table_order(conn)


async def test_any_mix_of_handed_and_other_writes_publishes_each_row_once_in_order(
    pool: asyncpg.Pool, recorder: Recorder
) -> None:
    rng = random.Random(51)
    async with pool.acquire() as conn:
        relay = Relay("t", pool, producer=None, batch=3, hand_limit=8)
        n = 0
        for _ in range(60):
            rows = [row(n + i) for i in range(rng.randint(1, 4))]
            n += len(rows)
            step = rng.random()
            if step < 0.5:
                relay.wake(await copy(conn, rows))
            elif step < 0.7:
                await copy(conn, rows)  # committed, never handed
            elif step < 0.8:
                await write_rows(conn, rows)
            else:
                tx = conn.transaction()
                await tx.start()
                await lock_outbox(conn)
                await copy_rows(conn, rows)
                await tx.rollback()
            if rng.random() < 0.4:
                await relay.publish_once(conn)
        await drain(relay, conn)
        assert recorder.sent == await table_order(conn)
