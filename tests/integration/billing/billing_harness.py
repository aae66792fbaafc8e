"""What the billing integration tests share: a simulated log as billing sees it, the offline reference, the
database read-back, and whether the service has consumed everything.

The log: `sn51 simulate`'s generator (with its delivery faults), every input line followed by what the scoring
core derives from it offline (`epoch.scored` and the rest), in the order `sn51 replay` feeds billing.
The reference: a fresh `BillingCore` folded over a sequence of those records exactly as the service's
processor does (undecodable and unread types skipped, duplicates by id skipped, refusals change nothing).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from schemas.codec import Refused, content_hash, decode, encode
from schemas.envelope import Event
from schemas.events import EVENT_MODELS, DayClosed
from schemas.topics import INPUT, ROUTES
from services.billing.core import BillingCore, ClosedDayEvent
from services.billing.ledger import GENESIS_HASH, Entry, canonical_order, day_hash
from services.billing.store import stored_entries
from services.pipeline import Pipeline
from services.runtime.kafka import committed_offsets, new_producer
from services.scoring.core import ScoringCore
from sn51.sim import Faults, lines

FAULTS = Faults(duplicates=0.01, out_of_order=0.05, malformed=0.005)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str  # without the test's prefix
    key: str | None
    value: bytes


def simulated_log(seed: int, providers: int, days: float, *, faults: Faults = FAULTS,
                  benchmark_interval_minutes: float = 240) -> list[Record]:
    """Input lines on the input topic, each followed by what scoring derives from it, on scoring's topic."""
    scoring = Pipeline([ScoringCore()])
    out: list[Record] = []
    for line in lines(seed, providers, days, faults=faults, benchmark_interval_minutes=benchmark_interval_minutes):
        out.append(Record(INPUT, line.key, line.text.encode()))
        try:
            derived = scoring.feed(decode(line.text), line.text)
        except Refused:
            continue
        out.extend(Record(ROUTES[e.type].topic, e.key, encode(e)) for e in derived)
    return out


def doubled_and_shuffled(records: Sequence[Record], seed: int) -> list[Record]:
    """Every record delivered twice: the first deliveries in log order, each second delivery at a random later
    place among the deliveries with the same key, the pending repeats of a key in random order."""
    rng = random.Random(seed)
    pending: dict[str | None, list[Record]] = defaultdict(list)
    out: list[Record] = []
    for r in records:
        out.append(r)
        waiting = pending[r.key]
        waiting.append(r)
        if rng.random() < 0.3:
            rng.shuffle(waiting)
            n = rng.randint(1, len(waiting))
            out.extend(waiting[:n])
            del waiting[:n]
    for key in sorted(pending, key=str):
        rest = pending[key]
        rng.shuffle(rest)
        out.extend(rest)
    return out


@dataclass
class Reference:
    """What billing gives for a sequence of messages, folded offline."""

    core: BillingCore = field(default_factory=BillingCore)
    accepted: list[str] = field(default_factory=list)
    derived: list[Event] = field(default_factory=list)
    entries: dict[date, tuple[Entry, ...]] = field(default_factory=dict)
    dead_letters: list[str] = field(default_factory=list)  # refusal codes, in order

    @property
    def statements(self) -> list[DayClosed]:
        return [self.core.statements[d] for d in sorted(self.core.statements)]

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.derived if e.type == type_]


def _peek_type(value: bytes) -> str | None:
    try:
        obj = json.loads(value)
    except ValueError:
        return None
    type_ = obj.get("type") if isinstance(obj, dict) else None
    return type_ if isinstance(type_, str) else None


def reference(values: Iterable[bytes]) -> Reference:
    ref = Reference()
    seen: dict[str, str] = {}
    for value in values:
        try:
            event = decode(value)
        except Refused as refused:
            type_ = _peek_type(value)
            if not (type_ in EVENT_MODELS and type_ not in ref.core.reads):
                ref.dead_letters.append(refused.code)
            continue
        if event.type not in ref.core.reads:
            continue
        digest = content_hash(value)
        if event.id in seen:
            if seen[event.id] != digest:
                ref.dead_letters.append("id_conflict")
            continue
        try:
            derived = ref.core.handle(event)
        except Refused as refused:
            ref.dead_letters.append(refused.code)
            continue
        seen[event.id] = digest
        ref.accepted.append(event.id)
        ref.derived.extend(derived)
        ref.entries.update((date.fromisoformat(e.data.billing_day), e.entries)
                           for e in derived if isinstance(e, ClosedDayEvent) and isinstance(e.data, DayClosed))
    return ref


async def publish(bootstrap: str, prefix: str, records: Sequence[Record], *, topic: str | None = None) -> None:
    """Publish in order (to `topic` for all of them, else each to its own topic), waiting for every ack."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        futures = [
            await producer.send(prefix + (topic or r.topic), value=r.value,
                                key=r.key.encode() if r.key is not None else None)
            for r in records
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def consumed_all(conn: asyncpg.Connection, bootstrap: str, group: str, counts: dict[str, int]) -> bool:
    """Every published record's offset committed, and nothing left to publish in the outbox."""
    with contextlib.suppress(Exception):  # the group may be rebalancing; ask again
        if await committed_offsets(bootstrap, group, list(counts)) != counts:
            return False
        return bool(await conn.fetchval("SELECT count(*) FROM outbox_pending") == 0)
    return False


# -- the database, read back ---------------------------------------------------------------------------------

