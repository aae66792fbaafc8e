"""Bring the local stack up and down: broker, PostgreSQL, anvil, and the four services."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from services.runtime.redact import mask_password
from sn51.localinfra import postgres
from sn51.localinfra.anvil import DEFAULT_PORT as ANVIL_PORT
from sn51.localinfra.anvil import anvil_answers, anvil_argv, anvil_installed, anvil_url
from sn51.localinfra.broker import DEFAULT_PORT as KAFKA_PORT
from sn51.localinfra.broker import broker_argv, kafka_answers
from sn51.localinfra.procs import (
    HOST,
    InfraError,
    env_port,
    log_file,
    port_open,
    read_json,
    repo_root,
    running_pid,
    spawn_detached,
    state_dir,
    state_lock,
    stop,
    wait_until,
)

SERVICES = ("scoring", "billing", "settlement", "collateral")
START_TIMEOUT_S = 8.0

__all__ = ["SERVICES", "Component", "Endpoints", "InfraError", "ensure_up", "infra_down", "infra_status",
           "infra_up", "local_endpoints", "services_down", "services_up"]


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    database_url: str | None
    anvil_url: str | None

    def as_env(self) -> dict[str, str]:
        pairs = {"KAFKA_BOOTSTRAP": self.kafka_bootstrap, "DATABASE_URL": self.database_url,
                 "ANVIL_URL": self.anvil_url}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True)
class Component:
    name: str
    url: str
    up: bool
    detail: str
    required: bool = True


def kafka_port() -> int:
    return env_port("SN51_KAFKA_PORT", KAFKA_PORT)


def anvil_port() -> int:
    return env_port("SN51_ANVIL_PORT", ANVIL_PORT)


def _record_path() -> str:
    return str(state_dir() / "infra.json")


def _recorded_postgres() -> postgres.Postgres | None:
    record = read_json(state_dir() / "infra.json").get("postgres")
    if not isinstance(record, dict):
        return None
    try:
        return postgres.Postgres(record["kind"], record["url"], record["admin_url"])
    except KeyError:
        return None


def _start(name: str, argv: list[str], ready: Callable[[], bool], what: str) -> None:
    stop(name)  # a stale pid file from a crashed run
    spawn_detached(name, argv)
    if not wait_until(ready, START_TIMEOUT_S):
        stop(name)
        raise InfraError(f"{what} did not answer within {START_TIMEOUT_S:.0f} s; see {log_file(name)}")


def _broker_up() -> str:
    port = kafka_port()
    if running_pid("broker") is not None:
        if wait_until(lambda: kafka_answers(port), 2.0):
            return f"{HOST}:{port}"
        stop("broker")  # ours but not answering (hung, or started on another port): start afresh
    if port_open(port):
        raise InfraError(f"port {port} is taken by a process sn51 did not start; set SN51_KAFKA_PORT")
    _start("broker", list(broker_argv(port)), lambda: kafka_answers(port), "the broker")
    return f"{HOST}:{port}"


def _anvil_up() -> str | None:
    if not anvil_installed():
        return None
    port = anvil_port()
    url = anvil_url(port)
    if running_pid("anvil") is not None:
        if wait_until(lambda: anvil_answers(url), 2.0):
            return url
        stop("anvil")
    if port_open(port):
        raise InfraError(f"port {port} is taken by a process sn51 did not start; set SN51_ANVIL_PORT")
    _start("anvil", list(anvil_argv(port)), lambda: anvil_answers(url), "anvil")
    return url


def infra_up() -> Endpoints:
    """Start what is not running (idempotent) and return the endpoints."""
    with state_lock():
        return _infra_up()


def _infra_up() -> Endpoints:
    kafka = _broker_up()
    pg = postgres.resolve(start=True)
    assert pg is not None
    with open(_record_path(), "w") as f:
        json.dump({"postgres": asdict(pg)}, f)
    anvil = _anvil_up()
    return Endpoints(kafka, pg.url, anvil)


def local_endpoints() -> Endpoints:
    """Where the local stack is (or would be), without starting anything."""
    pg = _recorded_postgres() or postgres.resolve(start=False)
    anvil = anvil_url(anvil_port()) if anvil_installed() else None
    return Endpoints(f"{HOST}:{kafka_port()}", pg.url if pg else None, anvil)


def ensure_up() -> Endpoints:
    """The endpoints of a running stack, starting it first when any required part is down."""
    if all(c.up for c in infra_status() if c.required and not c.name.startswith("service ")):
        return local_endpoints()
    return infra_up()


def infra_status() -> list[Component]:
    port = kafka_port()
    ours = running_pid("broker")
    rows = [Component("broker (tansu, memory)", f"{HOST}:{port}", kafka_answers(port),
                      f"pid {ours}" if ours else "not started by sn51")]
    pg = _recorded_postgres() or postgres.resolve(start=False)
    if pg is None:
        rows.append(Component("postgresql", "-", False, "not started"))
    else:
        rows.append(Component("postgresql", mask_password(pg.url), postgres.answers(pg.url), pg.kind))
    if anvil_installed():
        url = anvil_url(anvil_port())
        pid = running_pid("anvil")
        rows.append(Component("anvil", url, anvil_answers(url), f"pid {pid}" if pid else "not started by sn51"))
    else:
        rows.append(Component("anvil", "-", False, "not installed (npm ci in contracts/)", required=False))
    for name in SERVICES:
        if (state_dir() / f"service-{name}.pid").exists():
            pid = running_pid(f"service-{name}")
            rows.append(Component(f"service {name}", str(log_file(name)), pid is not None,
                                  f"pid {pid}" if pid else "exited"))
    return rows


def infra_down() -> list[str]:
    """Stop what `infra up` started; never a PostgreSQL server it did not start."""
    with state_lock():
        return _infra_down()


def _infra_down() -> list[str]:
    stopped = [name for name in ("anvil", "broker") if stop(name)]
    if postgres.PrivateCluster().stop():
        stopped.append("postgresql (private)")
    (state_dir() / "infra.json").unlink(missing_ok=True)
    return stopped


def services_up(endpoints: Endpoints, settle_s: float = 4.0) -> dict[str, int | None]:
    """Start `sn51 service <name>` for the four services; the pid of each, None for one that exited.

    A service that fails at start-up (bad settings, unreachable dependency) exits within seconds: watch them
    for settle_s so `sn51 up` can say so.
    """
    env = {**os.environ, **endpoints.as_env(), "PYTHONUNBUFFERED": "1"}
    with state_lock():
        for name in SERVICES:
            if running_pid(f"service-{name}") is None:
                argv = [sys.executable, "-c", "from sn51.cli import main; main()", "service", name]
                spawn_detached(f"service-{name}", argv, env=env, log_name=name, cwd=str(repo_root()))
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and any(running_pid(f"service-{n}") for n in SERVICES):
        time.sleep(0.1)
    return {name: running_pid(f"service-{name}") for name in SERVICES}


def services_down() -> list[str]:
    return [name for name in SERVICES if stop(f"service-{name}")]
