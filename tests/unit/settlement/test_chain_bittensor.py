"""The bittensor adapter, offline, through the SDK's substrate seam: a fake substrate records what the SDK
composes, signs and submits. No network: every client here has a fake substrate or is never connected."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bittensor as bt
import pytest
from bittensor.keyfiles import Keypair

from services.settlement.chain import (
    BatchFailed,
    ChainTimeout,
    NodeDown,
    NonceConflict,
    Transfer,
)
from services.settlement.chain_bittensor import BittensorChain
from services.settlement.execution import PlannedPayout
from services.settlement.execution_store import MemoryExecutionStore
from services.settlement.executor import Executor, ExecutorConfig

ENDPOINT = "ws://127.0.0.1:9"  # never dialled
COLD = Keypair.create_from_uri("//Alice")
PAYOUT_HOTKEY = Keypair.create_from_uri("//Bob").ss58_address
DESTS = [Keypair.create_from_uri(f"//Dest{i}").ss58_address for i in range(5)]


@dataclass(frozen=True)
class Composed:
    module: str
    function: str
    params: dict[str, Any]


class FakeSubstrate:
    """Just enough of `bittensor.Substrate` for plan, sign, submit and the reads the adapter makes."""

    def __init__(self) -> None:
        self.token_symbols: dict[int, str] = {}
        self.composed: list[Composed] = []
        self.signed: list[tuple[Composed, int, int]] = []
        self.submitted: list[str] = []
        self.outcomes: list[Any] = []  # per submit: an ExtrinsicResult, an exception, or None (success)
        self.included: dict[tuple[str, str], bt.ExtrinsicResult] = {}
        self.head = 100
        self.nonce = 7
        self.stakes: dict[tuple[str, str, int], int] = {}
        self.owners: dict[str, str] = {}
        self.down = False

    def balance(self, rao: int, netuid: int = 0) -> bt.Balance:
        return bt.Balance.from_rao(rao, netuid)

    async def connect(self) -> None:
        raise AssertionError("tests never connect")

    async def close(self) -> None:
        return None

    def _check(self) -> None:
        if self.down:
            raise bt.RpcConnectionError("connection refused")

    async def block_number(self) -> int:
        self._check()
        return self.head

    async def block_hash(self, block: int | None = None) -> str:
        self._check()
        return f"0xblock{self.head if block is None else block}"

    async def query(self, module: str, fn: str, params: Any = None, block_hash: Any = None) -> Any:
        self._check()
        if (module, fn) == ("Timestamp", "Now"):
            return 1_790_000_000_000
        return None

    async def query_batch(self, module: str, fn: str, param_sets: list[list[Any]], block_hash: Any = None) -> Any:
        self._check()
        assert (module, fn) == ("SubtensorModule", "Owner")
        return [self.owners.get(p[0]) for p in param_sets]

    async def query_map(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    async def runtime_call(self, api: str, method: str, params: list[Any], block_hash: Any = None) -> Any:
        self._check()
        if method == "get_stake_info_for_hotkey_coldkey_netuid":
            hotkey, coldkey, netuid = params
            return {"stake": self.stakes.get((hotkey, coldkey, netuid), 0)}
        return None

    async def compose(self, call: Any) -> Composed:
        module, function, params = call
        composed = Composed(module, function, dict(params))
        self.composed.append(composed)
        return composed

    async def estimate_fee(self, call: Any, keypair: Any) -> bt.Balance:
        return bt.Balance.from_rao(1_000 + 10 * len(call.params.get("calls", [])))

    async def account_next_index(self, address: str) -> int:
        self._check()
        assert address == COLD.ss58_address
        return self.nonce

    async def sign_extrinsic(self, call: Any, keypair: Any, *, nonce: int, period: int) -> tuple[bytes, str]:
        assert keypair.ss58_address == COLD.ss58_address
        self.signed.append((call, nonce, period))
        return b"\x01signed", f"0xxt{nonce}-{len(self.signed)}"

    async def submit_signed(self, extrinsic: Any, keypair: Any, *, wait_for_inclusion: bool,
                            wait_for_finalization: bool) -> bt.ExtrinsicResult:
        assert wait_for_inclusion and wait_for_finalization
        self.submitted.append(extrinsic.extrinsic_hash)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == "hang":
            await asyncio.sleep(5)
        if isinstance(outcome, bt.ExtrinsicResult):
            return outcome
        self.head += 1
        self.nonce += 1
        result = bt.ExtrinsicResult(success=True, message="Success", block_hash=f"0xblock{self.head}",
                                    extrinsic_id=f"{self.head}-0002", fee=bt.Balance.from_rao(1_234))
        self.included[(extrinsic.extrinsic_hash, f"0xblock{self.head}")] = result
        return result

    async def find_extrinsic(self, extrinsic_hash: str, block_hash: str) -> bt.ExtrinsicResult | None:
        self._check()
        return self.included.get((extrinsic_hash, block_hash))


def adapter(fake: FakeSubstrate, **options: Any) -> BittensorChain:
    return BittensorChain.connect(ENDPOINT, COLD, payout_hotkey=PAYOUT_HOTKEY, substrate=fake, **options)


async def test_a_batch_is_one_batch_all_of_alpha_transfer_stakes_on_netuid_51() -> None:
    fake = FakeSubstrate()
    chain = adapter(fake, era_period_blocks=64)
    transfers = [Transfer(DESTS[0], 12_345_678_901), Transfer(DESTS[1], 1), Transfer(DESTS[2], 10**12)]
    signed = await chain.sign_batch(transfers, nonce=7)
    inner = [c for c in fake.composed if c.function == "transfer_stake"]
    assert [c.params for c in inner] == [
        {"destination_coldkey": t.dest_coldkey, "hotkey": PAYOUT_HOTKEY, "origin_netuid": 51,
         "destination_netuid": 51, "alpha_amount": t.amount_rao}
        for t in transfers
    ]
    [outer] = [c for c in fake.composed if c.module == "Utility"]
    assert outer.function == "batch_all" and outer.params["calls"] == inner
    [(call, nonce, period)] = fake.signed
    assert call == outer and nonce == 7 and period == 64
    assert signed.extrinsic_hash == "0xxt7-1" and signed.nonce == 7 and signed.fee_rao == 1_030
    assert signed.transfers == tuple(transfers)
    assert fake.submitted == []  # signed, not sent


async def test_amounts_are_alpha_of_netuid_51() -> None:
    intent = adapter(FakeSubstrate()).batch_intent([Transfer(DESTS[0], 5)])
    [child] = intent._children
    assert child.amount_alpha.rao == 5 and child.amount_alpha.netuid == 51
    with pytest.raises(ValueError, match="subnet-51 ALPHA"):
        bt.TransferStake(dest_coldkey_ss58=DESTS[0], hotkey_ss58=PAYOUT_HOTKEY, origin_netuid=51, dest_netuid=51,
                         amount_alpha=bt.Balance.from_rao(5))  # TAO where alpha is required


async def test_submit_success_gives_hash_block_and_number() -> None:
    fake = FakeSubstrate()
    chain = adapter(fake)
    signed = await chain.sign_batch([Transfer(DESTS[0], 10)], nonce=7)
    result = await chain.submit_batch(signed)
    assert (result.extrinsic_hash, result.block_hash, result.block_number, result.fee_rao) == (
        signed.extrinsic_hash, "0xblock101", 101, 1_234)
    assert fake.submitted == [signed.extrinsic_hash]
    landing = await chain.find_extrinsic([signed.extrinsic_hash], 95, 105)
    assert landing is not None and landing.success and landing.block_number == 101


@pytest.mark.parametrize(
    ("outcome", "error", "included"),
    [
        (bt.ExtrinsicResult(success=False, message="Not enough stake", block_hash="0xblock101",
                            extrinsic_id="101-0001", error=bt.ChainError("Not enough stake",
                                                                         "NotEnoughStakeToWithdraw")),
         BatchFailed, True),
        (bt.ExtrinsicResult(success=False, message="Transaction is outdated",
                            error=bt.ChainError("Transaction is outdated")), NonceConflict, False),
        (bt.ExtrinsicResult(success=False, message="Inability to pay some fees",
                            error=bt.ChainError("Inability to pay some fees")), BatchFailed, False),
        (bt.RpcConnectionError("connection refused"), NodeDown, False),
        (bt.ChainError("websocket closed mid-request"), ChainTimeout, False),
        ("hang", ChainTimeout, False),
    ],
)
async def test_error_mapping(outcome: Any, error: type[Exception], included: bool) -> None:
    fake = FakeSubstrate()
    fake.outcomes.append(outcome)
    chain = adapter(fake, submit_timeout_seconds=0.05)
    signed = await chain.sign_batch([Transfer(DESTS[0], 10)], nonce=7)
    with pytest.raises(error) as info:
        await chain.submit_batch(signed)
    if isinstance(info.value, BatchFailed):
        assert (info.value.block_number == 101) is included
        assert (info.value.extrinsic_hash == signed.extrinsic_hash) is included
        if included:
            assert "NotEnoughStakeToWithdraw" in info.value.reason


async def test_reads() -> None:
    fake = FakeSubstrate()
    fake.stakes[(PAYOUT_HOTKEY, COLD.ss58_address, 51)] = 5 * 10**12
    fake.owners = {"hk1": DESTS[0]}
    chain = adapter(fake)
    assert chain.payout_coldkey == COLD.ss58_address and chain.payout_hotkey == PAYOUT_HOTKEY
    assert await chain.stake(PAYOUT_HOTKEY, COLD.ss58_address) == 5 * 10**12
    assert await chain.stake(PAYOUT_HOTKEY, DESTS[0]) == 0
    assert await chain.hotkey_owners(["hk1", "hk2"]) == {"hk1": DESTS[0], "hk2": None}
    assert await chain.next_nonce() == 7
    head = await chain.head()
    assert (head.number, head.block_hash) == (100, "0xblock100")
    assert head.time == datetime.fromtimestamp(1_790_000_000, tz=UTC)
    fake.down = True
    with pytest.raises(NodeDown):
        await chain.head()
    with pytest.raises(NodeDown):
        await chain.find_extrinsic(["0xa"], 1, 2)


def test_a_real_client_is_pinned_to_the_explicit_endpoint() -> None:
    chain = BittensorChain.connect("ws://127.0.0.1:9944", COLD, payout_hotkey=PAYOUT_HOTKEY)
    substrate = chain.client._substrate
    assert isinstance(substrate, bt.RpcSubstrate)
    assert substrate.endpoint == "ws://127.0.0.1:9944"
    assert substrate.fallback_endpoints == [] and substrate.archive_endpoints == []
    with pytest.raises(ValueError):
        BittensorChain.connect("finney", COLD, payout_hotkey=PAYOUT_HOTKEY)
    assert "Alice" not in repr(chain) and COLD.ss58_address in repr(chain)


async def test_the_executor_pays_through_the_sdk_in_ceil_n_over_max_batch_extrinsics() -> None:
    fake = FakeSubstrate()
    fake.stakes[(PAYOUT_HOTKEY, COLD.ss58_address, 51)] = 10**15
    when = datetime(2026, 11, 3, 17, tzinfo=UTC)
    planned = [
        PlannedPayout(f"p{i}", d, ("2026-11-01",), 10**9 + i, (f"hk{i}",), i // 2, "run", "2026-11-03", f"e{i}", when)
        for i, d in enumerate(DESTS)
    ]
    fake.owners = {f"hk{i}": d for i, d in enumerate(DESTS)}
    fake.outcomes = [None, bt.ChainError("socket dropped")]  # batch 2: maybe sent, in fact not: resent, nonce 8
    store = MemoryExecutionStore()

    async def no_sleep(_: float) -> None:
        return None

    report = await Executor(adapter(fake), store, ExecutorConfig(max_batch=2), sleep=no_sleep).run(planned)
    assert report.confirmed == 5
    batches = [c for c in fake.composed if c.function == "batch_all"]
    assert [len(b.params["calls"]) for b in batches] == [2, 2, 2, 1]  # batch 2 composed twice (resigned)
    assert [nonce for _, nonce, _ in fake.signed] == [7, 8, 8, 9]
    assert len(fake.included) == 3
