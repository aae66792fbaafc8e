"""`services.collateral.app:SPEC` on the shared runtime, end to end: a real broker, PostgreSQL and anvil.

An incident (delivered twice) on a rental plans one slash of one day of fee; the trustee sends it; the
watcher sees the Slashed log after its confirmations and publishes `collateral.slashed`, which the service
consumes back into its core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid

import asyncpg
import pytest
from collateral_anvil import CHAIN_ID, AnvilNode, deploy, dev_key
from eth_account import Account
from web3 import Web3

from schemas.codec import decode
from schemas.topics import COLLATERAL, INPUT
from services.collateral.app import SPEC
from services.runtime.kafka import create_all_topics, produce
from services.runtime.service import run
from services.runtime.settings import Settings
from tests.factories import epoch, incident, listed, started
from tests.integration.kit import eventually, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.anvil]

EX = str(uuid.UUID("6339ba4f-60f9-45c2-9d95-2b755bb57ca6"))
T = "2026-11-21T12:00:00Z"
ONE_DAY_WEI = 717_120_000_000_000_000  # 1.494 USD × 8 GPUs × 24 h = 286.848 USD at 400 USD/TAO


async def test_incident_to_slash_to_slashed_log(anvil: AnvilNode, w3: Web3, kafka_bootstrap: str,
                                                database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trustee = Account.from_key(dev_key(1))
    c = deploy(w3, trustee.address)
    start = w3.eth.block_number
    c.functions.deposit(uuid.UUID(EX).bytes).transact({"from": w3.eth.accounts[2], "value": 2 * 10**18})
    for name, value in {"RPC_URL": anvil.url, "CONTRACT_ADDRESS": c.address, "CHAIN_ID": str(CHAIN_ID),
                        "CONFIRMATIONS": "2", "START_BLOCK": str(start), "POLL_SECONDS": "0.1"}.items():
        monkeypatch.setenv(f"SN51_COLLATERAL_{name}", value)
    monkeypatch.setenv("SN51_TRUSTEE_KEY", dev_key(1))

    tag = secrets.token_hex(4)
    spec = dataclasses.replace(SPEC, name=f"collateral_{tag}")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=f"c{tag}.",
                        session_timeout_ms=2000, heartbeat_interval_ms=200, api_enabled=False,
                        relay_idle_seconds=0.1)
    await create_all_topics(kafka_bootstrap, settings.topic_prefix)
    hit = incident("r1", EX, T)
    await produce(kafka_bootstrap, [
        listed(EX, "hk", "ck", T, model="NVIDIA H100 80GB HBM3", count=8, price="1.494"),
        started("r1", EX, T, price="1.494"), epoch(1, T, tao_usd="400"), hit, hit,
    ], topic=settings.topic(INPUT))

    conn = await asyncpg.connect(database_url, server_settings={"search_path": spec.name})
    runtime = asyncio.create_task(run(spec, settings))
    try:
        async def landed_and_seen() -> bool:
            assert not runtime.done(), runtime.exception()
            await asyncio.to_thread(w3.provider.make_request, "anvil_mine", [1])  # type: ignore[arg-type]
            try:
                n = await conn.fetchval("""SELECT count(*) FROM inbox WHERE event_type = 'collateral.slashed'""")
            except asyncpg.UndefinedTableError:
                return False
            return bool(n == 1)

        await eventually(landed_and_seen, "the slash to land and its log to come back through Kafka")
        plans = await conn.fetch("SELECT status, slashed_wei, amount_wei FROM collateral_slash_plans")
        assert [(p["status"], int(p["slashed_wei"])) for p in plans] == [("landed", ONE_DAY_WEI)]
        assert c.functions.collaterals(uuid.UUID(EX).bytes).call() == 2 * 10**18 - ONE_DAY_WEI
        types = [decode(r.value).type for r in await read_topic(kafka_bootstrap, settings.topic(COLLATERAL))]
        assert sorted(types) == ["collateral.deposited", "collateral.slash_requested", "collateral.slashed"]
        inbox = [r["event_type"] for r in await conn.fetch("SELECT event_type FROM inbox ORDER BY seq")]
        assert inbox.count("rental.incident") == 1 and "collateral.deposited" in inbox
    finally:
        runtime.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runtime
        await conn.close()
