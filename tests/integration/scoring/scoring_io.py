"""Helpers of the scoring service tests: a simulated input log, what the core makes of it, the broker's topics
and a fresh database per test (the service's schema is always `scoring`)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas.envelope import Event
from services.runtime.outbox import Message
from services.runtime.processor import Accepted, DeadLetter, decide, decode_message
from services.scoring.core import ScoringCore
from sn51.localinfra.postgres import with_database
from sn51.sim import Faults, lines

DEADLINE_S = 45.0


def simulated_log(seed: int, providers: int, days: float) -> list[bytes]:
    """A realistic input log from the simulator, with a few delivery faults and one params update."""
    faults = Faults(duplicates=0.03, out_of_order=0.03, malformed=0.01)
    return [line.text.encode() for line in lines(seed, providers, days, faults=faults, params_update=True)]


@dataclass
class Expected:
    """What the service must make of a log consumed in file order (offset i = line i)."""

    core: ScoringCore = field(default_factory=ScoringCore)
    derived: list[Event] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)  # (source offset, code)


def expected(log: list[bytes], topic: str) -> Expected:
    """The core over the log through the runtime's own pure decision (duplicates, id conflicts, refusals)."""
    out = Expected()
    known: dict[str, str] = {}
    for offset, raw in enumerate(log):
        message = Message(topic, 0, offset, None, raw)
        outcome = decide(out.core, known, message, decode_message(message))
        if isinstance(outcome, Accepted):
            out.derived.extend(outcome.derived)
        elif isinstance(outcome, DeadLetter):
            out.dead.append((offset, outcome.code))
    return out


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a one-partition topic, from the start to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while True:
            polled = await consumer.getmany(tp, timeout_ms=300)
            if not polled:
                return records
            records.extend(polled[tp])
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = DEADLINE_S) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not await check():
        if loop.time() > end:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A new empty database on the server of `database_url`, dropped afterwards."""
    name = f"sn51_scoring_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(database_url, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
