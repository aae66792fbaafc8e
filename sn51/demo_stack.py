"""The processes `sn51 demo` runs: the infrastructure (`sn51 infra up`), a fresh database, the collateral
contract on anvil, and the four services as `sn51 service NAME` subprocesses with their environment.

Services run detached with pid files `demo-<name>` in the state folder (`SN51_STATE_DIR`, default `.sn51/`) and
logs in `logs/demo-<name>.log`, so `sn51 demo --stop` and `sn51 status --demo` find what `--keep` left.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sn51 import demo_report
from sn51.localinfra import procs

SERVICES = ("scoring", "billing", "settlement", "collateral")
SERVICE_START_TIMEOUT_S = 90.0


class DemoError(Exception):
    """An expected failure: one clear line, no traceback."""


@dataclass
class Run:
    stamp: str
    prefix: str
    kafka: str
    database_url: str
    admin_url: str
    database: str
    ports: dict[str, int] = field(default_factory=dict)
    collateral: Any = None  # demo_chain.Collateral when the contract is deployed
    started_infra: bool = False

    def record(self) -> dict[str, Any]:
        return {"stamp": self.stamp, "topic_prefix": self.prefix, "kafka_bootstrap": self.kafka,
                "database_url": self.database_url, "ports": self.ports,
                "groups": {s: f"{self.prefix}{s}" for s in SERVICES}, "started_infra": self.started_infra}


def demo_record_path() -> Path:
    return procs.state_dir() / "demo.json"


# --- infrastructure -------------------------------------------------------------------------------------------

def start_infra() -> tuple[Any, bool]:
    from sn51.localinfra import infra_status, infra_up

    running = all(c.up for c in infra_status() if c.required and not c.name.startswith("service "))
    return infra_up(), not running


def fresh_database(stamp: str) -> tuple[str, str, str]:
    from sn51.localinfra import postgres

    pg = postgres.resolve(start=False)
    if pg is None:
        raise DemoError("PostgreSQL is not reachable after `infra up`")
    name = f"sn51_demo_{stamp}"
    try:
        postgres.create_database(pg.admin_url, name)
    except Exception as exc:
        raise DemoError(f"cannot create the demo database {name}: {exc}") from None
    return postgres.with_database(pg.url, name), pg.admin_url, name


def deploy_collateral(anvil_url: str | None, executors: list[tuple[str, int]]) -> tuple[Any, str]:
    if anvil_url is None:
        return None, "anvil is not installed (npm ci in contracts/): running without the collateral service"
    try:
        from sn51.demo_chain import deploy_and_deposit

        c = deploy_and_deposit(anvil_url, executors)
    except Exception as exc:  # any EVM problem: the demo goes on without collateral, and says so
        return None, f"collateral contract not deployed ({type(exc).__name__}: {exc}); running without it"
    return c, (f"collateral contract {c.contract} on {anvil_url} (chain {c.chain_id}), "
               f"{c.deposits} executors deposited {demo_chain_deposit_tao()} each")


def demo_chain_deposit_tao() -> str:
    from sn51.demo_chain import DEPOSIT_WEI

    return demo_report.tao(DEPOSIT_WEI)


# --- services -------------------------------------------------------------------------------------------------

def service_env(run: Run, name: str) -> dict[str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": run.kafka,
        "DATABASE_URL": run.database_url,
        "SN51_TOPIC_PREFIX": run.prefix,
        "SN51_CONSUMER_GROUP": f"{run.prefix}{name}",
        "SN51_API_PORT": str(run.ports[name]),
        "SN51_SESSION_TIMEOUT_MS": "3000",
        "SN51_HEARTBEAT_INTERVAL_MS": "300",
        "SN51_RELAY_IDLE_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    if name == "settlement":
        env.update({"SN51_CHAIN": "memory", "SN51_PAYOUT_INTERVAL_SECONDS": "0.5"})
    if name == "collateral" and run.collateral is not None:
        c = run.collateral
        env.update({
            "SN51_COLLATERAL_RPC_URL": c.rpc_url, "SN51_COLLATERAL_CONTRACT_ADDRESS": c.contract,
            "SN51_COLLATERAL_CHAIN_ID": str(c.chain_id), "SN51_COLLATERAL_CONFIRMATIONS": "1",
            "SN51_COLLATERAL_START_BLOCK": str(c.start_block), "SN51_COLLATERAL_POLL_SECONDS": "0.5",
            "SN51_TRUSTEE_KEY": c.trustee_key,
        })
    return env


def start_services(run: Run, names: tuple[str, ...]) -> None:
    for name in names:
        procs.stop(f"demo-{name}")
        run.ports[name] = procs.free_port()
        argv = [sys.executable, "-c", "from sn51.cli import main; main()", "service", name]
        procs.spawn_detached(f"demo-{name}", argv, env=service_env(run, name), log_name=f"demo-{name}",
                             cwd=str(procs.repo_root()))


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


def last_lines(name: str, n: int = 3) -> str:
    try:
        lines = procs.log_file(f"demo-{name}").read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(line[:300] for line in lines[-n:]) or "no output"


def wait_healthy(run: Run, names: tuple[str, ...]) -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    waiting = set(names)
    while waiting:
        for name in sorted(waiting):
            if procs.running_pid(f"demo-{name}") is None:
                raise DemoError(f"service {name} exited at start-up: {last_lines(name)} "
                                f"(log: {procs.log_file(f'demo-{name}')})")
            if healthy(run.ports[name]):
                waiting.discard(name)
        if waiting and time.monotonic() > deadline:
            raise DemoError(f"services not healthy after {SERVICE_START_TIMEOUT_S:.0f} s: {', '.join(sorted(waiting))}"
                            f" (logs in {procs.state_dir() / 'logs'})")
        time.sleep(0.2)


def stop_services() -> list[str]:
    return [name for name in SERVICES if procs.stop(f"demo-{name}")]
