"""An in-memory subtensor for tests, the demo and the benchmark: stake, owners, nonces, blocks, fees, faults.

Deterministic: block hashes and extrinsic hashes are sha256 over the seed, counters and contents, the chain clock is
`genesis + number * seconds_per_block`; no wall clock, no randomness. Each included extrinsic makes one block.

Faults are injected by setting counters:
- `node_down_calls`: the next N calls (reads, signing, submits) raise `NodeDown` and change nothing;
- `timeouts_before_landing`: the next N submits raise `ChainTimeout` without landing;
- `timeouts_after_landing`: the next N submits land, then raise `ChainTimeout`;
- `failing_dests[coldkey] = n`: the next n batches paying that coldkey are included with a failed dispatch
  (`batch_all` reverts: nobody paid, nonce used, fee charged) and raise `BatchFailed`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.settlement.chain import (
    NETUID,
    BatchFailed,
    ChainHead,
    ChainTimeout,
    Landing,
    NodeDown,
    NonceConflict,
    SignedBatch,
    SubmitResult,
    Transfer,
)

GENESIS = datetime(2026, 1, 1, tzinfo=UTC)


def _hex(*parts: object) -> str:
    return "0x" + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class _Block:
    number: int
    block_hash: str
    extrinsics: list[Landing] = field(default_factory=list)


class MemoryChain:
    """A `ChainClient` over in-memory state."""

    def __init__(
        self,
        *,
        payout_hotkey: str = "5PayoutHotkey",
        payout_coldkey: str = "5PayoutColdkey",
        base_fee_rao: int = 100_000,
        fee_per_transfer_rao: int = 10_000,
        seconds_per_block: int = 12,
        seed: int = 0,
    ) -> None:
        self.seed = seed
        self._payout_hotkey = payout_hotkey
        self._payout_coldkey = payout_coldkey
        self.base_fee_rao = base_fee_rao
        self.fee_per_transfer_rao = fee_per_transfer_rao
        self.seconds_per_block = seconds_per_block
        self.stakes: dict[tuple[str, str, int], int] = {}
        self.owners: dict[str, str] = {}
        self.nonce = 0
        self.fees_paid_rao = 0
        self.blocks: list[_Block] = [_Block(0, _hex("block", seed, 0))]
        self._landed: dict[str, Landing] = {}
        self.submits = 0  # submit_batch calls that reached the node
        self.included = 0  # extrinsics included (successful or not)
        # faults
        self.node_down_calls = 0
        self.timeouts_before_landing = 0
        self.timeouts_after_landing = 0
        self.failing_dests: dict[str, int] = {}

    # --- setup ---------------------------------------------------------------------------------------------

    @property
    def payout_hotkey(self) -> str:
        return self._payout_hotkey

    @property
    def payout_coldkey(self) -> str:
        return self._payout_coldkey

    def fund(self, amount_rao: int) -> None:
        """Add alpha stake of the payout coldkey on the payout hotkey."""
        key = (self._payout_hotkey, self._payout_coldkey, NETUID)
        self.stakes[key] = self.stakes.get(key, 0) + amount_rao

    def set_owner(self, hotkey: str, coldkey: str) -> None:
        self.owners[hotkey] = coldkey

    def stake_of(self, coldkey: str, hotkey: str | None = None) -> int:
        """Alpha rao of `coldkey` on the payout hotkey (or `hotkey`), netuid 51; synchronous, for tests."""
        return self.stakes.get((hotkey or self._payout_hotkey, coldkey, NETUID), 0)

    def advance(self, blocks: int = 1) -> None:
        """Produce empty blocks."""
        for _ in range(blocks):
            self._new_block()

    # --- the port ------------------------------------------------------------------------------------------

    async def head(self) -> ChainHead:
        self._reach()
        top = self.blocks[-1]
        return ChainHead(top.number, top.block_hash, self._time(top.number))

    async def stake(self, hotkey: str, coldkey: str, netuid: int = NETUID) -> int:
        self._reach()
        return self.stakes.get((hotkey, coldkey, netuid), 0)

    async def hotkey_owners(self, hotkeys: Sequence[str]) -> Mapping[str, str | None]:
        self._reach()
        return {hk: self.owners.get(hk) for hk in hotkeys}

    async def next_nonce(self) -> int:
        self._reach()
        return self.nonce

    async def sign_batch(self, transfers: Sequence[Transfer], *, nonce: int) -> SignedBatch:
        self._reach()
        batch = tuple(transfers)
        era = self.blocks[-1].number
        calls = (f"{t.dest_coldkey}:{t.amount_rao}" for t in batch)
        digest = _hex("xt", self.seed, self._payout_coldkey, nonce, era, *calls)
        return SignedBatch(digest, nonce, batch, self._fee(len(batch)))

    async def submit_batch(self, signed: SignedBatch) -> SubmitResult:
        self._reach()
        self.submits += 1
        if signed.nonce < self.nonce:
            raise NonceConflict(f"stale nonce {signed.nonce} < {self.nonce}")
        if signed.nonce > self.nonce:
            raise NonceConflict(f"future nonce {signed.nonce} > {self.nonce}")
        if self.timeouts_before_landing > 0:
            self.timeouts_before_landing -= 1
            raise ChainTimeout("injected: timeout before landing")
        reason = self._dispatch_error(signed.transfers)
        block = self._new_block()
        self.nonce += 1
        self.included += 1
        self.fees_paid_rao += self._fee(len(signed.transfers))
        landing = Landing(signed.extrinsic_hash, block.block_hash, block.number, reason is None, reason)
        block.extrinsics.append(landing)
        self._landed[signed.extrinsic_hash] = landing
        if reason is not None:
            raise BatchFailed(
                reason,
                extrinsic_hash=signed.extrinsic_hash,
                block_hash=block.block_hash,
                block_number=block.number,
            )
        self._apply(signed.transfers)
        if self.timeouts_after_landing > 0:
            self.timeouts_after_landing -= 1
            raise ChainTimeout("injected: timeout after landing")
        return SubmitResult(signed.extrinsic_hash, block.block_hash, block.number, self._fee(len(signed.transfers)))

    async def find_extrinsic(
        self, extrinsic_hashes: Sequence[str], from_block: int, to_block: int
    ) -> Landing | None:
        self._reach()
        found = [
            landing
            for h in extrinsic_hashes
            if (landing := self._landed.get(h)) is not None and from_block <= landing.block_number <= to_block
        ]
        return min(found, key=lambda landing: landing.block_number) if found else None

    # --- internals -----------------------------------------------------------------------------------------

    def _reach(self) -> None:
        if self.node_down_calls > 0:
            self.node_down_calls -= 1
            raise NodeDown("injected: node down")

    def _fee(self, n: int) -> int:
        return self.base_fee_rao + self.fee_per_transfer_rao * n

    def _time(self, number: int) -> datetime:
        return GENESIS + timedelta(seconds=number * self.seconds_per_block)

    def _new_block(self) -> _Block:
        number = self.blocks[-1].number + 1
        block = _Block(number, _hex("block", self.seed, number))
        self.blocks.append(block)
        return block

    def _dispatch_error(self, transfers: tuple[Transfer, ...]) -> str | None:
        for t in transfers:
            if self.failing_dests.get(t.dest_coldkey, 0) > 0:
                # every failing dest of the batch uses up one injected failure
                for u in transfers:
                    if self.failing_dests.get(u.dest_coldkey, 0) > 0:
                        self.failing_dests[u.dest_coldkey] -= 1
                return f"transfer to {t.dest_coldkey} failed (injected)"
        for t in transfers:
            if t.amount_rao <= 0:
                return f"transfer to {t.dest_coldkey}: AmountTooLow"
        total = sum(t.amount_rao for t in transfers)
        if total > self.stake_of(self._payout_coldkey):
            return "NotEnoughStakeToWithdraw"
        return None

    def _apply(self, transfers: tuple[Transfer, ...]) -> None:
        src = (self._payout_hotkey, self._payout_coldkey, NETUID)
        for t in transfers:
            self.stakes[src] -= t.amount_rao
            dst = (self._payout_hotkey, t.dest_coldkey, NETUID)
            self.stakes[dst] = self.stakes.get(dst, 0) + t.amount_rao
