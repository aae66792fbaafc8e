"""Settlement through the real broker and PostgreSQL with the in-memory chain: billing statements and the epochs
that trigger the runs in, payouts landed; the chain's stakes, the statements (the ledger) and the service's
reconciliation agree to the rao; a payout whose coldkey does not own its hotkey is held, not paid."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections import defaultdict

import asyncpg
import pytest
from httpx import ASGITransport, AsyncClient
from settlement_harness import (
    FUNDED_RAO,
    PAYOUT_COLDKEY,
    chain_stakes,
    confirmed_once,
    paid_by_coldkey,
    scenario,
    settled,
    start_in_process,
)

from schemas.codec import decode
from schemas.topics import SETTLEMENT
from services.runtime.api import create_app
from services.settlement.api import report, router
from services.settlement.app import PayoutSettings
from services.settlement.chain_memory_pg import MemoryChainSettings
from tests.integration.kit import SN51, eventually, read_topic

pytestmark = pytest.mark.integration


async def test_statements_in_payouts_landed_and_everything_reconciles(kafka_bootstrap: str, database_url: str) -> None:
    sc = scenario()
    planned = sc.planned
    held_coldkey = "ck3"  # its hotkey is owned by someone else on chain
    memory = MemoryChainSettings(stake_rao=FUNDED_RAO, foreign_hotkeys="hk3:5SomeoneElse")
    conn, runtime, name, prefix = await start_in_process(kafka_bootstrap, database_url, sc, "stl", memory)
    try:
        await eventually(lambda: settled(conn, len(planned)), "every planned payout final",
                         alive=lambda: repr(runtime.exception()) if runtime.done() else None)

        # the stored plan is the planning core's, and every payout is the ledger of its (coldkey, days)
        rows = await conn.fetch("SELECT payout_id, coldkey, amount_rao, state, reason FROM payout")
        assert {r["payout_id"]: r["amount_rao"] for r in rows} == {
            e.data.payout_id: e.data.amount_rao for e in planned
        }
        expected = paid_by_coldkey(planned, sc, skip={held_coldkey})
        states = {(r["coldkey"], r["state"]) for r in rows}
        assert states == {(ck, "confirmed") for ck in expected} | {(held_coldkey, "held")}
        assert all(r["reason"].startswith("owner_mismatch: hotkey hk3") for r in rows if r["state"] == "held")

        # the chain: each provider received exactly its ledger, the payer lost exactly that, no extrinsic twice
        stakes, state = await chain_stakes(conn)
        assert {ck: v for ck, v in stakes.items() if ck != PAYOUT_COLDKEY} == expected
        assert stakes[PAYOUT_COLDKEY] == FUNDED_RAO - sum(expected.values())
        batches = {(e.causation_id, e.data.batch) for e in planned
                   if e.data.coldkey != held_coldkey}
        assert state["included"] == len(batches) == await conn.fetchval("SELECT count(*) FROM payout_batch")
        assert len(batches) > len({e.causation_id for e in planned})  # several batches per run (max_batch 3)

        # the published events: one confirmation per paid payout, a hold for the held one
        published = [decode(r.value) for r in await read_topic(kafka_bootstrap, prefix + SETTLEMENT)]
        confirmed = confirmed_once(published, planned)
        assert {e.data.coldkey for e in confirmed.values()} == set(expected)
        assert sum(e.data.amount_rao for e in confirmed.values()) == sum(expected.values())
        assert {e.data.coldkey for e in published if e.type == "payout.held"} == {held_coldkey}

        # the reconciliation: per billing day, ledger = landed + held + carried, straight from the statements
        rep = await report(conn)
        assert rep["plan_mismatches"] == []
        assert rep["chain_check"] == {"coldkeys": len(expected), "chain_rao": sum(expected.values()),
                                      "confirmed_rao": sum(expected.values()), "extrinsics": len(batches),
                                      "mismatches": []}
        held_by_day: dict[str, int] = defaultdict(int)
        for e in planned:
            if e.data.coldkey == held_coldkey:
                for d in e.data.billing_days:
                    held_by_day[d] += sc.ledger(held_coldkey, [d])
        for day in rep["reconciliation"]:
            d = day["billing_day"]
            assert day["ledger_rao"] == sum(rao for _, _, rao in sc.statements[d])
            carried = 4_000_000 if d == "2026-11-04" else 0  # cksmall's last day is under the minimum
            assert (day["carried_rao"], day["held_rao"], day["pending_rao"], day["failed_rao"]) == (
                carried, held_by_day[d], 0, 0)
            assert day["landed_rao"] == day["ledger_rao"] - carried - held_by_day[d]
            assert day["outstanding_rao"] == carried + held_by_day[d]
        assert [d["billing_day"] for d in rep["reconciliation"]] == sorted(sc.statements)
        assert [(r["run_day"], r["deferred"]) for r in rep["runs"]] == [
            ("2026-11-03", 1), ("2026-11-04", 1), ("2026-11-05", 0), ("2026-11-06", 1)]
        assert {p["coldkey"] for p in rep["held"]} == {held_coldkey}

        # the read API serves the same
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, server_settings={"search_path": name})
        assert pool is not None
        try:
            async with AsyncClient(transport=ASGITransport(app=create_app(name, router, pool)),
                                   base_url="http://settlement") as client:
                assert (await client.get("/report")).json() == json.loads(json.dumps(rep))
                assert rep["executor"] == {"mode": "memory", "missing": [], "announced": 0}
                held = (await client.get("/payouts/held")).json()
                assert {(p["coldkey"], p["state"]) for p in held} == {(held_coldkey, "held")}
                paid = next(r for r in rows if r["state"] == "confirmed")
                one = (await client.get(f"/payouts/{paid['payout_id']}")).json()
                assert [b["state"] for b in one["batches"]] == ["landed"]
                assert one["extrinsic_hash"] == one["batches"][0]["extrinsic_hash"] in one["batches"][0]["hashes"]
                assert (await client.get("/payouts/no-such-payout")).status_code == 404
                day4 = (await client.get("/reconciliation", params={"day": "2026-11-04"})).json()
                assert [d["billing_day"] for d in day4["days"]] == ["2026-11-04"]
                by_ck = (await client.get("/payouts", params={"coldkey": "ck0", "state": "confirmed"})).json()
                assert sum(p["amount_rao"] for p in by_ck) == expected["ck0"] == stakes["ck0"]
        finally:
            await pool.close()

        # `sn51 payouts` prints the same report from PostgreSQL
        env = {**os.environ, "DATABASE_URL": database_url}
        out = subprocess.run([str(SN51), "payouts", "--format", "json", "--schema", name], env=env,
                             capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(out.stdout) == json.loads(json.dumps(rep))
        table = subprocess.run([str(SN51), "payouts", "--day", "2026-11-04", "--schema", name], env=env,
                               capture_output=True, text=True, timeout=60, check=True)
        assert "reconciliation" in table.stdout and "2026-11-04" in table.stdout
    finally:
        runtime.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime
        await conn.close()


async def test_dry_run_stores_the_plan_and_sends_nothing(kafka_bootstrap: str, database_url: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    for var in [v for v in os.environ if v.startswith("SN51_SETTLEMENT_")]:
        monkeypatch.delenv(var)
    sc = scenario()
    conn, runtime, _, prefix = await start_in_process(kafka_bootstrap, database_url, sc, "std",
                                                      payouts=PayoutSettings(chain="live", payout_interval_seconds=0.2))

    async def announced() -> bool:
        rep = await report(conn) if await conn.fetchval("SELECT to_regclass('payout') IS NOT NULL") else None
        if rep is None or (rep["executor"] or {}).get("announced") != len(sc.planned):
            return False
        return bool(await conn.fetchval("SELECT count(*) FROM outbox_pending") == 0)

    try:
        await eventually(announced, "the dry run of every planned payout",
                         alive=lambda: repr(runtime.exception()) if runtime.done() else None)
        rep = await report(conn)
        assert rep["executor"]["mode"] == "dry_run"
        assert "SN51_SETTLEMENT_ENDPOINT" in rep["executor"]["missing"]
        assert {p["state"] for p in rep["payouts"]} == {"planned"} and len(rep["payouts"]) == len(sc.planned)
        assert await conn.fetchval("SELECT count(*) FROM payout_batch") == 0
        assert await conn.fetchval("SELECT to_regclass('memory_chain') IS NULL")
        assert all(d["landed_rao"] == 0 and d["pending_rao"] == d["planned_rao"] for d in rep["reconciliation"])
        types = {decode(r.value).type for r in await read_topic(kafka_bootstrap, prefix + SETTLEMENT)}
        assert types == {"payout.planned", "payout.deferred"}
        assert '"settlement.dry_run"' in capfd.readouterr().out
    finally:
        runtime.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime
        await conn.close()
