"""The shared runtime through a real broker and PostgreSQL, with a small real fold (tests/unit/runtime/cores.py).

Events in on the input topic; the runtime stores them, publishes the derived events and the dead letters,
commits the offsets; stopped and restarted, it rebuilds the core from its inbox and continues without
duplicating anything.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from schemas.codec import decode, encode, encode_obj
from schemas.envelope import Event
from schemas.events import ExecutorListed
from schemas.topics import DEAD_LETTER, INPUT, SCORING
from services.runtime.kafka import committed_offsets, create_all_topics, produce
from services.runtime.outbox import Message
from services.runtime.processor import Accepted, DeadLetter, decide, decode_message
from services.runtime.service import ServiceSpec, run
from services.runtime.settings import Settings
from tests.integration.kit import eventually, read_topic
from tests.unit.runtime.cores import PROJECTION_SQL, REFUSED_HOTKEY, CountingCore, listing, projection
from tests.unit.runtime.cores import spec as counting_spec

pytestmark = pytest.mark.integration


async def test_runtime_end_to_end_with_restart(kafka_bootstrap: str, database_url: str) -> None:
    tag = secrets.token_hex(4)
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=f"rt{tag}.",
        session_timeout_ms=2000, heartbeat_interval_ms=200, api_enabled=False, relay_idle_seconds=0.1,
    )
    spec = counting_spec(f"rt_{tag}")
    input_topic, out_topic, dlq_topic = (settings.topic(t) for t in (INPUT, SCORING, DEAD_LETTER))
    group = f"sn51-rt_{tag}"
    await create_all_topics(kafka_bootstrap, settings.topic_prefix)

    first = [
        encode_obj(listing("a", "hk1")),
        encode_obj(listing("b", "hk1", executor="ex-2")),
        encode_obj(listing("a", "hk1")),  # duplicate: skipped
        encode_obj(listing("a", "hk1", price="1.00")),  # same id, other content: id_conflict
        b'{"id": "m", "type": ',  # malformed
        encode_obj(listing("r", REFUSED_HOTKEY)),  # refused by the core
        encode_obj(listing("c", "hk2")),
    ]
    await produce(kafka_bootstrap, first, topic=input_topic)

    conn = await asyncpg.connect(database_url, server_settings={"search_path": spec.name})
    try:
        async def settled(offset: int) -> bool:
            if (await committed_offsets(kafka_bootstrap, group, [input_topic]))[input_topic] != offset:
                return False
            return bool(await conn.fetchval("SELECT count(*) FROM outbox_pending") == 0)

        runtime = asyncio.create_task(run(spec, settings))
        await eventually(lambda: settled(len(first)), "the first batch to be committed and published")
        assert not runtime.done()

        inbox = await conn.fetch("SELECT event_id, raw FROM inbox ORDER BY seq")
        assert [(r["event_id"], r["raw"]) for r in inbox] == [("a", first[0]), ("b", first[1]), ("c", first[6])]
        assert dict(await conn.fetch("SELECT hotkey, n FROM listing_counts")) == {"hk1": 2, "hk2": 1}

        derived = [decode(r.value) for r in await read_topic(kafka_bootstrap, out_topic)]
        assert [(e.causation_id, e.data.reasons) for e in derived] == [  # type: ignore[attr-defined]
            ("a", ["listings=1"]), ("b", ["listings=2"]), ("c", ["listings=1"]),
        ]
        dead = await read_topic(kafka_bootstrap, dlq_topic)
        headers = [{k: v.decode() for k, v in r.headers} for r in dead]
        assert [(h["code"], h["source_offset"], r.value) for h, r in zip(headers, dead, strict=True)] == [
            ("id_conflict", "3", first[3]), ("malformed", "4", first[4]), ("bad_listing", "5", first[5]),
        ]
        assert all(h["service"] == spec.name and h["source_topic"] == input_topic and h["reason"] for h in headers)

        runtime.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runtime

        second = [
            encode_obj(listing("d", "hk1", executor="ex-3")),
            encode_obj(listing("a", "hk1")),  # a duplicate of an event of the first run
            encode_obj(listing("e", "hk2")),
        ]
        await produce(kafka_bootstrap, second, topic=input_topic)
        runtime = asyncio.create_task(run(spec, settings))
        await eventually(lambda: settled(len(first) + len(second)), "the second batch after the restart")
        runtime.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runtime

        derived = [decode(r.value) for r in await read_topic(kafka_bootstrap, out_topic)]
        assert [(e.causation_id, e.data.reasons) for e in derived] == [  # type: ignore[attr-defined]
            ("a", ["listings=1"]), ("b", ["listings=2"]), ("c", ["listings=1"]),
            ("d", ["listings=3"]), ("e", ["listings=2"]),  # the rebuilt core continued the counts
        ]
        assert len({e.id for e in derived}) == len(derived)
        assert len(await read_topic(kafka_bootstrap, dlq_topic)) == 3
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 5
        assert dict(await conn.fetch("SELECT hotkey, n FROM listing_counts")) == {"hk1": 3, "hk2": 2}
    finally:
        await conn.close()


async def test_a_store_failing_on_the_writers_thread_ends_the_service_and_a_restart_stores_everything_once(
    kafka_bootstrap: str, database_url: str
) -> None:
    tag = secrets.token_hex(4)
    failing = {"boom"}
    counting = projection()

    async def project(conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
        if isinstance(event.data, ExecutorListed) and event.data.hotkey in failing:
            raise RuntimeError(f"the read model refused {event.id}")
        await counting(conn, event, derived)

    spec = ServiceSpec(name=f"rf_{tag}", core_factory=CountingCore, migrations=[PROJECTION_SQL], project=project)
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=f"rf{tag}.",
        session_timeout_ms=2000, heartbeat_interval_ms=200, api_enabled=False, relay_idle_seconds=0.1,
        batch_size=1,  # a batch per message: the failing one is not in the first transaction
    )
    input_topic, out_topic, group = settings.topic(INPUT), settings.topic(SCORING), f"sn51-{spec.name}"
    await create_all_topics(kafka_bootstrap, settings.topic_prefix)
    hotkeys = ["hk1", "hk2", "boom", "hk1"]
    inputs = [encode_obj(listing(f"f{i}", hk, executor=f"ex-{i}")) for i, hk in enumerate(hotkeys)]
    await produce(kafka_bootstrap, inputs, topic=input_topic)

    conn = await asyncpg.connect(database_url, server_settings={"search_path": spec.name})
    try:
        with pytest.raises(ExceptionGroup) as ended:  # the writer's failure ends `run` (its task group)
            await asyncio.wait_for(run(spec, settings), 30)
        assert ended.group_contains(RuntimeError, match="the read model refused f2")
        stored = [r["event_id"] for r in await conn.fetch("SELECT event_id FROM inbox ORDER BY seq")]
        assert stored in (["f0"], ["f0", "f1"])  # f1 rolled back with f2 if the writer took them together
        committed = (await committed_offsets(kafka_bootstrap, group, [input_topic]))[input_topic]
        assert committed <= len(stored)  # never past what was stored

        failing.clear()
        runtime = asyncio.create_task(run(spec, settings))

        async def done() -> bool:
            offsets = await committed_offsets(kafka_bootstrap, group, [input_topic])
            pending = await conn.fetchval("SELECT count(*) FROM outbox_pending")
            return offsets[input_topic] == len(inputs) and not pending

        await eventually(done, "every input stored and published after the restart")
        runtime.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runtime
        assert [r["event_id"] for r in await conn.fetch("SELECT event_id FROM inbox ORDER BY seq")] == [
            "f0", "f1", "f2", "f3"]
        assert dict(await conn.fetch("SELECT hotkey, n FROM listing_counts")) == {"hk1": 2, "hk2": 1, "boom": 1}
        derived = [decode(r.value) for r in await read_topic(kafka_bootstrap, out_topic)]
        assert sorted(e.causation_id or "" for e in derived) == ["f0", "f1", "f2", "f3"]  # each once
    finally:
        await conn.close()


def start_process(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.unit.runtime.cores", name, "0.003"],
            cwd=Path(__file__).resolve().parents[2], env=env, stdout=out, stderr=subprocess.STDOUT,
        )


async def test_sigkill_mid_stream_then_restart_gives_the_outputs_of_an_uninterrupted_run(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(4)
    name, prefix = f"rk_{tag}", f"rk{tag}."
    input_topic, out_topic, dlq_topic = (prefix + t for t in (INPUT, SCORING, DEAD_LETTER))
    await create_all_topics(kafka_bootstrap, prefix)
    inputs = [encode_obj(listing(f"L{i}", f"hk{i % 7}", executor=f"ex-{i}")) for i in range(400)]
    inputs[100] = inputs[40]  # duplicate
    inputs[200] = encode_obj(listing("L150", "hk0", price="9.99"))  # id_conflict
    inputs[300] = b"not json"
    await produce(kafka_bootstrap, inputs, topic=input_topic)

    expected_core, known = CountingCore(), dict[str, str]()
    expected: dict[str, bytes] = {}
    expected_dead: set[str] = set()
    for offset, value in enumerate(inputs):
        m = Message(input_topic, 0, offset, None, value)
        outcome = decide(expected_core, known, m, decode_message(m), prefix)
        if isinstance(outcome, Accepted):
            expected.update((e.id, encode(e)) for e in outcome.derived)
        elif isinstance(outcome, DeadLetter):
            expected_dead.add(str(offset))

    env = {
        **os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": database_url, "SN51_TOPIC_PREFIX": prefix,
        "SN51_SESSION_TIMEOUT_MS": "2000", "SN51_HEARTBEAT_INTERVAL_MS": "200", "SN51_API_ENABLED": "false",
        "SN51_BATCH_SIZE": "15", "SN51_RELAY_IDLE_SECONDS": "0.05", "SN51_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "runtime.log"
    conn = await asyncpg.connect(database_url)
    try:
        async def inbox_size() -> int:
            exists = await conn.fetchval("SELECT to_regclass($1)", f"{name}.inbox")
            return 0 if exists is None else int(await conn.fetchval(f"SELECT count(*) FROM {name}.inbox"))

        for kill_at in (60, 200):
            proc = start_process(name, env, log)
            try:
                await eventually(functools.partial(_at_least, inbox_size, kill_at), f"{kill_at} events in the inbox")
            finally:
                proc.kill()  # SIGKILL
                proc.wait(10)

        proc = start_process(name, env, log)
        try:
            async def settled() -> bool:
                offsets = await committed_offsets(kafka_bootstrap, f"sn51-{name}", [input_topic])
                if offsets[input_topic] != len(inputs):
                    return False
                pending = await conn.fetchval(f"SELECT count(*) FROM {name}.outbox_pending")
                return bool(pending == 0)

            await eventually(settled, "the whole input to be committed and published")
        finally:
            proc.terminate()
            proc.wait(10)

        published: dict[str, set[bytes]] = {}
        for r in await read_topic(kafka_bootstrap, out_topic):
            published.setdefault(decode(r.value).id, set()).add(r.value)
        assert all(len(versions) == 1 for versions in published.values())  # a republished event is identical
        assert {k: next(iter(v)) for k, v in published.items()} == expected
        dead = {dict(r.headers)["source_offset"].decode() for r in await read_topic(kafka_bootstrap, dlq_topic)}
        assert dead == expected_dead
        assert await inbox_size() == len(expected)
        counts = dict(await conn.fetch(f"SELECT hotkey, n FROM {name}.listing_counts"))
        assert counts == dict(expected_core.listings)
    finally:
        await conn.close()


async def _at_least(size: Callable[[], Awaitable[int]], n: int) -> bool:
    return await size() >= n
