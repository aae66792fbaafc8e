"""The scoring service as its own process (`sn51 service scoring`), killed with SIGKILL mid-stream and
restarted: the set of events it published (by id and content) equals what the core makes of the same log,
and so do its dead letters. Republished duplicates (same id, same bytes) are allowed; nothing else is."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from scoring_io import expected, simulated_log

from schemas.codec import decode
from schemas.topics import DEAD_LETTER, INPUT, SCORING
from services.runtime.kafka import create_all_topics, produce
from sn51.localinfra.procs import repo_root
from tests.integration.kit import eventually, read_topic

pytestmark = pytest.mark.integration

# The log is published in three parts, one before each run, so each SIGKILL lands before the later input
# exists: the kills are mid-stream by construction, whatever the speed of the service. Each run is killed
# once half of the outputs of the input published so far that it has not yet published are out.
PARTS = (0.4, 0.7, 1.0)
SERVICE_ARGV = [sys.executable, "-c", "from sn51.cli import main; main()", "service", "scoring"]


@contextmanager
def service_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(SERVICE_ARGV, env=env, cwd=repo_root(), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def test_scoring_service_killed_mid_stream_publishes_the_same_set(
    kafka_bootstrap: str, fresh_database_url: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(4)
    prefix = f"scx{tag}."
    input_topic, out_topic, dlq_topic = (prefix + t for t in (INPUT, SCORING, DEAD_LETTER))
    log = simulated_log(seed=5, providers=4, days=0.75)
    want = expected(log, input_topic)
    want_set = {(e.id, e.to_bytes()) for e in want.derived}
    assert len(want_set) == len(want.derived)
    assert sum(e.type == "epoch.scored" for e in want.derived) >= 10
    cuts = [round(len(log) * p) for p in PARTS]
    upto = [len({e.id for e in expected(log[:c], input_topic).derived}) for c in cuts]
    assert 0 < upto[0] < upto[1] < upto[2] == len(want_set)
    await create_all_topics(kafka_bootstrap, prefix)
    service_log = tmp_path / "scoring.log"

    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": fresh_database_url, "SN51_TOPIC_PREFIX": prefix,
        "SN51_CONSUMER_GROUP": f"sn51-scoring-{tag}", "SN51_SESSION_TIMEOUT_MS": "2000",
        "SN51_HEARTBEAT_INTERVAL_MS": "200", "SN51_API_ENABLED": "false",
        "SN51_BATCH_SIZE": "10", "SN51_RELAY_BATCH": "10", "SN51_RELAY_IDLE_SECONDS": "0.05",
    }
    # Two runs killed mid-stream: watch the output topic, SIGKILL once a share of the outputs is out.
    watcher = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await watcher.start()
    at_kill: list[int] = []
    try:
        tp = TopicPartition(out_topic, 0)
        watcher.assign([tp])
        await watcher.seek_to_beginning(tp)
        seen: set[bytes] = set()
        loop = asyncio.get_running_loop()
        for run in (0, 1):
            await produce(kafka_bootstrap, log[cuts[run - 1] if run else 0:cuts[run]], topic=input_topic)
            with service_process(env, service_log) as proc:
                end = loop.time() + 45
                target = len(seen) + max(1, (upto[run] - len(seen)) // 2)
                while len(seen) < target:
                    assert proc.poll() is None, tail(service_log)
                    assert loop.time() < end, f"no progress: {len(seen)} outputs\n{tail(service_log)}"
                    polled = await watcher.getmany(tp, timeout_ms=50)
                    seen.update(r.value for r in polled.get(tp, []))
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            at_kill.append(len({r.value for r in await read_topic(kafka_bootstrap, out_topic)}))
    finally:
        await watcher.stop()
    assert 0 < at_kill[0] < at_kill[1] < len(want_set), f"the kills did not happen mid-stream: {at_kill}"

    # A last run continues from PostgreSQL and the committed offsets.
    await produce(kafka_bootstrap, log[cuts[1]:], topic=input_topic)
    with service_process(env, service_log) as proc:
        async def complete() -> bool:
            assert proc.poll() is None, tail(service_log)
            outputs = {r.value for r in await read_topic(kafka_bootstrap, out_topic)}
            return len(outputs) >= len(want_set) and len(dead_letters(
                await read_topic(kafka_bootstrap, dlq_topic))) >= len(want.dead)

        await eventually(complete, "the restarted service to publish everything")

    records = await read_topic(kafka_bootstrap, out_topic)
    assert {(decode(r.value).id, r.value) for r in records} == want_set
    assert {(r.key, r.value) for r in records} == {(e.key.encode(), e.to_bytes()) for e in want.derived}
    assert dead_letters(await read_topic(kafka_bootstrap, dlq_topic)) == set(want.dead)
    print(f"outputs {len(want_set)}, distinct ones published before each kill {at_kill}, "
          f"republished {len(records) - len(want_set)}")


def dead_letters(records: list[ConsumerRecord[bytes, bytes]]) -> set[tuple[int, str]]:
    """(source offset, code) of each dead letter."""
    headers = ({k: v.decode() for k, v in r.headers} for r in records)
    return {(int(h["source_offset"]), h["code"]) for h in headers}
