"""Session fixtures for integration tests: a real Kafka-compatible broker, PostgreSQL and anvil.

Each fixture picks, in order: a URL from the environment (SN51_TEST_KAFKA, SN51_TEST_DATABASE_URL,
SN51_TEST_ANVIL); containers through testcontainers when a Docker engine answers (Kafka, PostgreSQL);
otherwise local processes: a private Tansu broker on a free port, a fresh database `sn51_test_<hex>` on the
PostgreSQL server `sn51 infra` resolves (DATABASE_URL, 127.0.0.1:5432, or the private cluster), anvil from
contracts/node_modules on a free port. What a fixture starts or creates, it stops or drops at the end.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import asyncpg
import pytest

from sn51.localinfra import anvil as evm
from sn51.localinfra import postgres
from sn51.localinfra.broker import broker_argv, kafka_answers
from sn51.localinfra.procs import HOST, free_port, repo_root, terminate, wait_until

START_TIMEOUT_S = 10.0


@functools.cache
def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # no engine, no socket, no permission: fall back to local processes
        return False


def _start_process(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc.pid)
    proc.wait(5)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """"host:port" of a Kafka-compatible broker for this session."""
    from_env = os.environ.get("SN51_TEST_KAFKA")
    if from_env:
        yield from_env
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    port = free_port()
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    proc = _start_process(broker_argv(port), log)
    try:
        if not wait_until(lambda: kafka_answers(port), START_TIMEOUT_S):
            pytest.fail(f"the Tansu broker did not answer on port {port}; see {log}")
        yield f"{HOST}:{port}"
    finally:
        _stop_process(proc)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A PostgreSQL URL of a fresh, empty database for this session."""
    from_env = os.environ.get("SN51_TEST_DATABASE_URL")
    if from_env:
        yield from_env
        return
    if docker_engine_answers():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    server = postgres.resolve(start=False)
    cluster: postgres.PrivateCluster | None = None
    if server is None:
        cluster = postgres.PrivateCluster()
        server = postgres.resolve(start=True)
        assert server is not None
    name = f"sn51_test_{secrets.token_hex(6)}"
    postgres.create_database(server.admin_url, name)
    try:
        yield postgres.with_database(server.admin_url, name)
    finally:
        postgres.drop_database(server.admin_url, name)
        if cluster is not None:
            cluster.stop()



@pytest.fixture
async def fresh_database_url(database_url: str) -> AsyncIterator[str]:
    """A new empty database on the server of the session's `database_url`, dropped after the test: for a
    service that needs its real schema name (e.g. `sn51 service billing` as a subprocess)."""
    name = f"sn51_test_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield postgres.with_database(database_url, name)
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The JSON-RPC URL of a fresh anvil node for this session (installs anvil with npm when missing)."""
    from_env = os.environ.get("SN51_TEST_ANVIL")
    if from_env:
        yield from_env
        return
    binary = evm.anvil_bin()
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("anvil is not installed and npm is missing: install Node.js, then `npm ci` in contracts/")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=repo_root() / "contracts",
                                capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0 or not binary.exists():
            pytest.fail(f"`npm ci` in contracts/ did not install anvil: {result.stderr.strip()[-500:]}")
    port = free_port()
    url = evm.anvil_url(port)
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    proc = _start_process(evm.anvil_argv(port, binary), log)
    try:
        if not wait_until(lambda: evm.anvil_answers(url), START_TIMEOUT_S):
            pytest.fail(f"anvil did not answer on {url}; see {log}")
        yield url
    finally:
        _stop_process(proc)

