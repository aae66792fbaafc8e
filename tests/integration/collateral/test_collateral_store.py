"""The PostgreSQL shell on anvil + PostgreSQL: projection, checkpoint, outbox, reorg retraction, read API,
slash plans written by the projection hook and carried out by the trustee."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from collateral_anvil import CHAIN_ID, AnvilNode, deploy, dev_key, drain, mine
from eth_account import Account
from web3 import Web3

from schemas.envelope import Event
from schemas.events import CollateralSlashRequested, RentalIncident
from services.collateral.api import router
from services.collateral.store import MIGRATIONS, PgStore, project
from services.collateral.trustee import Trustee
from services.collateral.watcher import Watcher, WatcherConfig, make_web3
from services.runtime.api import create_app
from tests.integration.kit import migrated_pool

pytestmark = [pytest.mark.integration, pytest.mark.anvil]

EX = uuid.UUID("6339ba4f-60f9-45c2-9d95-2b755bb57ca6")
MD5 = hashlib.md5(b"x").digest()
CONF = 2


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url, f"collateral_t{secrets.token_hex(4)}", MIGRATIONS) as p:  # own schema
        yield p


async def get(pool: asyncpg.Pool, path: str) -> Any:
    app = create_app("collateral", router, pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.json()


async def test_projection_outbox_restart_and_reorg(anvil: AnvilNode, w3: Web3, pool: asyncpg.Pool) -> None:
    trustee, miner = Account.from_key(dev_key(1)).address, w3.eth.accounts[2]
    c = deploy(w3, trustee)
    cfg = WatcherConfig(rpc_url=anvil.url, contract_address=c.address, chain_id=CHAIN_ID, confirmations=CONF,
                        start_block=w3.eth.block_number, batch_blocks=3)
    wakes: list[int] = []
    store = PgStore(pool, CHAIN_ID, c.address, topic_prefix="t.", on_publish=lambda: wakes.append(1))
    c.functions.deposit(EX.bytes).transact({"from": miner, "value": 3 * 10**18})
    c.functions.reclaimCollateral(EX.bytes, "https://r", MD5).transact({"from": miner})
    mine(w3, 2)
    c.functions.slashCollateral(EX.bytes, 10**18, "https://s", MD5).transact({"from": trustee})
    slash_block = w3.eth.block_number
    mine(w3, CONF)
    await drain(Watcher(cfg, store))

    async with pool.acquire() as conn:
        outbox = await conn.fetch("SELECT event_id, event_type, topic, key FROM outbox ORDER BY seq")
    assert [r["event_type"] for r in outbox] == [
        "collateral.deposited", "collateral.reclaim_started", "collateral.slashed"]
    assert {r["topic"] for r in outbox} == {"t.sn51.collateral"} and {r["key"] for r in outbox} == {str(EX).encode()}
    assert wakes
    [summary] = await get(pool, "/collateral/executors")
    assert (summary["executor_id"], summary["miner_evm_address"], summary["deposited_wei"], summary["slashed_wei"],
            summary["pending_reclaim_wei"], summary["balance_wei"]) == (
        str(EX), miner, 3 * 10**18, 10**18, 3 * 10**18, 2 * 10**18)

    # a restarted watcher resumes from the stored checkpoint: nothing read twice
    mine(w3, 5)
    await drain(Watcher(cfg, PgStore(pool, CHAIN_ID, c.address, topic_prefix="t.")))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3

    # a reorg that removes the slash: retracted in the projection, not re-emitted
    w3.provider.make_request("anvil_reorg", [w3.eth.block_number - slash_block + 1, []])  # type: ignore[arg-type]
    mine(w3, CONF)
    await drain(Watcher(cfg, store))
    detail = await get(pool, f"/collateral/executors/{EX}")
    assert (detail["slashed_wei"], detail["balance_wei"]) == (0, 3 * 10**18)
    assert [(x["event_type"], x["retracted"]) for x in detail["logs"]] == [
        ("collateral.deposited", False), ("collateral.reclaim_started", False), ("collateral.slashed", True)]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3
    cp = await store.checkpoint()
    assert cp is not None and cp.block_hash == w3.eth.get_block(cp.block_number)["hash"].to_0x_hex()


async def test_projection_hook_plans_and_trustee_lands(anvil: AnvilNode, w3: Web3, pool: asyncpg.Pool) -> None:
    trustee = Account.from_key(dev_key(1))
    c = deploy(w3, trustee.address)
    c.functions.deposit(EX.bytes).transact({"from": w3.eth.accounts[2], "value": 10**18})
    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    incident = Event(id="inc-1", type="rental.incident", source="platform", time=t0, key=str(EX), causation_id=None,
                     data=RentalIncident(rental_id="r1", executor_id=str(EX), kind="offline", at=t0))
    request = Event(id="req-1", type="collateral.slash_requested", source="collateral", time=t0, key=str(EX),
                    causation_id="inc-1", data=CollateralSlashRequested(
                        executor_id=str(EX), miner_evm_address=None, amount_wei=25 * 10**16, rental_id="r1",
                        incident_id="inc-1", reason="first_incident", chain_id=CHAIN_ID))
    async with pool.acquire() as conn, conn.transaction():
        await project(conn, incident, [request])
        await project(conn, incident, [request])  # delivered twice: one plan
    store = PgStore(pool, CHAIN_ID, c.address)
    [plan] = await store.open_plans()
    assert (plan.request_id, plan.status, plan.amount_wei) == ("req-1", "planned", 25 * 10**16)

    t = Trustee(make_web3(anvil.url, 5), c.address, CHAIN_ID, trustee, store, confirmations=CONF)
    try:
        await t.settle(plan)
        [sent] = await store.open_plans()
        assert sent.status == "sent" and sent.raw_tx is not None
        mine(w3, CONF)
        await t.settle(sent)
        assert await store.open_plans() == []
        [row] = await get(pool, "/collateral/slashes")
        assert (row["status"], row["slashed_wei"], row["incident_id"], row["landed_tx_hash"]) == (
            "landed", 25 * 10**16, "inc-1", sent.tx_hash)
        assert "raw_tx" not in row
        assert c.functions.collaterals(EX.bytes).call() == 75 * 10**16
    finally:
        await t.w3.provider.disconnect()
