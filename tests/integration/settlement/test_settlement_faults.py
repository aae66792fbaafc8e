"""Settlement under chain and process faults, through the real broker and PostgreSQL with the in-memory chain:
the service SIGKILLed between a batch landing and its record, a timeout after landing, batches that revert.
In each case every provider is paid exactly once: the chain's stakes equal the ledger to the rao, and no
payout is confirmed twice."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from pathlib import Path

import asyncpg
import pytest
from settlement_harness import (
    FUNDED_RAO,
    PAYOUT_COLDKEY,
    Scenario,
    chain_stakes,
    confirmed_once,
    paid_by_coldkey,
    publish,
    scenario,
    settled,
    start_in_process,
)

from schemas.codec import decode
from schemas.topics import SETTLEMENT
from services.runtime.kafka import create_all_topics
from services.settlement.chain_memory_pg import MemoryChainSettings
from tests.integration.kit import FAST_ENV, eventually, read_topic, service_process, stop

pytestmark = pytest.mark.integration


async def assert_paid_exactly_once(conn: asyncpg.Connection, bootstrap: str, prefix: str, sc: Scenario) -> None:
    planned = sc.planned
    expected = paid_by_coldkey(planned, sc)
    assert {r["state"] for r in await conn.fetch("SELECT state FROM payout")} == {"confirmed"}
    stakes, _ = await chain_stakes(conn)
    assert {ck: v for ck, v in stakes.items() if ck != PAYOUT_COLDKEY} == expected
    assert stakes[PAYOUT_COLDKEY] == FUNDED_RAO - sum(expected.values())
    confirmed = confirmed_once([decode(r.value) for r in await read_topic(bootstrap, prefix + SETTLEMENT)], planned)
    assert set(confirmed) == {e.data.payout_id for e in planned}
    # every landed batch landed once: the stored extrinsic of each is the chain's, at a distinct block
    landed = await conn.fetch("SELECT extrinsic_hash, block_number FROM payout_batch WHERE state = 'landed'")
    assert len({r["block_number"] for r in landed}) == len(landed)
    rows = await conn.fetch("SELECT payout_id, extrinsic_hash, block_number FROM payout")
    assert {(r["extrinsic_hash"], r["block_number"]) for r in rows} <= {
        (r["extrinsic_hash"], r["block_number"]) for r in landed}


@pytest.mark.parametrize("fault", ["pause_after_submit", "crash_after_submit"])
async def test_sigkill_between_submit_and_record(kafka_bootstrap: str, fresh_database_url: str, tmp_path: Path,
                                                fault: str) -> None:
    """`pause_after_submit`: the test SIGKILLs the paused service; `crash_after_submit`: it SIGKILLs itself."""
    tag = secrets.token_hex(4)
    prefix = f"stk{tag}."
    sc = scenario()
    await create_all_topics(kafka_bootstrap, prefix)
    await publish(kafka_bootstrap, prefix, sc.events)
    env = {**FAST_ENV, "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": fresh_database_url,
           "SN51_TOPIC_PREFIX": prefix, "SN51_CONSUMER_GROUP": f"settlement-kill-{tag}", "SN51_CHAIN": "memory",
           "SN51_MEMORY_CHAIN_STAKE_RAO": str(FUNDED_RAO), "SN51_PAYOUT_INTERVAL_SECONDS": "0.2",
           "SN51_PAYOUT_BACKOFF_SECONDS": "0.05", "PYTHONUNBUFFERED": "1"}
    log1, log2 = tmp_path / "settlement-1.log", tmp_path / "settlement-2.log"
    proc = service_process("settlement", {**env, "SN51_FAULT": fault}, log1)
    conn = await asyncpg.connect(fresh_database_url, server_settings={"search_path": "settlement"})
    try:
        async def stopped_after_a_landing() -> bool:
            return f"settlement.fault.{fault}" in log1.read_text() and (fault == "pause_after_submit"
                                                                      or proc.poll() is not None)

        await eventually(stopped_after_a_landing, "the first batch to land and the service to stop there",
                         alive=lambda: None if proc.poll() is None or fault == "crash_after_submit"
                         else log1.read_text()[-2000:])
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

        # killed between submit and record: the chain has the batch, the service only its intent
        [batch] = await conn.fetch("SELECT batch_id, hashes, payout_ids, state FROM payout_batch")
        assert batch["state"] == "intent"
        stakes, state = await chain_stakes(conn)
        assert state["included"] == 1 and [x[0] for x in state["extrinsics"]] == list(batch["hashes"])
        paid_before = {ck: v for ck, v in stakes.items() if ck != PAYOUT_COLDKEY}
        assert len(paid_before) == len(batch["payout_ids"])
        assert await conn.fetchval("SELECT count(*) FROM payout WHERE state = 'submitting'") == len(
            batch["payout_ids"])

        proc = service_process("settlement", env, log2)
        await eventually(lambda: settled(conn, len(sc.planned)), "every payout final after the restart",
                         alive=lambda: None if proc.poll() is None else log2.read_text()[-2000:])
        await assert_paid_exactly_once(conn, kafka_bootstrap, prefix, sc)
        # the landed batch was found on chain, not sent again: one extrinsic per batch
        _, state = await chain_stakes(conn)
        assert state["included"] == state["submits"] == await conn.fetchval("SELECT count(*) FROM payout_batch")
        assert await conn.fetchval("SELECT state FROM payout_batch WHERE batch_id = $1", batch["batch_id"]) == "landed"
        assert "settlement.batch.resume" in log2.read_text()
    finally:
        stop(proc)
        await conn.close()


async def run_in_process(kafka_bootstrap: str, database_url: str, memory: MemoryChainSettings,
                         sc: Scenario) -> tuple[asyncpg.Connection, asyncio.Task[None], str, str]:
    conn, runtime, name, prefix = await start_in_process(kafka_bootstrap, database_url, sc, "stf", memory)
    await eventually(lambda: settled(conn, len(sc.planned)), "every payout final",
                     alive=lambda: repr(runtime.exception()) if runtime.done() else None)
    return conn, runtime, name, prefix


async def test_timeout_after_landing(kafka_bootstrap: str, database_url: str) -> None:
    sc = scenario()
    memory = MemoryChainSettings(stake_rao=FUNDED_RAO, timeouts_after_landing=2)
    conn, runtime, _, prefix = await run_in_process(kafka_bootstrap, database_url, memory, sc)
    try:
        await assert_paid_exactly_once(conn, kafka_bootstrap, prefix, sc)
        _, state = await chain_stakes(conn)
        # the two batches that timed out were found on chain, not resent
        assert state["included"] == state["submits"] == await conn.fetchval("SELECT count(*) FROM payout_batch")
    finally:
        runtime.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime
        await conn.close()


async def test_failed_batches_split_and_retried(kafka_bootstrap: str, database_url: str) -> None:
    sc = scenario()
    # ck1's first batch reverts; ck4's first batch and its first retry alone revert: all end paid once
    memory = MemoryChainSettings(stake_rao=FUNDED_RAO, failing_coldkeys="ck1:1,ck4:2")
    conn, runtime, _, prefix = await run_in_process(kafka_bootstrap, database_url, memory, sc)
    try:
        await assert_paid_exactly_once(conn, kafka_bootstrap, prefix, sc)
        failed = await conn.fetch("SELECT payout_ids, transfers, reason FROM payout_batch WHERE state = 'failed'")
        # the first run's batches are [ck0 ck1 ck2] [ck3 ck4 ck5] [ck6]: both of the first two revert and are
        # split, then ck4 alone reverts once more
        assert all("(injected)" in r["reason"] for r in failed)
        assert sorted(len(r["payout_ids"]) for r in failed) == [1, 3, 3]
        assert await conn.fetchval("SELECT failures FROM payout WHERE coldkey = 'ck4' AND run_day = '2026-11-03'") == 1
    finally:
        runtime.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime
        await conn.close()
