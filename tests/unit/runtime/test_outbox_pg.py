"""The outbox against a real PostgreSQL: publication by position is sound.

The relay publishes the rows after `relay_position.published_seq` in seq order; that loses nothing only if
rows become visible in seq order, which the outbox lock guarantees. These tests hold that: a writer that
inserted first but commits late keeps the later writer's rows invisible until it commits, a COPY of an id
already queued fails on the key `Processor.store` recognises, and the migration from per-row marks keeps
every unpublished row pending.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import asyncpg
import pytest

from services.runtime.db import RUNTIME_MIGRATIONS, create_pool, migrate, schema_name
from services.runtime.outbox import (
    OUTBOX_ID_KEY,
    OutboxRow,
    backlog,
    copy_rows,
    lock_outbox,
    mark_published,
    pending_records,
    write_rows,
)

pytestmark = pytest.mark.integration

async def unpublished(conn: asyncpg.Connection, limit: int) -> list[tuple[int, str]]:
    """(seq, event_id) of what the relay would send next, checked against what it sends."""
    rows = await conn.fetch("SELECT seq, event_id, value FROM outbox_pending ORDER BY seq LIMIT $1", limit)
    last, records = await pending_records(conn, limit)
    assert [r[2] for r in records] == [r["value"] for r in rows]
    assert last == (rows[-1]["seq"] if rows else 0)
    return [(r["seq"], r["event_id"]) for r in rows]


def row(i: int) -> OutboxRow:
    return OutboxRow(f"ev-{i}", "score.updated", "sn51.scoring", b"k", f'{{"n":{i}}}'.encode())


async def test_rows_become_visible_in_seq_order(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as first, pool.acquire() as second, pool.acquire() as relay:
        tx = first.transaction()
        await tx.start()
        await lock_outbox(first)  # held until it commits
        await copy_rows(first, [row(1), row(2)])

        async def later() -> None:
            await write_rows(second, [row(3)])

        waiting = asyncio.create_task(later())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the second writer waits for the first one's commit
        assert await unpublished(relay, 10) == []  # and nothing is visible to the relay yet
        await tx.commit()
        await asyncio.wait_for(waiting, 5)
        pending = await unpublished(relay, 10)
        assert [e for _, e in pending] == ["ev-1", "ev-2", "ev-3"]
        assert [seq for seq, _ in pending] == sorted(seq for seq, _ in pending)

async def test_the_position_moves_forward_only(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await write_rows(conn, [row(i) for i in range(5)])
        pending = await unpublished(conn, 3)
        await mark_published(conn, pending[-1][0])
        assert [e for _, e in await unpublished(conn, 10)] == ["ev-3", "ev-4"]
        await mark_published(conn, pending[0][0])  # a stale relay cannot move it back
        assert await backlog(conn) == 2

async def test_a_copy_of_a_queued_id_fails_on_the_outbox_id_key(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await write_rows(conn, [row(1)])
        with pytest.raises(asyncpg.UniqueViolationError) as raised:
            async with conn.transaction():
                await lock_outbox(conn)
                await copy_rows(conn, [row(2), row(1)])
        assert raised.value.constraint_name == OUTBOX_ID_KEY  # what `Processor.store` tells apart
        assert [e for _, e in await unpublished(conn, 10)] == ["ev-1"]

async def test_the_migration_from_marks_keeps_unpublished_rows_pending(database_url: str) -> None:
    service = f"outbox_{secrets.token_hex(4)}"
    schema = schema_name(service)
    pool = await create_pool(database_url, service)
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():  # the runtime's first migration only, as an older service left it
                await conn.execute(f'CREATE SCHEMA "{schema}"')
                await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                await conn.execute(RUNTIME_MIGRATIONS[0])
                await conn.execute(
                    """CREATE TABLE schema_migrations (scope text NOT NULL, version integer NOT NULL,
                           checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                           PRIMARY KEY (scope, version))""")

            await conn.execute("INSERT INTO schema_migrations (scope, version, checksum) VALUES ('runtime', 1, $1)",
                               hashlib.sha256(RUNTIME_MIGRATIONS[0].strip().encode()).hexdigest())
            for i in range(4):
                await conn.execute(
                    "INSERT INTO outbox (event_id, event_type, topic, value, published_at) VALUES ($1, 't', 't', "
                    "'\\x00', CASE WHEN $2 THEN now() END)", f"ev-{i}", i < 2)
            assert await migrate(conn, service) == len(RUNTIME_MIGRATIONS) - 1
            assert [e for _, e in await unpublished(conn, 10)] == ["ev-2", "ev-3"]
    finally:
        await pool.close()
