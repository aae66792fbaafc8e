"""The processor against a real PostgreSQL: one transaction per batch, inbox/outbox/dead letters, rebuild."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from schemas.codec import encode_obj
from schemas.envelope import Event
from schemas.topics import DEAD_LETTER, SCORING
from services.runtime.db import RUNTIME_MIGRATIONS, create_pool, get_state, migrate, set_state
from services.runtime.outbox import Message, write_events
from services.runtime.processor import Accepted, DeadLetter, Decided, Duplicate, Processor, rebuild
from tests.unit.runtime.cores import PROJECTION_SQL, REFUSED_HOTKEY, CountingCore, CountsProjection, listing, projection

pytestmark = pytest.mark.integration

project = projection()


@dataclass
class Db:
    pool: asyncpg.Pool
    service: str


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    service = f"proc_{secrets.token_hex(4)}"
    pool = await create_pool(database_url, service)
    async with pool.acquire() as conn:
        assert await migrate(conn, service, [PROJECTION_SQL]) == len(RUNTIME_MIGRATIONS) + 1
        assert await migrate(conn, service, [PROJECTION_SQL]) == 0
    yield Db(pool, service)
    await pool.close()


def batch(*values: bytes, start: int = 0) -> list[Message]:
    return [Message("sn51.input", 0, start + i, None, v) for i, v in enumerate(values)]


async def test_a_batch_stores_inbox_outbox_dead_letters_and_projection(db: Db) -> None:
    core = CountingCore()
    processor = Processor(db.service, core, project)
    values = [
        encode_obj(listing("a", "hk1")),
        encode_obj(listing("b", "hk1", executor="ex-2")),
        encode_obj(listing("a", "hk1")),  # duplicate
        encode_obj(listing("a", "hk1", price="1.00")),  # id_conflict
        b"{oops",  # malformed
        encode_obj(listing("r", REFUSED_HOTKEY)),  # refused by the core
        encode_obj(listing("c", "hk2")),
    ]
    async with db.pool.acquire() as conn:
        outcomes = await processor.process(conn, batch(*values))
        assert [type(o) for o in outcomes] == [
            Accepted, Accepted, Duplicate, DeadLetter, DeadLetter, DeadLetter, Accepted,
        ]
        inbox = await conn.fetch("SELECT seq, event_id, raw, source_offset FROM inbox ORDER BY seq")
        assert [r["event_id"] for r in inbox] == ["a", "b", "c"]
        assert [r["raw"] for r in inbox] == [values[0], values[1], values[6]]
        assert [r["source_offset"] for r in inbox] == [0, 1, 6]
        assert dict(await conn.fetch("SELECT hotkey, n FROM listing_counts")) == {"hk1": 2, "hk2": 1}
        dead = await conn.fetch("SELECT code, raw, source_offset FROM dead_letter ORDER BY source_offset")
        assert [(r["code"], r["raw"], r["source_offset"]) for r in dead] == [
            ("id_conflict", values[3], 3), ("malformed", values[4], 4), ("bad_listing", values[5], 5),
        ]
        out = await conn.fetch("SELECT topic, event_type FROM outbox ORDER BY seq")
        assert [(r["topic"], r["event_type"]) for r in out] == [
            (SCORING, "score.updated"), (SCORING, "score.updated"),
            (DEAD_LETTER, "executor.listed"), (DEAD_LETTER, "unknown"), (DEAD_LETTER, "executor.listed"),
            (SCORING, "score.updated"),
        ]

        # The same batch redelivered (a crash before the offset commit): nothing changes.
        again = await processor.process(conn, batch(*values))
        assert sum(isinstance(o, Accepted) for o in again) == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 6
        assert await conn.fetchval("SELECT count(*) FROM dead_letter") == 3
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 3

        fresh = CountingCore()
        assert await rebuild(conn, fresh) == 3
        assert fresh.listings == core.listings
        assert fresh.handled == ["a", "b", "c"]


async def test_a_failing_projection_rolls_back_the_whole_batch(db: Db) -> None:
    async def broken(conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
        if event.id == "y":
            raise RuntimeError("projection failed")

    processor = Processor(db.service, CountingCore(), broken)
    async with db.pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="projection failed"):
            await processor.process(conn, batch(encode_obj(listing("x", "hk1")), encode_obj(listing("y", "hk1"))))
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_service_state_round_trips_and_edited_migrations_are_refused(db: Db) -> None:
    async with db.pool.acquire() as conn:
        assert await get_state(conn, "checkpoint") is None
        await set_state(conn, "checkpoint", {"block": 7})
        await set_state(conn, "checkpoint", {"block": 8})
        assert await get_state(conn, "checkpoint") == {"block": 8}
        with pytest.raises(RuntimeError, match="was edited"):
            await migrate(conn, db.service, [PROJECTION_SQL + " -- changed"])


async def test_a_two_step_projection_prepares_each_accepted_event_and_writes_the_batch(db: Db) -> None:
    seen: list[tuple[str, list[str]]] = []
    written: list[list[str]] = []

    class Recording(CountsProjection):
        def prepare(self, event: Event, derived: list[Event]) -> str | None:
            seen.append((event.id, [d.causation_id or "" for d in derived]))
            return super().prepare(event, derived)

        async def write(self, conn: asyncpg.Connection, prepared: list[str]) -> None:
            written.append(prepared)
            await super().write(conn, prepared)

    processor = Processor(db.service, CountingCore(), projection=Recording())
    values = [listing("p", "hk1"), listing("q", "hk2"), listing("p", "hk1"), listing("s", "hk1")]
    async with db.pool.acquire() as conn:
        await processor.process(conn, batch(*(encode_obj(v) for v in values)))
        assert seen == [("p", ["p"]), ("q", ["q"]), ("s", ["s"])]  # accepted events only (the duplicate not)
        assert written == [["hk1", "hk2", "hk1"]]  # one write for the batch, in order
        assert dict(await conn.fetch("SELECT hotkey, n FROM listing_counts")) == {"hk1": 2, "hk2": 1}


@pytest.mark.parametrize("joined", [False, True], ids=["one_transaction_each", "joined"])
async def test_a_batch_decided_before_the_previous_one_is_stored_still_knows_its_ids(db: Db, joined: bool) -> None:
    """The consumer decides batch N + 1 while batch N is being stored: an id accepted in N and not yet in the
    inbox is still a duplicate (same content) or a conflict (other content) in N + 1 (`Processor.unsettled`).
    The writer may store the two in one transaction (`Decided.joined`): the same rows, in the same order."""
    core = CountingCore()
    processor = Processor(db.service, core, project)
    first = batch(encode_obj(listing("a", "hk1")))
    second = batch(encode_obj(listing("a", "hk1")), encode_obj(listing("a", "hk1", price="1.00")),
                   encode_obj(listing("b", "hk2")), start=1)
    async with db.pool.acquire() as store_conn, db.pool.acquire() as decide_conn:
        n = await processor.decide(decide_conn, first)
        n_plus_1 = await processor.decide(decide_conn, second)  # before N is stored
        assert [type(o) for o in n_plus_1.outcomes] == [Duplicate, DeadLetter, Accepted]
        assert isinstance(n_plus_1.outcomes[1], DeadLetter) and n_plus_1.outcomes[1].code == "id_conflict"
        for stored in ([Decided.joined([n, n_plus_1])] if joined else [n, n_plus_1]):
            await processor.store(store_conn, stored)
        assert processor.unsettled == {}  # settled once stored
        assert [r["event_id"] for r in await store_conn.fetch("SELECT event_id FROM inbox ORDER BY seq")] == ["a", "b"]
        outbox = [r["event_type"] for r in await store_conn.fetch("SELECT event_type FROM outbox ORDER BY seq")]
        # a's derived event, the conflict's dead letter, b's derived event
        assert outbox == ["score.updated", "executor.listed", "score.updated"]
    assert core.handled == ["a", "b"]


async def test_the_inbox_lookup_is_planned_for_each_batch_not_once_for_an_empty_inbox(db: Db) -> None:
    """On one connection (the consumer holds one), PostgreSQL may switch a prepared statement to a generic plan
    after five executions, made for the table as it is then: for the lookup on an empty inbox, a sequential
    scan that stays one as the inbox grows. The service's connections plan every execution."""
    processor = Processor(db.service, CountingCore(), project)
    async with db.pool.acquire() as conn:
        for n in range(8):  # batches of many ids: a generic plan (made for ten) looks cheaper than theirs
            values = [encode_obj(listing(f"plan-{n}-{i}", "hk1", executor=f"ex-{i}")) for i in range(300)]
            await processor.process(conn, batch(*values, start=n * 300))
        plans = await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
                                 "WHERE statement LIKE 'SELECT event_id, content_hash FROM inbox WHERE%'")
    assert [(r["generic_plans"], r["custom_plans"]) for r in plans] == [(0, 8)], [dict(r) for r in plans]


