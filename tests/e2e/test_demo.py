"""`sn51 demo` end to end, as a user runs it, in an isolated state folder on non-default ports.

The infrastructure is started once (`sn51 infra up`) so two demo runs share it: the first is kept running and
inspected with `sn51 status --demo`, the second must start clean (its own database and topics) and print the
same statements and payouts, which it could not if it saw the first run's events.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

pytestmark = pytest.mark.e2e

SN51 = [sys.executable, "-c", "from sn51.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("sn51-demo-state")
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP")}
    environ.update({
        "SN51_STATE_DIR": str(state),
        "SN51_KAFKA_PORT": str(_free_port()),
        "SN51_ANVIL_PORT": str(_free_port()),
        "SN51_PG_PORT": str(_free_port()),
        "COLUMNS": "200",
    })
    up = sn51(environ, "infra", "up", timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield environ
    finally:
        sn51(environ, "demo", "--stop", timeout=60)
        sn51(environ, "infra", "down", timeout=60)


def sn51(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SN51, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def payout_lines(output: str) -> list[str]:
    return sorted(line.strip() for line in output.splitlines() if line.strip().startswith("payout "))


def statement_rows(output: str) -> list[str]:
    """Each provider-day row without its last cell (slashed wei: on which open day a slash lands is a race
    between the chain and the log, by design)."""
    rows = [line for line in output.splitlines() if re.match(r"^│ \d{4}-\d{2}-\d{2} ", line)]
    return sorted(row.rstrip("│ ").rsplit("│", 1)[0] for row in rows)


def check_demo_output(done: subprocess.CompletedProcess[str]) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    assert len(re.findall(r"^provider \S+ → coldkey \S+", done.stdout, re.M)) == 3, done.stdout
    assert statement_rows(done.stdout), "each provider's days are printed"
    paid = payout_lines(done.stdout)
    assert paid and all(re.search(r": confirmed, extrinsic 0x[0-9a-f]{64} in block \d+$", p) for p in paid), paid
    assert "platform totals" in done.stdout
    assert "payouts landed = payables of the paid days for every coldkey" in done.stdout
    assert "verify: pass" in done.stdout
    assert "demo reconciled" in done.stdout


def test_demo_kept_then_status_then_a_clean_second_run(env: dict[str, str]) -> None:
    first = sn51(env, "demo", "--providers", "3", "--days", "3", "--seed", "5", "--keep")
    check_demo_output(first)

    status = sn51(env, "status", "--demo", "--format", "json", timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    services = {s["service"]: s for s in json.loads(status.stdout)}
    assert set(services) == {"scoring", "billing", "settlement", "collateral"}
    for s in services.values():
        assert s["health"] == "ok", s
        assert s["seq"] and s["seq"] > 0 and s["dead_letters"] == 0, s
        assert s["lags"] and all(lag["lag"] == 0 for lag in s["lags"]), s
    assert services["billing"]["milestone"].startswith("day ")
    assert "confirmed" in services["settlement"]["milestone"]
    assert services["scoring"]["milestone"].startswith("epoch ")

    audit_then_tamper(env, Path(env["SN51_STATE_DIR"]) / "demo.json")

    stopped = sn51(env, "demo", "--stop", timeout=60)
    assert stopped.returncode == 0 and "scoring" in stopped.stdout, stopped.stdout + stopped.stderr

    second = sn51(env, "demo", "--providers", "3", "--days", "3", "--seed", "5")
    check_demo_output(second)
    assert payout_lines(second.stdout) == payout_lines(first.stdout)
    assert statement_rows(second.stdout) == statement_rows(first.stdout)


def audit_then_tamper(env: dict[str, str], record: Path) -> None:
    """Issue 4: what the live services published verifies; one tampered published figure is named."""
    url = json.loads(record.read_text())["database_url"]
    export = record.parent / "audit.jsonl"
    done = sn51(env, "audit", "export", "--database-url", url, "--output", str(export), timeout=120)
    assert done.returncode == 0, done.stderr
    verified = sn51(env, "audit", "verify", "--input", str(export), timeout=120)
    assert verified.returncode == 0 and "verify: pass" in verified.stdout, verified.stdout + verified.stderr

    async def tamper() -> tuple[str, str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT seq, value FROM billing.outbox WHERE event_type = 'day.closed'")
            for row in rows:
                event = json.loads(bytes(row["value"]))
                providers = event["data"]["providers"]
                if providers and providers[0]["payable_rao"] > 0:
                    providers[0]["payable_rao"] -= 1
                    await conn.execute("UPDATE billing.outbox SET value = $1 WHERE seq = $2",
                                       json.dumps(event).encode(), row["seq"])
                    return event["data"]["billing_day"], providers[0]["hotkey"]
            raise AssertionError("no paid provider-day to tamper with")
        finally:
            await conn.close()

    day, hotkey = asyncio.run(tamper())
    done = sn51(env, "audit", "export", "--database-url", url, "--output", str(export), timeout=120)
    assert done.returncode == 0, done.stderr
    verified = sn51(env, "audit", "verify", "--input", str(export), timeout=120)
    assert verified.returncode == 1, verified.stdout
    assert f"day {day}, provider {hotkey}: payable_rao published" in verified.stdout, verified.stdout


def test_a_payout_run_that_cannot_land_fails_the_demo(env: dict[str, str]) -> None:
    """Less stake on the payout hotkey than the run needs: settlement holds the run, the demo says so, exit 1."""
    done = sn51({**env, "SN51_MEMORY_CHAIN_STAKE_RAO": "1000"}, "demo", "--providers", "3", "--days", "3")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert re.search(r"✗ payout \S+ to \S+ is held: insufficient_stake", done.stdout), done.stdout[-3000:]
    assert "verify: pass" in done.stdout  # the figures are right; the money did not move
    assert "demo did NOT reconcile" in done.stdout


def test_status_without_a_kept_demo_is_one_line(tmp_path: Path) -> None:
    environ = {**os.environ, "SN51_STATE_DIR": str(tmp_path)}
    done = sn51(environ, "status", "--demo", timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "sn51 demo --keep" in done.stderr