PROVIDER_FIELDS = ("hotkey", "coldkey", "emission_rao", "rental_fee_usd_micros", "forfeited_rao",
                   "forfeited_usd_micros", "adjustment_rao", "adjustment_usd_micros", "payable_rao", "carried_rao",
                   "slashed_wei")


async def stored_days(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT billing_day, ledger_hash, previous_hash, tao_usd, alpha_tao, entry_count FROM day_statement "
        "ORDER BY billing_day"
    )
    return [dict(r) for r in rows]


def expected_days(ref: Reference) -> list[dict[str, Any]]:
    out = []
    previous = GENESIS_HASH
    for s in ref.statements:
        day = date.fromisoformat(s.billing_day)
        out.append({"billing_day": day, "ledger_hash": s.ledger_hash, "previous_hash": previous,
                    "tao_usd": s.prices.tao_usd, "alpha_tao": s.prices.alpha_tao,
                    "entry_count": len(ref.entries[day])})
        previous = s.ledger_hash
    return out


async def stored_provider_days(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(f"SELECT billing_day, {', '.join(PROVIDER_FIELDS)} FROM provider_day "
                            "ORDER BY billing_day, hotkey")
    return [(r["billing_day"].isoformat(), *(int(v) if f == "slashed_wei" else v
                                             for f, v in zip(PROVIDER_FIELDS, list(r.values())[1:], strict=True)))
            for r in rows]


def expected_provider_days(ref: Reference) -> list[tuple[Any, ...]]:
    return [(s.billing_day, *(getattr(p, f) for f in PROVIDER_FIELDS)) for s in ref.statements for p in s.providers]


async def stored_ledger(conn: asyncpg.Connection) -> dict[date, list[Entry]]:
    days = [r["billing_day"] for r in await conn.fetch("SELECT billing_day FROM day_statement ORDER BY 1")]
    return {d: await stored_entries(conn, d) for d in days}


def expected_ledger(ref: Reference) -> dict[date, list[Entry]]:
    return {d: list(canonical_order(es)) for d, es in sorted(ref.entries.items())}


def hash_chain(ledger: dict[date, list[Entry]]) -> list[str]:
    out, previous = [], GENESIS_HASH
    for day in sorted(ledger):
        previous = day_hash(previous, ledger[day])
        out.append(previous)
    return out


async def stored_earnings(conn: asyncpg.Connection) -> set[tuple[Any, ...]]:
    """Every earnings.accrued the service queued for publication (its outbox: the event, byte for byte)."""
    out = set()
    for r in await conn.fetch("SELECT event_id, value FROM outbox WHERE event_type = 'earnings.accrued'"):
        e = decode(r["value"])
        d: Any = e.data
        assert e.id == r["event_id"]
        out.add((e.id, d.hotkey, d.executor_id, d.billing_day, d.kind, d.amount_rao, d.amount_usd_micros, d.cause_id))
    return out


def expected_earnings(ref: Reference) -> set[tuple[Any, ...]]:
    out = set()
    for e in ref.of_type("earnings.accrued"):
        d: Any = e.data
        out.add((e.id, d.hotkey, d.executor_id, d.billing_day, d.kind, d.amount_rao, d.amount_usd_micros, d.cause_id))
    return out


async def stored_earning_days(conn: asyncpg.Connection) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    rows = await conn.fetch("SELECT hotkey, billing_day, kind, amount_rao, amount_usd_micros, events FROM earning_day")
    return {(r["hotkey"], r["billing_day"].isoformat(), r["kind"]):
            (r["amount_rao"], r["amount_usd_micros"], r["events"]) for r in rows}


def expected_earning_days(ref: Reference) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """The reference's earnings.accrued summed per (hotkey, day, kind), independently of the service's code."""
    out: dict[tuple[str, str, str], tuple[int, int, int]] = {}
    for e in ref.of_type("earnings.accrued"):
        d: Any = e.data
        key = (d.hotkey, d.billing_day, d.kind)
        rao, usd, n = out.get(key, (0, 0, 0))
        out[key] = (rao + (d.amount_rao or 0), usd + (d.amount_usd_micros or 0), n + 1)
    return out


async def assert_ledger_equals(conn: asyncpg.Connection, ref: Reference, *, outbox: bool = True) -> None:
    """The database's ledger, statements and earnings are the reference's, and hold together; with `outbox`
    (a service wrote them, not the projection alone), so is every earnings.accrued queued for publication."""
    assert ref.statements, "the log closed no day: nothing to compare"
    assert await stored_days(conn) == expected_days(ref)
    assert await stored_provider_days(conn) == expected_provider_days(ref)
    ledger = await stored_ledger(conn)
    assert ledger == expected_ledger(ref)
    assert hash_chain(ledger) == [s.ledger_hash for s in ref.statements]  # the stored rows give the hashes
    if outbox:
        assert await stored_earnings(conn) == expected_earnings(ref)
    assert await stored_earning_days(conn) == expected_earning_days(ref)
    trial = await conn.fetch("SELECT unit, total_debits, total_credits, net, balanced FROM trial_balance")
    assert {r["unit"] for r in trial} == {"rao", "usd_micros"}
    assert all(r["balanced"] and r["net"] == 0 and r["total_debits"] == r["total_credits"] for r in trial)


def published_statements(values: Iterable[bytes]) -> dict[str, bytes]:
    """The day.closed events on billing's topic by id; a republished one must be byte-identical."""
    out: dict[str, bytes] = {}
    for v in values:
        e = decode(v)
        if e.type != "day.closed":
            continue
        assert out.setdefault(e.id, v) == v, f"day.closed {e.id} published twice with different content"
    return out
