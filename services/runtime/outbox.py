"""The outbox: what the service will publish, written in the same transaction as what caused it.

Rows are keyed by a deterministic id (the derived event's id; `dead-letter/<service>/<topic>/<partition>/
<offset>` for a dead letter). The derived events of a batch go in by COPY (`copy_rows`: their causes were
accepted in that very batch, so their ids are new); dead letters and what background tasks (settlement's
payout executor, ...) publish through `write_events` go in by INSERT ... ON CONFLICT DO NOTHING, so writing
them again after a crash inserts nothing new.

Publication is a position, not a mark per row: the relay publishes the rows after `relay_position.
published_seq` in seq order and then moves the position. That is sound only if rows become visible in seq
order, so every writer takes the outbox lock (an advisory lock held to the end of its transaction) right
before it inserts: a row with a smaller seq is then always committed (or rolled back) before a larger one.

Under that lock, one COPY's rows take consecutive seqs. The consumer hands what a committed transaction
queued by one COPY to the relay (`Queued`), which spares the relay reading the rows back: it looks up the
seqs of the first and the last (`Queued.span`) and publishes the rows from memory only if they follow its
position directly. The table stays the truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg
import msgspec

from schemas.codec import encode
from schemas.envelope import Event
from schemas.topics import DEAD_LETTER, ROUTES
from services.runtime.kafka import Record


class OutboxRow(NamedTuple):
    """One row to queue, field for field the table's columns (`OUTBOX_COLUMNS`), so that it goes to COPY as it
    is (a named tuple: half the cost of a frozen dataclass, one per derived event)."""

    event_id: str
    event_type: str
    topic: str
    key: bytes | None
    value: bytes
    headers: str = "[]"  # JSON [[name, value], ...], as the jsonb column holds it; only dead letters have any


class Message(msgspec.Struct, frozen=True):
    """One consumed Kafka record, as the processor needs it (nothing of aiokafka leaks past the consumer)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int = 0


def event_row(event: Event, topic_prefix: str = "") -> OutboxRow:
    return OutboxRow(event.id, event.type, topic_prefix + ROUTES[event.type].topic, event.key.encode(), encode(event))


def dead_letter_row(
    service: str, message: Message, code: str, reason: str, event_type: str | None, topic_prefix: str = ""
) -> OutboxRow:
    """The original bytes as the value, the refusal in headers."""
    return OutboxRow(
        event_id=f"dead-letter/{service}/{message.topic}/{message.partition}/{message.offset}",
        event_type=event_type or "unknown",
        topic=topic_prefix + DEAD_LETTER,
        key=message.key,
        value=message.value,
        headers=json.dumps([
            ["code", code],
            ["reason", reason],
            ["service", service],
            ["source_topic", message.topic],
            ["source_partition", str(message.partition)],
            ["source_offset", str(message.offset)],
        ]),
    )


def producer_headers(headers: str) -> list[tuple[str, bytes]]:
    """A row's headers as the producer takes them."""
    return [] if headers == "[]" else [(str(k), str(v).encode()) for k, v in json.loads(headers)]


OUTBOX_COLUMNS = ("event_id", "event_type", "topic", "key", "value", "headers")


async def lock_outbox(conn: asyncpg.Connection) -> None:
    """Take the service's outbox lock until the end of the current transaction (see the module docstring)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':outbox'))")


async def write_rows(conn: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    """Queue rows for the relay, ignoring ids already queued. Inside the caller's transaction, or its own."""
    if rows:
        async with conn.transaction():
            await lock_outbox(conn)
            await conn.executemany(
                """INSERT INTO outbox (event_id, event_type, topic, key, value, headers)
                   VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (event_id) DO NOTHING""",
                rows,
            )


OUTBOX_ID_KEY = "outbox_event_id_key"
"""The name PostgreSQL gave the outbox's UNIQUE (event_id): a COPY of a queued id fails on it."""


async def copy_rows(conn: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    """Queue rows whose ids cannot be queued yet (the derived events of events just accepted into the inbox:
    each id names its cause, and a cause is accepted once) with COPY, several times cheaper for the database
    than one INSERT per row. Inside the caller's transaction, which holds the outbox lock (`lock_outbox`).
    An id queued already fails the COPY, and the transaction with it (`UniqueViolationError` on
    `OUTBOX_ID_KEY`); the caller then stores again with `write_rows` (`Processor.write`)."""
    if rows:
        await conn.copy_records_to_table("outbox", records=rows, columns=OUTBOX_COLUMNS)


@dataclass(frozen=True, slots=True)
class Queued:
    """The outbox rows (at least one) one committed transaction queued by one COPY, under the outbox lock."""

    rows: Sequence[OutboxRow]

    async def span(self, conn: asyncpg.Connection) -> tuple[int, int] | None:
        """The seqs of the first and the last row: consecutive seqs hold all the rows. None if the table says
        otherwise (not expected)."""
        ids = [self.rows[0].event_id, self.rows[-1].event_id]
        first, last, found = await conn.fetchrow(
            "SELECT min(seq), max(seq), count(*) FROM outbox WHERE event_id = ANY($1::text[])", ids)
        if found != len(set(ids)) or last - first + 1 != len(self.rows):  # the span only once both are found
            return None
        return int(first), int(last)

    def records_after(self, first_seq: int, position: int) -> list[Record]:
        """Producer records of the rows (seqs from `first_seq` on) after `position`."""
        return [(r.topic, r.key, r.value, producer_headers(r.headers))
                for r in self.rows[max(position + 1 - first_seq, 0):]]


async def write_events(conn: asyncpg.Connection, events: Iterable[Event], topic_prefix: str = "") -> None:
    """Queue derived events for the relay; call inside the transaction that decided them."""
    await write_rows(conn, [event_row(e, topic_prefix) for e in events])


async def pending_records(conn: asyncpg.Connection, limit: int) -> tuple[int, list[Record]]:
    """What the relay sends next: up to `limit` pending rows as producer records (topic, key, value,
    headers), in seq order, with the last row's seq (0 when none)."""
    rows = await conn.fetch("SELECT seq, topic, key, value, headers FROM outbox_pending ORDER BY seq LIMIT $1", limit)
    records: list[Record] = [(r[1], r[2], r[3], producer_headers(r[4])) for r in rows]
    return (rows[-1][0] if rows else 0), records


async def published_position(conn: asyncpg.Connection) -> int:
    """The seq of the last published row."""
    return int(await conn.fetchval("SELECT published_seq FROM relay_position"))


async def mark_published(conn: asyncpg.Connection, last_seq: int) -> None:
    """Every row up to `last_seq` (the last of a batch published in seq order) is published."""
    await conn.execute(
        "UPDATE relay_position SET published_seq = $1, published_at = now() WHERE published_seq < $1", last_seq
    )


async def backlog(conn: asyncpg.Connection) -> int:
    """Rows not yet published, from two index lookups (a count over `outbox_pending` reads every pending row,
    or the whole table when the planner guesses a scan): the last seq minus the position. Exact but for seqs
    of rolled-back transactions between the two, which are never used."""
    return int(await conn.fetchval(
        """SELECT greatest(coalesce((SELECT max(seq) FROM outbox), 0)
                           - (SELECT published_seq FROM relay_position), 0)"""
    ))
