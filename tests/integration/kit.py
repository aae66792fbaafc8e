"""What the integration tests share: fast runtime settings, a pool on a freshly migrated schema, reading a whole
topic back, waiting for a condition, and a service run as its own process (`sn51 service NAME`). (A fresh
database per test is the `fresh_database_url` fixture of tests/conftest.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.runtime.db import create_pool, migrate

DEADLINE_S = 60.0
SN51 = Path(sys.executable).with_name("sn51")

# short group timeouts, quick polls and relay, no HTTP API: as `Settings` keywords and as the environment
FAST = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 200, "poll_timeout_ms": 100,
        "relay_idle_seconds": 0.1, "api_enabled": False}
FAST_ENV = {"SN51_SESSION_TIMEOUT_MS": "2000", "SN51_HEARTBEAT_INTERVAL_MS": "200", "SN51_POLL_TIMEOUT_MS": "100",
            "SN51_RELAY_IDLE_SECONDS": "0.1", "SN51_API_ENABLED": "false"}


@contextlib.asynccontextmanager
async def migrated_pool(database_url: str, service: str, migrations: Sequence[str],
                        size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    """The runtime's pool for `service` (its own schema), the schema migrated; closed afterwards."""
    pool = await create_pool(database_url, service, size)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, service, migrations)
        yield pool
    finally:
        await pool.close()


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a one-partition topic, from the start to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while polled := await consumer.getmany(tp, timeout_ms=300):
            records.extend(polled[tp])
        return records
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, deadline: float = DEADLINE_S,
                     alive: Callable[[], str | None] = lambda: None, interval: float = 0.2) -> None:
    """Wait until `check()` holds, asking every `interval` seconds; fail after `deadline` seconds, or as soon
    as `alive()` names a death."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await check():
        dead = alive()
        if dead is not None:
            pytest.fail(f"the service died while waiting for {what}: {dead}")
        if loop.time() > end:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(interval)


def service_process(service: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`sn51 service SERVICE` with `env` over this process's environment, its output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen([str(SN51), "service", service], env={**os.environ, **env},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a running service, SIGKILL it if it has not exited 10 s later."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
