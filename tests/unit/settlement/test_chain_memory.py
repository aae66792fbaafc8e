"""The in-memory chain: transfers, blocks, nonces, fees, and each injected fault."""

from __future__ import annotations

import pytest

from services.settlement.chain import (
    BatchFailed,
    ChainTimeout,
    NodeDown,
    NonceConflict,
    Transfer,
)
from services.settlement.chain_memory import MemoryChain

BATCH = (Transfer("ck1", 100), Transfer("ck2", 250))


def funded() -> MemoryChain:
    chain = MemoryChain(base_fee_rao=1000, fee_per_transfer_rao=10)
    chain.fund(1_000)
    return chain


async def test_a_batch_moves_stake_in_one_block_and_uses_the_nonce() -> None:
    chain = funded()
    signed = await chain.sign_batch(BATCH, nonce=0)
    result = await chain.submit_batch(signed)
    assert (chain.stake_of("ck1"), chain.stake_of("ck2"), chain.stake_of(chain.payout_coldkey)) == (100, 250, 650)
    assert result.block_number == 1 and (await chain.head()).number == 1
    assert result.extrinsic_hash == signed.extrinsic_hash and chain.nonce == 1
    assert chain.fees_paid_rao == 1020 == result.fee_rao
    found = await chain.find_extrinsic([signed.extrinsic_hash], 0, 1)
    assert found is not None and found.success and found.block_hash == result.block_hash
    assert await chain.find_extrinsic([signed.extrinsic_hash], 2, 5) is None


async def test_hashes_and_blocks_are_deterministic() -> None:
    a, b = funded(), funded()
    sa, sb = await a.sign_batch(BATCH, nonce=0), await b.sign_batch(BATCH, nonce=0)
    assert sa.extrinsic_hash == sb.extrinsic_hash
    assert (await a.submit_batch(sa)) == (await b.submit_batch(sb))
    assert (await a.head()).time == (await b.head()).time
    other = await a.sign_batch((Transfer("ck1", 101),), nonce=1)
    assert other.extrinsic_hash != sa.extrinsic_hash


async def test_one_extrinsic_per_nonce() -> None:
    chain = funded()
    signed = await chain.sign_batch(BATCH, nonce=0)
    await chain.submit_batch(signed)
    with pytest.raises(NonceConflict):
        await chain.submit_batch(signed)
    with pytest.raises(NonceConflict):
        await chain.submit_batch(await chain.sign_batch(BATCH, nonce=5))
    assert chain.stake_of("ck1") == 100


async def test_timeout_after_landing_lands() -> None:
    chain = funded()
    chain.timeouts_after_landing = 1
    signed = await chain.sign_batch(BATCH, nonce=0)
    with pytest.raises(ChainTimeout):
        await chain.submit_batch(signed)
    assert chain.stake_of("ck1") == 100 and chain.nonce == 1
    assert await chain.find_extrinsic([signed.extrinsic_hash], 0, 1) is not None


async def test_timeout_before_landing_does_not_land() -> None:
    chain = funded()
    chain.timeouts_before_landing = 1
    signed = await chain.sign_batch(BATCH, nonce=0)
    with pytest.raises(ChainTimeout):
        await chain.submit_batch(signed)
    assert chain.stake_of("ck1") == 0 and chain.nonce == 0
    assert await chain.find_extrinsic([signed.extrinsic_hash], 0, 10) is None


async def test_a_failing_dest_reverts_the_whole_batch_but_uses_nonce_and_fee() -> None:
    chain = funded()
    chain.failing_dests["ck2"] = 1
    signed = await chain.sign_batch(BATCH, nonce=0)
    with pytest.raises(BatchFailed) as info:
        await chain.submit_batch(signed)
    assert "ck2" in info.value.reason and info.value.block_number == 1
    assert chain.stake_of("ck1") == 0 and chain.nonce == 1 and chain.fees_paid_rao == 1020
    landing = await chain.find_extrinsic([signed.extrinsic_hash], 0, 1)
    assert landing is not None and not landing.success
    await chain.submit_batch(await chain.sign_batch(BATCH, nonce=1))  # the injected failure is used up
    assert chain.stake_of("ck2") == 250


async def test_not_enough_stake_reverts() -> None:
    chain = funded()
    with pytest.raises(BatchFailed, match="NotEnoughStake"):
        await chain.submit_batch(await chain.sign_batch((Transfer("ck1", 1_001),), nonce=0))
    assert chain.stake_of(chain.payout_coldkey) == 1_000


async def test_node_down_for_n_calls() -> None:
    chain = funded()
    chain.node_down_calls = 2
    with pytest.raises(NodeDown):
        await chain.head()
    with pytest.raises(NodeDown):
        await chain.stake(chain.payout_hotkey, chain.payout_coldkey)
    assert await chain.stake(chain.payout_hotkey, chain.payout_coldkey) == 1_000


async def test_owners() -> None:
    chain = funded()
    chain.set_owner("hk1", "ck1")
    assert await chain.hotkey_owners(["hk1", "hk2"]) == {"hk1": "ck1", "hk2": None}
