"""The outbox relay's own process against a real broker and PostgreSQL: a commit that writes outbox rows wakes
it (a notification, not the poll), it publishes them, the service learns at once when it exits, and it does
not outlive a SIGKILLed service."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import psutil
import pytest

from services.runtime import relay_process
from services.runtime.db import create_pool, migrate
from services.runtime.kafka import create_topics
from services.runtime.outbox import OutboxRow, backlog, outbox_channel, write_rows
from services.runtime.settings import Settings
from tests.integration.kit import eventually, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[str]:
    name = f"relay_{secrets.token_hex(4)}"
    pool = await create_pool(database_url, name)
    async with pool.acquire() as conn:
        await migrate(conn, name)
    await pool.close()
    yield name


def rows(topic: str, n: int) -> list[OutboxRow]:
    return [OutboxRow(f"ev-{i}", "score.updated", topic, b"k", f'{{"n":{i}}}'.encode()) for i in range(n)]


async def test_a_commit_notifies_the_relay_channel_and_a_rollback_does_not(database_url: str, service: str) -> None:
    pool = await create_pool(database_url, service)
    heard: list[str] = []
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(outbox_channel(service), lambda _c, _p, channel, _payload: heard.append(channel))
    try:
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await write_rows(conn, rows("t", 1))
            await asyncio.sleep(0.2)
            assert heard == []  # not before the commit
            await tx.rollback()
            await asyncio.sleep(0.2)
            assert heard == []  # nor after a rollback
            await write_rows(conn, rows("t", 2))  # its own transaction

        async def notified() -> bool:
            return bool(heard)

        await eventually(notified, "the notification", 10)
        assert heard == [f"{service}.outbox"]
    finally:
        await listener.close()
        await pool.close()


async def test_the_relay_process_publishes_what_is_committed(database_url: str, kafka_bootstrap: str,
                                                             service: str) -> None:
    topic = f"relay-{secrets.token_hex(3)}"
    await create_topics(kafka_bootstrap, [topic])
    # A poll far in the future: what it publishes within seconds it was woken for.
    settings = Settings(database_url=database_url, kafka_bootstrap=kafka_bootstrap, relay_idle_seconds=3600)
    process = relay_process.start(service, settings)
    pool = await create_pool(database_url, service)
    try:
        async with pool.acquire() as conn:
            async def listening() -> bool:  # the relay's session has run LISTEN on the channel
                return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query = $1",
                                                f'LISTEN "{outbox_channel(service)}"'))

            async def published() -> bool:
                return not await backlog(conn)

            await eventually(listening, "the relay to listen", 60)
            for first in (0, 3):  # two commits, two wake-ups
                await write_rows(conn, rows(topic, first + 3)[first:])
                await eventually(published, "the rows published", 10)
        values = [r.value for r in await read_topic(kafka_bootstrap, topic)]
        assert values == [f'{{"n":{i}}}'.encode() for i in range(6)]
        assert process.is_alive()
    finally:
        relay_process.stop(process)
        await pool.close()


async def test_the_service_learns_at_once_that_its_relay_exited(service: str) -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", kafka_bootstrap="127.0.0.1:1")
    process = relay_process.start(service, settings)  # cannot connect: fails and exits
    try:
        with pytest.raises(RuntimeError, match="outbox relay process exited"):
            await asyncio.wait_for(relay_process.watch(process), 60)
        assert process.exitcode not in (0, None)
    finally:
        relay_process.stop(process)


PARENT = """
import sys, time
from services.runtime import relay_process
from services.runtime.settings import Settings
process = relay_process.start(sys.argv[1], Settings(database_url=sys.argv[2], kafka_bootstrap=sys.argv[3]))
print(process.pid, flush=True)
time.sleep(600)
"""


def test_the_relay_does_not_outlive_a_killed_service(database_url: str, kafka_bootstrap: str, service: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, service, database_url, kafka_bootstrap],
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert parent.stdout is not None
        relay = psutil.Process(int(parent.stdout.readline()))
        time.sleep(3)  # the relay is up and publishing (nothing to publish)
        assert relay.is_running() and relay.status() != psutil.STATUS_ZOMBIE
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        relay.wait(15)  # raises TimeoutExpired if the relay lives on
    finally:
        if parent.poll() is None:
            parent.kill()
