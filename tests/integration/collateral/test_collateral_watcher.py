"""The watcher on a real anvil node: every log once, confirmations, reorgs, restarts, RPC outages."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from collateral_anvil import CHAIN_ID, DECISION_TIMEOUT, AnvilNode, deploy, drain, mine
from web3 import Web3

from schemas.events import CollateralLog
from services.collateral.memory import MemoryStore
from services.collateral.watcher import Watcher, WatcherConfig

pytestmark = [pytest.mark.integration, pytest.mark.anvil]

EX1 = uuid.UUID("6339ba4f-60f9-45c2-9d95-2b755bb57ca6")
EX2 = uuid.UUID("0b8f3c2e-1111-4222-8333-444455556666")
MD5 = hashlib.md5(b"x").digest()
CONF = 3


def config(anvil: AnvilNode, contract: Any, w3: Web3, **kw: Any) -> WatcherConfig:
    start = w3.eth.block_number  # the deployment block (instamine)
    base: dict[str, Any] = dict(rpc_url=anvil.url, contract_address=contract.address, chain_id=CHAIN_ID,
                                confirmations=CONF, start_block=start, batch_blocks=4, poll_seconds=0.05,
                                backoff_min_seconds=0.05, backoff_max_seconds=0.2, rpc_timeout_seconds=0.5)
    base.update(kw)
    return WatcherConfig(**base)


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@pytest.fixture
def actors(w3: Web3) -> tuple[Any, str, str]:
    trustee, miner = w3.eth.accounts[1], w3.eth.accounts[2]
    return deploy(w3, trustee), trustee, miner


async def test_every_event_type_once_with_its_fields(anvil: AnvilNode, w3: Web3,
                                                     actors: tuple[Any, str, str]) -> None:
    c, trustee, miner = actors
    store = MemoryStore()
    watcher = Watcher(config(anvil, c, w3), store)
    c.functions.deposit(EX1.bytes).transact({"from": miner, "value": 3 * 10**18})
    c.functions.reclaimCollateral(EX1.bytes, "https://r/0", MD5).transact({"from": miner})  # reclaim 0
    c.functions.denyReclaimRequest(0, "https://d/0", MD5).transact({"from": trustee})
    c.functions.slashCollateral(EX1.bytes, 10**18, "https://s", MD5).transact({"from": trustee})
    c.functions.reclaimCollateral(EX1.bytes, "https://r/1", MD5).transact({"from": miner})  # reclaim 1
    w3.provider.make_request("evm_increaseTime", [DECISION_TIMEOUT])  # type: ignore[arg-type]
    mine(w3, 1)
    fin = c.functions.finalizeReclaim(1).transact({"from": miner})
    mine(w3, CONF)
    await drain(watcher)

    events = store.published
    assert [e.type for e in events] == [
        "collateral.deposited", "collateral.reclaim_started", "collateral.reclaim_denied", "collateral.slashed",
        "collateral.reclaim_started", "collateral.reclaimed"]
    assert len({e.id for e in events}) == 6
    data = [e.data for e in events]
    assert all(isinstance(d, CollateralLog) for d in data)
    for e in events:
        d = e.data
        assert isinstance(d, CollateralLog)
        assert (d.executor_id, d.miner_evm_address, d.chain_id, e.key) == (str(EX1), miner, CHAIN_ID, str(EX1))
        assert e.id == f"{CHAIN_ID}:{d.tx_hash}:{d.log_index}"
        block = w3.eth.get_block(d.block_number)
        assert e.time.timestamp() == block["timestamp"]
    amounts = [(d.amount_wei, d.url, d.reclaim_request_id) for d in data]  # type: ignore[union-attr]
    assert amounts == [
        (3 * 10**18, None, None), (3 * 10**18, "https://r/0", 0), (3 * 10**18, "https://d/0", 0),
        (10**18, "https://s", None), (2 * 10**18, "https://r/1", 1), (2 * 10**18, None, 1)]
    last = data[-1]
    assert isinstance(last, CollateralLog)
    assert last.tx_hash == fin.to_0x_hex()
    # nothing new: reading again publishes nothing
    mine(w3, 10)
    await drain(watcher)
    assert len(store.published) == 6


async def test_nothing_before_its_confirmations(anvil: AnvilNode, w3: Web3, actors: tuple[Any, str, str]) -> None:
    c, _, miner = actors
    store = MemoryStore()
    watcher = Watcher(config(anvil, c, w3), store)
    c.functions.deposit(EX1.bytes).transact({"from": miner, "value": 10**18})
    deposit_block = w3.eth.block_number
    for _ in range(CONF):
        await drain(watcher)
        assert store.published == []
        cp = await store.checkpoint()
        assert cp is None or cp.block_number < deposit_block
        mine(w3, 1)
    await drain(watcher)  # now CONF blocks sit on top of the deposit
    assert [e.type for e in store.published] == ["collateral.deposited"]
    cp = await store.checkpoint()
    assert cp is not None and cp.block_number == w3.eth.block_number - CONF


async def test_reorg_removing_a_slash_retracts_it(anvil: AnvilNode, w3: Web3,
                                                  actors: tuple[Any, str, str]) -> None:
    c, trustee, miner = actors
    store = MemoryStore()
    watcher = Watcher(config(anvil, c, w3), store)
    c.functions.deposit(EX1.bytes).transact({"from": miner, "value": 10**18})
    mine(w3, 2)
    c.functions.slashCollateral(EX1.bytes, 10**17, "https://s", MD5).transact({"from": trustee})
    slash_block = w3.eth.block_number
    mine(w3, CONF)
    await drain(watcher)
    assert [e.type for e in store.published] == ["collateral.deposited", "collateral.slashed"]
    slash_id = store.published[1].id

    depth = w3.eth.block_number - slash_block + 1  # replaces the slash's block and all after it
    w3.provider.make_request("anvil_reorg", [depth, []])  # type: ignore[arg-type]
    assert c.functions.collaterals(EX1.bytes).call() == 10**18  # the slash is gone from the chain
    mine(w3, CONF)
    await drain(watcher)

    assert store.rows[slash_id].retracted
    assert [e.type for e in store.live()] == ["collateral.deposited"]
    assert len(store.published) == 2  # nothing re-emitted, nothing new
    cp = await store.checkpoint()
    assert cp is not None and cp.block_hash == w3.eth.get_block(cp.block_number)["hash"].to_0x_hex()


async def test_stop_and_restart_resume_without_gap_or_duplicate(anvil: AnvilNode, w3: Web3,
                                                                actors: tuple[Any, str, str]) -> None:
    c, _, miner = actors
    store = MemoryStore()
    cfg = config(anvil, c, w3)

    async def run_until(count: int) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Watcher(cfg, store).run(stop))
        await until(lambda: len(store.published) >= count)
        stop.set()
        await asyncio.wait_for(task, 10)

    for _ in range(5):
        c.functions.deposit(EX1.bytes).transact({"from": miner, "value": 10**18})
    mine(w3, CONF)
    await run_until(5)
    for _ in range(5):
        c.functions.deposit(EX2.bytes).transact({"from": miner, "value": 2 * 10**18})
        mine(w3, 1)
    mine(w3, CONF)
    await run_until(10)  # a new watcher: starts from the stored checkpoint
    mine(w3, 20)
    await drain(Watcher(cfg, store))

    blocks = [e.data.block_number for e in store.published]  # type: ignore[attr-defined]
    assert len(store.published) == 10 and len({e.id for e in store.published}) == 10
    assert blocks == sorted(blocks)
    assert Counter(e.key for e in store.published) == {str(EX1): 5, str(EX2): 5}


async def test_rpc_outage_is_survived(anvil: AnvilNode, w3: Web3, actors: tuple[Any, str, str]) -> None:
    c, _, miner = actors
    store = MemoryStore()
    cfg = config(anvil, c, w3)
    stop = asyncio.Event()
    task = asyncio.create_task(Watcher(cfg, store).run(stop))
    try:
        c.functions.deposit(EX1.bytes).transact({"from": miner, "value": 10**18})
        mine(w3, CONF)
        await until(lambda: len(store.published) == 1)
        anvil.pause()
        try:
            probe = Watcher(cfg, MemoryStore())
            with pytest.raises((TimeoutError, OSError)):  # the outage is real: a direct read fails
                await probe.step()
            await probe.close()
            await asyncio.sleep(1.0)  # the running watcher hits timeouts and backs off meanwhile
        finally:
            anvil.resume()
        assert not task.done()
        c.functions.deposit(EX1.bytes).transact({"from": miner, "value": 10**18})
        mine(w3, CONF)
        await until(lambda: len(store.published) == 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    # a watcher started against a dead endpoint keeps retrying rather than dying
    dead = config(anvil, c, w3, rpc_url="http://127.0.0.1:9")
    stop = asyncio.Event()
    task = asyncio.create_task(Watcher(dead, MemoryStore()).run(stop))
    await asyncio.sleep(0.5)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_denial_of_a_reclaim_started_before_the_start_block(anvil: AnvilNode, w3: Web3,
                                                                    actors: tuple[Any, str, str]) -> None:
    c, trustee, miner = actors
    c.functions.deposit(EX2.bytes).transact({"from": miner, "value": 10**18})
    c.functions.reclaimCollateral(EX2.bytes, "https://r", MD5).transact({"from": miner})
    store = MemoryStore()
    watcher = Watcher(config(anvil, c, w3, start_block=w3.eth.block_number + 1), store)
    c.functions.denyReclaimRequest(0, "https://no", MD5).transact({"from": trustee})
    mine(w3, CONF)
    await drain(watcher)
    [denied] = store.published
    d = denied.data
    assert isinstance(d, CollateralLog)
    assert (denied.type, d.executor_id, d.miner_evm_address, d.amount_wei, d.reclaim_request_id, d.url) == (
        "collateral.reclaim_denied", str(EX2), miner, 10**18, 0, "https://no")
