"""Billing under delivery faults: a SIGKILL mid-stream and a restart; every message delivered twice.

Both tests publish a simulated log in the production layout (input lines on the input topic, scoring's derived
events on scoring's topic). The clean result is `reference`, the core folded offline in the replay's order,
which `test_billing_service` shows is what a clean run of the service stores, whatever the interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from billing_harness import (
    assert_ledger_equals,
    consumed_all,
    doubled_and_shuffled,
    publish,
    published_statements,
    reference,
    simulated_log,
)

from schemas.codec import encode
from schemas.topics import BILLING
from services.billing.app import make_spec
from services.runtime.kafka import create_all_topics
from services.runtime.service import run
from services.runtime.settings import Settings
from tests.integration.kit import FAST, FAST_ENV, eventually, read_topic, service_process, stop

pytestmark = pytest.mark.integration

async def inbox_count(conn: asyncpg.Connection) -> int:
    if not await conn.fetchval("SELECT to_regclass('billing.inbox') IS NOT NULL"):
        return 0
    return int(await conn.fetchval("SELECT count(*) FROM billing.inbox"))


async def test_sigkill_mid_stream_then_restart(kafka_bootstrap: str, fresh_database_url: str,
                                               tmp_path: Path) -> None:
    tag = secrets.token_hex(4)
    prefix, group = f"bik{tag}.", f"billing-kill-{tag}"
    log = simulated_log(seed=9, providers=6, days=4)
    ref = reference(r.value for r in log)
    await create_all_topics(kafka_bootstrap, prefix)
    await publish(kafka_bootstrap, prefix, log)
    counts = dict(Counter(prefix + r.topic for r in log))
    env = {
        **FAST_ENV, "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": fresh_database_url,
        "SN51_TOPIC_PREFIX": prefix, "SN51_CONSUMER_GROUP": group,
        "SN51_BATCH_SIZE": "25",  # many small transactions: the kill lands between two of them, or inside one
    }
    conn = await asyncpg.connect(fresh_database_url)
    proc = service_process("billing", env, tmp_path / "billing-1.log")
    try:
        target = len(ref.accepted) // 3

        async def a_third_in() -> bool:
            return await inbox_count(conn) >= target

        # Asked often: the service stores the remaining two thirds (~200 events) in a fraction of a second.
        await eventually(a_third_in, "a third of the log in the inbox", interval=0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored = await inbox_count(conn)
        assert target <= stored < len(ref.accepted), "the kill was not mid-stream"

        proc = service_process("billing", env, tmp_path / "billing-2.log")
        await conn.execute("SET search_path TO billing")
        await eventually(lambda: consumed_all(conn, kafka_bootstrap, group, counts),
                         "the rest of the log after the restart")
        assert proc.poll() is None, (tmp_path / "billing-2.log").read_text()[-2000:]

        await assert_ledger_equals(conn, ref)
        assert sorted(r["event_id"] for r in await conn.fetch("SELECT event_id FROM inbox")) == sorted(ref.accepted)
        published = published_statements(r.value for r in await read_topic(kafka_bootstrap, prefix + BILLING))
        assert published == {e.id: encode(e) for e in ref.of_type("day.closed")}
    finally:
        stop(proc)
        await conn.close()


async def test_every_message_twice_shuffled_within_its_key(kafka_bootstrap: str, database_url: str) -> None:
    tag = secrets.token_hex(4)
    spec = make_spec(f"billing_twice_{tag}")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=f"bit{tag}.",
                        consumer_group=f"billing-twice-{tag}", batch_size=100, **FAST)
    log = simulated_log(seed=13, providers=6, days=4)
    clean = reference(r.value for r in log)
    delivered = doubled_and_shuffled(log, seed=13)
    assert len(delivered) == 2 * len(log) and delivered != log + log
    assert reference(r.value for r in delivered).statements == clean.statements  # the offline fold agrees
    await create_all_topics(kafka_bootstrap, settings.topic_prefix)
    await publish(kafka_bootstrap, settings.topic_prefix, delivered)
    counts = dict(Counter(settings.topic(r.topic) for r in delivered))

    runtime = asyncio.create_task(run(spec, settings))
    conn = await asyncpg.connect(database_url, server_settings={"search_path": spec.name})
    try:
        await eventually(
            lambda: consumed_all(conn, kafka_bootstrap, settings.group, counts),
            "both deliveries of every message",
        )
        assert not runtime.done()
        await assert_ledger_equals(conn, clean)
        inbox = [r["raw"] for r in await conn.fetch("SELECT raw FROM inbox ORDER BY seq")]
        assert sorted(reference(inbox).accepted) == sorted(clean.accepted)
        published = published_statements(r.value for r in await read_topic(kafka_bootstrap, settings.topic(BILLING)))
        assert published == {e.id: encode(e) for e in clean.of_type("day.closed")}
        assert len(await read_topic(kafka_bootstrap, settings.topic(BILLING))) == len(clean.derived)  # once each
    finally:
        runtime.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime
        await conn.close()
