"""The trustee on a real anvil node: one slash per request, across crashes, restarts and duplicates."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from collateral_anvil import BURN, CHAIN_ID, AnvilNode, deploy, dev_key, mine
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError

from schemas.envelope import Event
from schemas.events import CollateralSlashRequested
from services.collateral.memory import MemoryStore
from services.collateral.trustee import SlashPlan, Trustee, load_key
from services.collateral.watcher import make_web3

pytestmark = [pytest.mark.integration, pytest.mark.anvil]

EX = uuid.UUID("6339ba4f-60f9-45c2-9d95-2b755bb57ca6")
CONF = 2
T0 = datetime(2026, 11, 21, 12, tzinfo=UTC)


def request(request_id: str, amount: int, reason: str = "first_incident") -> SlashPlan:
    data = CollateralSlashRequested(executor_id=str(EX), miner_evm_address=None, amount_wei=amount,
                                    rental_id="r1", incident_id="i-" + request_id, reason=reason, chain_id=CHAIN_ID)
    return SlashPlan.of(Event(id=request_id, type="collateral.slash_requested", source="collateral", time=T0,
                              key=str(EX), causation_id="i-" + request_id, data=data))


CLIENTS: list[Any] = []


def web3_client(url: str) -> Any:
    client = make_web3(url, 5)
    CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while CLIENTS:
        await CLIENTS.pop().provider.disconnect()


def slashes(w3: Web3, c: Any) -> list[Any]:
    return list(c.events.Slashed().get_logs(from_block=0))


@pytest.fixture
def funded(w3: Web3) -> Any:
    trustee = Account.from_key(dev_key(1)).address
    c = deploy(w3, trustee)
    c.functions.deposit(EX.bytes).transact({"from": w3.eth.accounts[2], "value": 10**18})
    return c


def trustee_for(anvil: AnvilNode, c: Any, store: MemoryStore, key: int = 1) -> Trustee:
    return Trustee(web3_client(anvil.url), c.address, CHAIN_ID, Account.from_key(dev_key(key)), store,
                   confirmations=CONF)


async def test_a_planned_slash_lands_once(anvil: AnvilNode, w3: Web3, funded: Any) -> None:
    store = MemoryStore()
    plan = await store.plan(request("req-1", 3 * 10**17))
    trustee = trustee_for(anvil, funded, store)
    burn_before = w3.eth.get_balance(BURN)
    plan = await trustee.settle(plan)
    assert plan.status == "sent" and plan.tx_hash is not None
    plan = await trustee.settle(plan)  # mined, not yet confirmed: waits, sends nothing
    assert plan.status == "sent"
    mine(w3, CONF)
    plan = await trustee.settle(plan)
    assert (plan.status, plan.slashed_wei, plan.landed_tx_hash) == ("landed", 3 * 10**17, plan.tx_hash)
    assert await trustee.settle(plan) == plan
    # the same request delivered again plans nothing new
    assert (await store.plan(request("req-1", 3 * 10**17))).status == "landed"
    assert len(slashes(w3, funded)) == 1
    assert w3.eth.get_balance(BURN) == burn_before + 3 * 10**17


async def test_crash_after_planning_before_sending_resends_the_same_tx(anvil: AnvilNode, w3: Web3,
                                                                       funded: Any) -> None:
    store = MemoryStore()

    class CrashingTrustee(Trustee):
        async def _send_raw(self, plan: SlashPlan) -> None:
            raise ConnectionError("crashed before the send went out")

    plan = await store.plan(request("req-2", 10**17))
    with pytest.raises(ConnectionError):
        await CrashingTrustee(web3_client(anvil.url), funded.address, CHAIN_ID, Account.from_key(dev_key(1)),
                              store, confirmations=CONF).settle(plan)
    stored = store.plans["req-2"]
    assert stored.status == "sent" and stored.tx_hash is not None  # stored before the send
    assert slashes(w3, funded) == []

    restarted = trustee_for(anvil, funded, store)
    plan = await restarted.settle(store.plans["req-2"])  # reads the chain: not there, not pending: resend
    assert plan.tx_hash == stored.tx_hash
    mine(w3, CONF)
    plan = await restarted.settle(plan)
    assert plan.status == "landed"
    assert len(slashes(w3, funded)) == 1


async def test_crash_after_sending_does_not_slash_twice(anvil: AnvilNode, w3: Web3, funded: Any) -> None:
    store = MemoryStore()
    plan = await trustee_for(anvil, funded, store).settle(await store.plan(request("req-3", 10**17)))
    assert plan.status == "sent"
    mine(w3, CONF)
    # a restart that lost everything after the plan was stored as planned (status never updated):
    store.plans["req-3"] = SlashPlan(plan.request_id, plan.executor_id, plan.amount_wei, plan.reason,
                                     from_block=plan.from_block)
    plan = await trustee_for(anvil, funded, store).settle(store.plans["req-3"])
    assert plan.status == "landed"  # found its Slashed log by the request's tag; sent nothing
    assert len(slashes(w3, funded)) == 1


async def test_repeat_slashes_everything_and_then_nothing_is_left(anvil: AnvilNode, w3: Web3,
                                                                  funded: Any) -> None:
    store = MemoryStore()
    trustee = trustee_for(anvil, funded, store)
    plan = await trustee.settle(await store.plan(request("req-4", 1, reason="repeat_incident")))
    mine(w3, CONF)
    plan = await trustee.settle(plan)
    assert (plan.status, plan.slashed_wei) == ("landed", 10**18)
    assert funded.functions.collaterals(EX.bytes).call() == 0
    plan = await trustee.settle(await store.plan(request("req-5", 10**17)))
    assert plan.status == "nothing_to_slash"
    assert len(slashes(w3, funded)) == 1


async def test_only_the_trustee_can_slash(anvil: AnvilNode, w3: Web3, funded: Any) -> None:
    store = MemoryStore()
    impostor = trustee_for(anvil, funded, store, key=3)
    with pytest.raises(ContractCustomError):
        await impostor.settle(await store.plan(request("req-6", 10**17)))
    assert slashes(w3, funded) == []
    assert funded.functions.collaterals(EX.bytes).call() == 10**18


def test_key_from_file_or_env_and_off_without(tmp_path: Any) -> None:
    key = dev_key(1)
    (tmp_path / "k").write_text(key + "\n")
    assert load_key({"SN51_TRUSTEE_KEY_FILE": str(tmp_path / "k")}).address == Account.from_key(key).address  # type: ignore[union-attr]
    assert load_key({"SN51_TRUSTEE_KEY": key}).address == Account.from_key(key).address  # type: ignore[union-attr]
    assert load_key({}) is None


async def test_without_a_key_the_trustee_is_off(anvil: AnvilNode, funded: Any) -> None:
    import asyncio

    store = MemoryStore()
    trustee = Trustee(web3_client(anvil.url), funded.address, CHAIN_ID, None, store)
    assert not trustee.enabled
    await asyncio.wait_for(trustee.run(asyncio.Event()), 5)  # returns at once: off
    plan = await store.plan(request("req-7", 10**17))
    assert await trustee.settle(plan) == plan


async def test_a_slash_removed_by_a_reorg_is_resent_not_doubled(anvil: AnvilNode, w3: Web3, funded: Any) -> None:
    store = MemoryStore()
    trustee = trustee_for(anvil, funded, store)
    plan = await trustee.settle(await store.plan(request("req-8", 10**17)))
    assert plan.status == "sent" and len(slashes(w3, funded)) == 1
    w3.provider.make_request("anvil_reorg", [1, []])  # type: ignore[arg-type]  # drops the slash's block
    assert slashes(w3, funded) == []
    plan = await trustee.settle(plan)  # not on chain, not pending: the very same transaction again
    mine(w3, CONF)
    plan = await trustee.settle(plan)
    assert plan.status == "landed" and plan.attempts == 1
    assert len(slashes(w3, funded)) == 1
    assert funded.functions.collaterals(EX.bytes).call() == 9 * 10**17
