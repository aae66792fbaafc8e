"""Collateral.sol on a real anvil node: deposits, reclaims, denials, slashes and every event's fields."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from collateral_anvil import BURN, DECISION_TIMEOUT, MIN_INCREASE, deploy
from web3 import Web3
from web3.exceptions import ContractCustomError

from services.collateral import chain

pytestmark = [pytest.mark.integration, pytest.mark.anvil]

EXEC = uuid.UUID("6339ba4f-60f9-45c2-9d95-2b755bb57ca6")
MD5 = hashlib.md5(b"evidence").digest()


@pytest.fixture
def setup(w3: Web3) -> tuple[Any, str, str, str]:
    trustee, miner, other = w3.eth.accounts[1], w3.eth.accounts[2], w3.eth.accounts[3]
    return deploy(w3, trustee), trustee, miner, other


def one_event(contract: Any, name: str, tx: bytes) -> Any:
    receipt = contract.w3.eth.get_transaction_receipt(tx)
    events = getattr(contract.events, name)().process_receipt(receipt)
    assert len(events) == 1
    return events[0]["args"]


def reverts(fn: Any, tx: dict[str, Any], error: str) -> None:
    with pytest.raises(ContractCustomError) as info:
        fn.transact(tx)
    selector = Web3.keccak(text=f"{error}()")[:4].to_0x_hex()
    assert selector in str(info.value)


def test_constructor_and_views(setup: tuple[Any, str, str, str]) -> None:
    c, trustee, _, _ = setup
    assert c.functions.NETUID().call() == 51
    assert c.functions.TRUSTEE().call() == trustee
    assert c.functions.BURN_ADDRESS().call() == Web3.to_checksum_address(BURN)
    assert c.functions.MIN_COLLATERAL_INCREASE().call() == MIN_INCREASE
    assert c.functions.DECISION_TIMEOUT().call() == DECISION_TIMEOUT


def test_deposit(setup: tuple[Any, str, str, str]) -> None:
    c, _, miner, other = setup
    tx = c.functions.deposit(EXEC.bytes).transact({"from": miner, "value": 3 * 10**18})
    ev = one_event(c, "Deposit", tx)
    assert (ev.executorId, ev.miner, ev.amount) == (EXEC.bytes, miner, 3 * 10**18)
    c.functions.deposit(EXEC.bytes).transact({"from": miner, "value": 10**18})
    assert c.functions.collaterals(EXEC.bytes).call() == 4 * 10**18
    assert c.functions.executorToMiner(EXEC.bytes).call() == miner
    reverts(c.functions.deposit(EXEC.bytes), {"from": other, "value": 10**18}, "NotExecutorMiner")
    reverts(c.functions.deposit(EXEC.bytes), {"from": miner, "value": MIN_INCREASE - 1}, "InsufficientAmount")


def test_reclaim_finalized_after_timeout(setup: tuple[Any, str, str, str], w3: Web3) -> None:
    c, _, miner, other = setup
    c.functions.deposit(EXEC.bytes).transact({"from": miner, "value": 2 * 10**18})
    reverts(c.functions.reclaimCollateral(EXEC.bytes, "u", MD5), {"from": other}, "NotExecutorMiner")
    tx = c.functions.reclaimCollateral(EXEC.bytes, "https://x/why", MD5).transact({"from": miner})
    ev = one_event(c, "ReclaimProcessStarted", tx)
    started_at = w3.eth.get_block(w3.eth.get_transaction_receipt(tx)["blockNumber"])["timestamp"]
    assert (ev.reclaimRequestId, ev.executorId, ev.miner, ev.amount) == (0, EXEC.bytes, miner, 2 * 10**18)
    assert ev.expirationTime == started_at + DECISION_TIMEOUT
    assert (ev.url, ev.urlContentMd5Checksum) == ("https://x/why", MD5)
    # everything is under a pending reclaim: nothing more to reclaim, and not before the timeout
    reverts(c.functions.reclaimCollateral(EXEC.bytes, "u", MD5), {"from": miner}, "NothingToReclaim")
    reverts(c.functions.finalizeReclaim(0), {"from": miner}, "BeforeDenyTimeout")
    w3.provider.make_request("evm_increaseTime", [DECISION_TIMEOUT])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    before = w3.eth.get_balance(miner)
    tx = c.functions.finalizeReclaim(0).transact({"from": other})
    ev = one_event(c, "Reclaimed", tx)
    assert (ev.reclaimRequestId, ev.executorId, ev.miner, ev.amount) == (0, EXEC.bytes, miner, 2 * 10**18)
    assert w3.eth.get_balance(miner) == before + 2 * 10**18
    assert c.functions.collaterals(EXEC.bytes).call() == 0
    reverts(c.functions.finalizeReclaim(0), {"from": miner}, "ReclaimNotFound")


def test_deny_only_by_trustee_before_timeout(setup: tuple[Any, str, str, str], w3: Web3) -> None:
    c, trustee, miner, other = setup
    c.functions.deposit(EXEC.bytes).transact({"from": miner, "value": 10**18})
    c.functions.reclaimCollateral(EXEC.bytes, "u", MD5).transact({"from": miner})
    reverts(c.functions.denyReclaimRequest(0, "no", MD5), {"from": other}, "NotTrustee")
    reverts(c.functions.denyReclaimRequest(0, "no", MD5), {"from": miner}, "NotTrustee")
    tx = c.functions.denyReclaimRequest(0, "https://x/denied", MD5).transact({"from": trustee})
    ev = one_event(c, "Denied", tx)
    assert (ev.reclaimRequestId, ev.url, ev.urlContentMd5Checksum) == (0, "https://x/denied", MD5)
    assert c.functions.collaterals(EXEC.bytes).call() == 10**18
    # denied: the collateral can be reclaimed again, and a late denial is refused
    c.functions.reclaimCollateral(EXEC.bytes, "u", MD5).transact({"from": miner})
    w3.provider.make_request("evm_increaseTime", [DECISION_TIMEOUT])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    reverts(c.functions.denyReclaimRequest(1, "no", MD5), {"from": trustee}, "PastDenyTimeout")


def test_slash_only_trustee_capped_and_burnt(setup: tuple[Any, str, str, str], w3: Web3) -> None:
    c, trustee, miner, other = setup
    c.functions.deposit(EXEC.bytes).transact({"from": miner, "value": 5 * 10**17})
    for who in (other, miner):
        reverts(c.functions.slashCollateral(EXEC.bytes, 1, "u", MD5), {"from": who}, "NotTrustee")
    burn_before = w3.eth.get_balance(BURN)
    tx = c.functions.slashCollateral(EXEC.bytes, 10**17, "https://x/slash", MD5).transact({"from": trustee})
    ev = one_event(c, "Slashed", tx)
    assert (ev.executorId, ev.miner, ev.amount, ev.url, ev.urlContentMd5Checksum) == (
        EXEC.bytes, miner, 10**17, "https://x/slash", MD5)
    # more than the balance: capped at what is left
    tx = c.functions.slashCollateral(EXEC.bytes, 10**19, "all", MD5).transact({"from": trustee})
    assert one_event(c, "Slashed", tx).amount == 4 * 10**17
    assert w3.eth.get_balance(BURN) == burn_before + 5 * 10**17
    assert c.functions.collaterals(EXEC.bytes).call() == 0
    reverts(c.functions.slashCollateral(EXEC.bytes, 1, "u", MD5), {"from": trustee}, "NothingToSlash")


def test_slash_during_reclaim_caps_the_payout(setup: tuple[Any, str, str, str], w3: Web3) -> None:
    c, trustee, miner, _ = setup
    c.functions.deposit(EXEC.bytes).transact({"from": miner, "value": 10**18})
    c.functions.reclaimCollateral(EXEC.bytes, "u", MD5).transact({"from": miner})
    c.functions.slashCollateral(EXEC.bytes, 4 * 10**17, "u", MD5).transact({"from": trustee})
    w3.provider.make_request("evm_increaseTime", [DECISION_TIMEOUT])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    tx = c.functions.finalizeReclaim(0).transact({"from": miner})
    assert one_event(c, "Reclaimed", tx).amount == 6 * 10**17
    assert c.functions.collaterals(EXEC.bytes).call() == 0


def test_topics_match_the_committed_abi() -> None:
    assert set(chain.TOPICS.values()) == set(chain.EVENT_TYPES)
    sig = "Slashed(bytes16,address,uint256,string,bytes16)"
    assert chain.TOPIC_OF["Slashed"] == Web3.keccak(text=sig).to_0x_hex()
