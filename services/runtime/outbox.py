"""The outbox: what the service will publish, written in the same transaction as what caused it.

Rows are keyed by a deterministic id (the derived event's id; `dead-letter/<service>/<topic>/<partition>/
<offset>` for a dead letter), so a replay after a crash inserts nothing new (`ON CONFLICT DO NOTHING`).
Background tasks (settlement's payout executor, ...) publish through `write_events` the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from schemas.codec import encode
from schemas.envelope import Event
from schemas.topics import DEAD_LETTER, ROUTES


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: str
    event_type: str
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed Kafka record, as the processor needs it (nothing of aiokafka leaks past the consumer)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int = 0


def event_row(event: Event, topic_prefix: str = "") -> OutboxRow:
    return OutboxRow(
        event_id=event.id,
        event_type=event.type,
        topic=topic_prefix + ROUTES[event.type].topic,
        key=event.key.encode(),
        value=encode(event),
    )


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
        headers=(
            ("code", code),
            ("reason", reason),
            ("service", service),
            ("source_topic", message.topic),
            ("source_partition", str(message.partition)),
            ("source_offset", str(message.offset)),
        ),
    )


async def write_rows(conn: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    if rows:
        await conn.executemany(
            """INSERT INTO outbox (event_id, event_type, topic, key, value, headers)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (event_id) DO NOTHING""",
            [(r.event_id, r.event_type, r.topic, r.key, r.value, json.dumps(r.headers)) for r in rows],
        )


async def write_events(conn: asyncpg.Connection, events: Iterable[Event], topic_prefix: str = "") -> None:
    """Queue derived events for the relay; call inside the transaction that decided them."""
    await write_rows(conn, [event_row(e, topic_prefix) for e in events])


async def unpublished(conn: asyncpg.Connection, limit: int) -> list[tuple[int, OutboxRow]]:
    rows = await conn.fetch(
        """SELECT seq, event_id, event_type, topic, key, value, headers FROM outbox
           WHERE published_at IS NULL ORDER BY seq LIMIT $1""",
        limit,
    )
    return [
        (
            r["seq"],
            OutboxRow(
                r["event_id"], r["event_type"], r["topic"], r["key"], r["value"],
                tuple((str(k), str(v)) for k, v in json.loads(r["headers"])),
            ),
        )
        for r in rows
    ]


async def mark_published(conn: asyncpg.Connection, seqs: Sequence[int]) -> None:
    await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", list(seqs))


async def backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