async def test_a_store_hands_the_relay_exactly_the_rows_its_copy_queued(db: Db) -> None:
    processor = Processor(db.service, CountingCore(), project)
    async with db.pool.acquire() as conn:
        clean = await processor.decide(conn, batch(encode_obj(listing("a", "hk1")), encode_obj(listing("b", "hk2"))))
        queued = await processor.store(conn, clean)
        assert queued is not None
        table = await conn.fetch("SELECT event_id FROM outbox ORDER BY seq")
        assert [r["event_id"] for r in table] == [row.event_id for row in queued.rows]
        assert len(queued.rows) == 2 and await queued.span(conn) is not None
        # A batch with a dead letter queues by INSERT ... ON CONFLICT as well: the relay reads the table.
        faulty = await processor.decide(conn, batch(b"{oops", encode_obj(listing("c", "hk3")), start=2))
        assert await processor.store(conn, faulty) is None
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 4


async def test_a_batch_deriving_an_id_queued_already_is_stored_again_with_insert_on_conflict(db: Db) -> None:
    processor = Processor(db.service, CountingCore(), project)
    async with db.pool.acquire() as conn:
        decided = await processor.decide(conn, batch(encode_obj(listing("a", "hk1")), encode_obj(listing("b", "hk2"))))
        first = next(o for o in decided.outcomes if isinstance(o, Accepted)).derived[0]
        await write_events(conn, [first])  # queued before (not expected: its cause is accepted only now)
        assert await processor.store(conn, decided) is None  # stored again: the relay reads the table
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 2
        derived = [e.id for o in decided.outcomes if isinstance(o, Accepted) for e in o.derived]
        assert len(derived) == 2
        queued = [r["event_id"] for r in await conn.fetch("SELECT event_id FROM outbox ORDER BY seq")]
        assert queued == derived  # each once: the first as queued before, the other one now
