"""The one processing step: a batch of consumed messages in ONE PostgreSQL transaction. Pure of Kafka.

For each message, in order (`decide`, pure but for the core's own state):
- undecodable (`schemas.codec.decode` refuses): a dead letter, unless it names a type this service does not read;
- a type the service does not read: ignored;
- an id already in the inbox (or earlier in the batch) with the same content hash: a duplicate, no effect;
  with another hash: `id_conflict`, a dead letter;
- otherwise `core.handle(event)`: `Refused` is a dead letter and stores nothing else (the core changed nothing);
  accepted, the event goes to the inbox with its hash, original bytes and the next sequence number, its
  derived events to the outbox, and the service's projection hook writes its read model.
`decide` folds a batch into the core; `store` then writes all of that in one transaction and commits. The
caller commits the Kafka offsets only after `store` returns. If anything raises, the transaction rolls back
and the exception propagates: the process must die, because the in-memory core may already hold the batch
(and the next one); at start-up `rebuild` re-folds the inbox into a fresh core.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from schemas.codec import Refused, content_hash, decode, unstorable_text
from schemas.envelope import Event
from schemas.events import EVENT_MODELS
from schemas.topics import ROUTES
from services.core import Core, awaits_origin, takes
from services.runtime import metrics
from services.runtime.logging import for_event, get_logger
from services.runtime.outbox import (
    OUTBOX_ID_KEY,
    Message,
    OutboxRow,
    Queued,
    copy_rows,
    dead_letter_row,
    event_row,
    lock_outbox,
    write_rows,
)
from services.runtime.projection import Projection

INBOX_COLUMNS = ("event_id", "event_type", "content_hash", "raw", "source_topic", "source_partition", "source_offset")

ProjectHook = Callable[[asyncpg.Connection, Event, list[Event]], Awaitable[None]]
"""A read model written event by event in the store step: a function of the event and what it derived."""


class Accepted(msgspec.Struct, frozen=True):
    message: Message
    event: Event
    content_hash: str
    derived: list[Event]


class Duplicate(msgspec.Struct, frozen=True):
    message: Message
    event: Event


class Ignored(msgspec.Struct, frozen=True):
    message: Message
    event_type: str


class DeadLetter(msgspec.Struct, frozen=True):
    message: Message
    code: str
    reason: str
    event_id: str | None
    event_type: str | None


Outcome = Accepted | Duplicate | Ignored | DeadLetter


def peek(raw: bytes) -> tuple[str | None, str | None]:
    """The `id` and `type` of a message the codec refused, where they can be read at all (and stored: not
    from a message whose strings no text column can hold)."""
    if unstorable_text(raw) is not None:
        return None, None
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    id_, type_ = obj.get("id"), obj.get("type")
    return (id_ if isinstance(id_, str) else None), (type_ if isinstance(type_, str) else None)


_TYPE_KEY = re.compile(rb'"type"\s*:')
_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_.]+)"')


def unread_type(raw: bytes, reads: frozenset[str]) -> str | None:
    """The type of a message that surely is of a type the service does not read (every `"type"` key in its
    bytes names a known event type outside `reads`), found without decoding it; else None, and the full
    decode decides. A service's topics carry mostly what it does not read (benchmarks, for billing), and such
    messages are ignored, valid or not, so their validation is work thrown away."""
    last = _TYPE.match(raw, max(raw.rfind(b'"type"'), 0))  # the envelope's, in canonical (sorted) key order
    if last is None or last.group(1).decode() in reads:  # e.g. an epoch split: no need to scan its 200 kB
        return None
    found = _TYPE.findall(raw)
    if not found or len(found) != len(_TYPE_KEY.findall(raw)):
        return None
    types = sorted({t.decode() for t in found})
    return types[0] if all(t in EVENT_MODELS and t not in reads for t in types) else None


def decode_message(message: Message, reads: frozenset[str] | None = None) -> Event | Refused | Ignored:
    """The decoded event, the codec's refusal, or (given the service's `reads`) an `Ignored` for a message of
    a type the service does not read."""
    if reads is not None:
        skipped = unread_type(message.value, reads)
        if skipped is not None:
            return Ignored(message, skipped)
    try:
        return decode(message.value)
    except Refused as refused:
        return refused


def decide(core: Core, known: dict[str, str], message: Message, decoded: Event | Refused | Ignored,
           topic_prefix: str = "") -> Outcome:
    """What one message does. Adds an accepted event's hash to `known`; `core` folds only accepted events.
    An event that arrives on another topic than its type's (an `epoch.scored` on the input topic: anyone may
    produce there, only scoring on its own) is refused, `wrong_topic`."""
    if isinstance(decoded, Ignored):
        return decoded
    if isinstance(decoded, Refused):
        event_id, event_type = peek(message.value)
        if event_type in EVENT_MODELS and event_type not in core.reads:
            return Ignored(message, event_type)
        return DeadLetter(message, decoded.code, decoded.reason, event_id, event_type)
    event = decoded
    if not takes(core, event.type):
        return Ignored(message, event.type)
    home = topic_prefix + ROUTES[event.type].topic
    if message.topic != home:
        return DeadLetter(message, "wrong_topic", f"{event.type} travels on {home}, not {message.topic}", event.id,
                          event.type)
    digest = content_hash(message.value)
    seen = known.get(event.id)
    if seen == digest:
        return Duplicate(message, event)
    if seen is not None:
        return DeadLetter(
            message, "id_conflict", f"id {event.id} was seen before with other content", event.id, event.type
        )
    try:
        derived = core.handle(event)
    except Refused as refused:
        return DeadLetter(message, refused.code, refused.reason, event.id, event.type)
    known[event.id] = digest
    return Accepted(message, event, digest, derived)


@dataclass(slots=True)
class Decided:
    """A batch the core has decided, with everything its transaction will write already built (so that storing
    it is I/O only): the inbox records, the outbox rows in outcome order (a `DeadLetter` stands for its row,
    which goes in by INSERT ... ON CONFLICT, between the COPYs of the derived events around it), and what the
    projection prepared."""

    messages: Sequence[Message]
    outcomes: list[Outcome]
    started: float
    inbox: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[OutboxRow | DeadLetter] = field(default_factory=list)
    prepared: list[Any] = field(default_factory=list)

    @classmethod
    def joined(cls, batches: Sequence[Decided]) -> Decided:
        """Consecutive decided batches as one, in order (stored in one transaction)."""
        if len(batches) == 1:
            return batches[0]
        return cls(
            [m for b in batches for m in b.messages], [o for b in batches for o in b.outcomes], batches[0].started,
            inbox=[r for b in batches for r in b.inbox], outbox=[r for b in batches for r in b.outbox],
            prepared=[r for b in batches for r in b.prepared],
        )


class Processor:
    """Owns the live core of one service and applies consumed batches to it and to PostgreSQL.

    A batch goes through two steps: `decide` (the inbox lookup, the core message by message, and the rows to
    write) and `store` (one transaction, I/O only). `process` does both in turn; the consumer overlaps them,
    storing batch N while the core decides batch N + 1 (`consumer.py`). The ids accepted in batches decided
    but not yet stored are kept in `unsettled`, so a lookup that runs while an earlier batch commits still
    knows them."""

    def __init__(
        self,
        service: str,
        core: Core,
        project: ProjectHook | None = None,
        *,
        projection: Projection[Any] | None = None,
        topic_prefix: str = "",
        clock: Callable[[], float] = time.perf_counter,
        yield_seconds: float = 0.002,
    ) -> None:
        self.service = service
        self.core = core
        self.project = project
        self.projection = projection
        self.topic_prefix = topic_prefix
        self.clock = clock
        self.yield_seconds = yield_seconds
        self.unsettled: dict[str, str] = {}
        self.log = get_logger(service)
        self._debug = logging.getLogger("sn51").isEnabledFor(logging.DEBUG)

    async def process(self, conn: asyncpg.Connection, messages: Sequence[Message]) -> list[Outcome]:
        """Decide and store one batch, in turn."""
        decided = await self.decide(conn, messages)
        await self.store(conn, decided)
        return decided.outcomes

    async def decide(self, conn: asyncpg.Connection, messages: Sequence[Message]) -> Decided:
        """Decode the batch, look its ids up in the inbox (`conn`, outside any transaction of this batch), fold
        it into the core, and build what `store` writes. Every `yield_seconds` of deciding, the event loop gets
        a turn, so that the relay, the offset commits and what follows each stored transaction go on (a count
        of messages would not do: an epoch split takes a thousand times a rental's time)."""
        started = turn = self.clock()
        skip = None if awaits_origin(self.core) else self.core.reads  # see `takes`
        decoded = [decode_message(m, skip) for m in messages]
        ids = sorted({d.id for d in decoded if isinstance(d, Event)})
        # The unsettled ids first, read before the query: a batch committing while it runs is then known
        # either way (its ids leave `unsettled` only after its commit).
        known = {i: self.unsettled[i] for i in ids if i in self.unsettled}
        if ids:
            known.update((r[0], r[1]) for r in await conn.fetch(
                "SELECT event_id, content_hash FROM inbox WHERE event_id = ANY($1::text[])", ids))
        batch = Decided(messages, [], started)
        prefix, projection = self.topic_prefix, self.projection
        for message, d in zip(messages, decoded, strict=True):
            outcome = decide(self.core, known, message, d, prefix)
            batch.outcomes.append(outcome)
            if isinstance(outcome, Accepted):
                event = outcome.event
                self.unsettled[event.id] = outcome.content_hash
                batch.inbox.append((event.id, event.type, outcome.content_hash, message.value, message.topic,
                                    message.partition, message.offset))
                batch.outbox.extend([event_row(e, prefix) for e in outcome.derived])
                if projection is not None:
                    prepared = projection.prepare(event, outcome.derived)
                    if prepared is not None:
                        batch.prepared.append(prepared)
            elif isinstance(outcome, DeadLetter):
                batch.outbox.append(outcome)
            if self.clock() - turn >= self.yield_seconds:
                await asyncio.sleep(0)
                turn = self.clock()
        return batch

    async def store(self, conn: asyncpg.Connection, decided: Decided) -> Queued | None:
        """Write a decided batch in ONE transaction: the projection, the inbox, dead letters, the outbox. Its
        accepted ids are settled once it has committed. Returns the outbox rows it queued when one COPY queued
        them all (for the relay: `outbox.Queued`)."""
        queued = await self.write(conn, decided)
        self.settle(decided)
        return queued

    async def write(self, conn: asyncpg.Connection, decided: Decided) -> Queued | None:
        """`store`'s transaction, and nothing else: safe on another thread's event loop (`writer.py`).

        The derived events go in by COPY, which fails the transaction if one of their ids is queued already
        (not expected: each names a cause accepted in this very batch); the batch is then stored again, the
        outbox rows by INSERT ... ON CONFLICT, which skips what is queued (a savepoint around every COPY
        would cost two round trips per batch for a case that does not happen)."""
        try:
            return await self._store(conn, decided, copy=True)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != OUTBOX_ID_KEY:
                raise
            self.log.warning("an outbox id was queued already; storing the batch again", error=str(error),
                             detail=error.detail)  # the detail names the id
            return await self._store(conn, decided, copy=False)

    def settle(self, decided: Decided) -> None:
        """After `write` committed: its accepted ids leave `unsettled`; metrics and logs."""
        for o in decided.outcomes:
            if isinstance(o, Accepted):
                self.unsettled.pop(o.event.id, None)
        self._count(decided.outcomes, self.clock() - decided.started)

    async def _store(self, conn: asyncpg.Connection, decided: Decided, *, copy: bool) -> Queued | None:
        async with conn.transaction():
            if decided.outbox:
                await lock_outbox(conn)  # held to the commit (see `outbox`)
            if self.project is not None:
                for o in decided.outcomes:
                    if isinstance(o, Accepted):
                        await self.project(conn, o.event, o.derived)
            if self.projection is not None and decided.prepared:
                await self.projection.write(conn, decided.prepared)
            return await self._write(conn, decided, copy=copy)

    async def _write(self, conn: asyncpg.Connection, decided: Decided, *, copy: bool) -> Queued | None:
        if decided.inbox:  # ids checked against the inbox and `unsettled` by the only writer: COPY
            await conn.copy_records_to_table("inbox", records=decided.inbox, columns=INBOX_COLUMNS)
        dead = [o for o in decided.outcomes if isinstance(o, DeadLetter)]
        if copy and not dead:  # derived events only (the usual batch): one COPY
            rows = [r for r in decided.outbox if isinstance(r, OutboxRow)]
            await copy_rows(conn, rows)
            return Queued(rows) if rows else None
        if dead:
            await conn.executemany(
                """INSERT INTO dead_letter (code, reason, event_id, event_type, raw, source_topic,
                                            source_partition, source_offset)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING""",
                [
                    (d.code, d.reason, d.event_id, d.event_type, d.message.value, d.message.topic,
                     d.message.partition, d.message.offset)
                    for d in dead
                ],
            )
        # Outbox rows in outcome order: derived events by COPY (their causes were accepted just now, so their
        # ids are new) or, stored again, by INSERT ... ON CONFLICT; dead letters by INSERT ... ON CONFLICT (a
        # redelivered refusal is refused again). The relay reads these from the table (a skipped INSERT
        # leaves its seq unused).
        derived = copy_rows if copy else write_rows
        run: list[OutboxRow] = []
        for row in decided.outbox:
            if isinstance(row, OutboxRow):
                run.append(row)
                continue
            await derived(conn, run)
            run = []
            await write_rows(conn, [
                dead_letter_row(self.service, row.message, row.code, row.reason, row.event_type, self.topic_prefix)
            ])
        await derived(conn, run)
        return None

    def _count(self, outcomes: Sequence[Outcome], seconds: float) -> None:
        svc = self.service
        metrics.BATCH_SECONDS.labels(svc).observe(seconds)
        processed: Counter[str] = Counter()
        derived: Counter[str] = Counter()
        for o in outcomes:
            if isinstance(o, Accepted):
                processed[o.event.type] += 1
                derived.update(e.type for e in o.derived)
                if self._debug:  # one line per handled event (SN51_LOG_LEVEL=DEBUG), with its id and type
                    for_event(self.log, o.event).debug(
                        "event processed", derived=[e.type for e in o.derived], offset=o.message.offset)
            elif isinstance(o, Duplicate):
                metrics.DUPLICATES.labels(svc, o.event.type).inc()
                for_event(self.log, o.event).debug("duplicate skipped")
            elif isinstance(o, DeadLetter):
                # a known type or "unknown": a label per type a producer makes up would grow without bound
                metrics.REFUSED.labels(svc, o.event_type if o.event_type in EVENT_MODELS else "unknown", o.code).inc()
                metrics.DEAD_LETTERED.labels(svc, o.code).inc()
                if o.code == "id_conflict":
                    metrics.ID_CONFLICTS.labels(svc).inc()
                self.log.warning(
                    "dead letter", code=o.code, reason=o.reason, event_id=o.event_id, event_type=o.event_type,
                    source_topic=o.message.topic, source_offset=o.message.offset,
                )
        for type_, n in processed.items():
            metrics.PROCESSED.labels(svc, type_).inc(n)
        for type_, n in derived.items():
            metrics.DERIVED.labels(svc, type_).inc(n)


async def rebuild(conn: asyncpg.Connection, core: Core, *, prefetch: int = 2_000) -> int:
    """Re-fold the service's inbox, in sequence order, into a fresh `core`; derived events are dropped
    (they are in the outbox already). Returns how many events were folded. A stored event the core now
    refuses means the core is not deterministic: that raises."""
    count = 0
    async with conn.transaction(readonly=True):
        cursor: Any = conn.cursor("SELECT event_id, raw FROM inbox ORDER BY seq", prefetch=prefetch)
        async for row in cursor:
            event = decode(row["raw"])
            try:
                core.handle(event)
            except Refused as refused:
                raise RuntimeError(
                    f"inbox event {row['event_id']} was accepted before and is refused now: {refused}"
                ) from refused
            count += 1
    return count
