"""The session fixtures give working infrastructure, and `sn51 infra up|status|down` manages its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sn51.localinfra.postgres import PrivateCluster
from sn51.localinfra.procs import free_port

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from sn51.cli import main; main()"]


async def test_broker_round_trip(kafka_bootstrap: str) -> None:
    topic = f"test-infra-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k1", headers=[("h", b"v")])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value, list(record.headers)) == (b"k1", b"hello", [("h", b"v")])


async def test_database_answers_and_starts_empty(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("select 1") == 1
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
    finally:
        await conn.close()
    assert tables == 0 or os.environ.get("SN51_TEST_DATABASE_URL")


def test_anvil_answers(anvil_url: str) -> None:
    reply = httpx.post(anvil_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    assert reply.json()["result"] == hex(31337)


def _sn51(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def _status(env: dict[str, str]) -> tuple[int, dict[str, bool]]:
    result = _sn51(["infra", "status", "--json"], env)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return result.returncode, {row["name"].split()[0]: row["up"] for row in rows}


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """An environment for `sn51` with its own state folder and ports, so a developer's stack is untouched."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("SN51_PG_MODE", "SN51_PG_PORT")}
    return {
        **inherited,
        "SN51_STATE_DIR": str(tmp_path / "state"),
        "SN51_KAFKA_PORT": str(free_port()),
        "SN51_ANVIL_PORT": str(free_port()),
        "DATABASE_URL": database_url,
    }


def test_infra_up_status_down(cli_env: dict[str, str]) -> None:
    try:
        up = _sn51(["infra", "up"], cli_env)
        assert up.returncode == 0, up.stderr
        assert f"KAFKA_BOOTSTRAP=127.0.0.1:{cli_env['SN51_KAFKA_PORT']}" in up.stdout
        assert _sn51(["infra", "up"], cli_env).returncode == 0  # idempotent
        code, states = _status(cli_env)
        assert (code, states["broker"], states["postgresql"]) == (0, True, True)
        env_lines = _sn51(["infra", "env"], cli_env).stdout.splitlines()
        assert f"DATABASE_URL={cli_env['DATABASE_URL']}" in env_lines
    finally:
        down = _sn51(["infra", "down"], cli_env)
    assert down.returncode == 0, down.stderr
    code, states = _status(cli_env)
    assert code == 1
    assert states["broker"] is False
    assert states["postgresql"] is True  # a server sn51 did not start is never stopped


def test_bad_port_is_one_line(cli_env: dict[str, str]) -> None:
    result = _sn51(["infra", "up"], {**cli_env, "SN51_KAFKA_PORT": "not-a-port"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["sn51: SN51_KAFKA_PORT='not-a-port' is not a port number"]


def test_private_postgres_cluster_when_no_server_is_used(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fresh-machine route: no DATABASE_URL and no server on 5432 (forced here by SN51_PG_MODE)."""
    env = {**cli_env, "SN51_PG_MODE": "private", "SN51_PG_PORT": str(free_port())}
    for name in ("SN51_STATE_DIR", "SN51_PG_PORT"):
        monkeypatch.setenv(name, env[name])
    cluster_dir = PrivateCluster().data
    try:
        up = _sn51(["infra", "up"], env)
        assert up.returncode == 0, up.stderr
        assert f"DATABASE_URL=postgresql://postgres@127.0.0.1:{env['SN51_PG_PORT']}/sn51" in up.stdout
        result = _sn51(["infra", "status", "--json"], env)
        rows = {json.loads(line)["name"]: json.loads(line) for line in result.stdout.splitlines()}
        assert (rows["postgresql"]["up"], rows["postgresql"]["detail"]) == (True, "private")
    finally:
        down = _sn51(["infra", "down"], env)
    assert "postgresql (private)" in down.stdout
    assert _status(env)[1]["postgresql"] is False
    shutil.rmtree(cluster_dir.parent, ignore_errors=True)
