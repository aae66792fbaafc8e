"""The chain port of settlement: what the payout executor needs from subtensor, and nothing more.

Payouts are alpha `transfer_stake` calls from the payout hotkey (stake owned by the payout coldkey, which
signs) to each provider coldkey on netuid 51, several per extrinsic in one atomic `Utility.batch_all`.

Never pay twice rests on two chain facts the port exposes:
- a batch is signed with an explicit account nonce *before* it is sent, so its extrinsic hash is known and can
  be stored first (`sign_batch`), and at most one extrinsic per (signer, nonce) can ever be included;
- after a timeout or a crash, `find_extrinsic` (by the stored hashes, over a block range) and `next_nonce`
  tell whether the batch landed before anything is sent again.

Errors are typed: `OutcomeUnknown` (and its kinds `ChainTimeout`, `NodeDown`, `NonceConflict`) means "read the
chain before resending"; `BatchFailed` means the batch did not pay anyone (rejected, or included with a failed
dispatch, which `batch_all` reverts whole).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

NETUID = 51


@dataclass(frozen=True, slots=True)
class Transfer:
    """One `transfer_stake` of `amount_rao` alpha rao from the payout hotkey to `dest_coldkey` on netuid 51."""

    dest_coldkey: str
    amount_rao: int


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The best block and its time (the chain clock)."""

    number: int
    block_hash: str
    time: datetime


@dataclass(frozen=True, slots=True)
class SignedBatch:
    """A signed, not yet sent, batch extrinsic. `payload` is adapter-private (the signed bytes)."""

    extrinsic_hash: str
    nonce: int
    transfers: tuple[Transfer, ...]
    fee_rao: int | None = None
    payload: object = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A batch included with a successful dispatch (every transfer of it applied)."""

    extrinsic_hash: str
    block_hash: str
    block_number: int
    fee_rao: int | None = None


@dataclass(frozen=True, slots=True)
class Landing:
    """What the chain says about an extrinsic found in a block."""

    extrinsic_hash: str
    block_hash: str
    block_number: int
    success: bool
    reason: str | None = None


class ChainError(Exception):
    """Base of the port's errors."""


class OutcomeUnknown(ChainError):
    """The batch may or may not have landed: read the chain before sending anything again."""


class ChainTimeout(OutcomeUnknown):
    """Sent (or maybe sent), but no answer in time."""


class NodeDown(OutcomeUnknown):
    """The node could not be reached (for a read: nothing happened; for a submit: maybe sent)."""


class NonceConflict(OutcomeUnknown):
    """The node refused the nonce (stale, or the same nonce already in the pool)."""


class BatchFailed(ChainError):
    """The batch paid no one: rejected before inclusion, or included with a failed (reverted) dispatch."""

    def __init__(
        self,
        reason: str,
        *,
        extrinsic_hash: str | None = None,
        block_hash: str | None = None,
        block_number: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extrinsic_hash = extrinsic_hash
        self.block_hash = block_hash
        self.block_number = block_number


class ChainClient(Protocol):
    """Async port to subtensor for settlement. Implementations: `chain_memory`, `chain_bittensor`."""

    @property
    def payout_hotkey(self) -> str: ...

    @property
    def payout_coldkey(self) -> str: ...

    async def head(self) -> ChainHead:
        """The current best block."""
        ...

    async def stake(self, hotkey: str, coldkey: str, netuid: int = NETUID) -> int:
        """Alpha rao staked by `coldkey` on `hotkey` in `netuid`."""
        ...

    async def hotkey_owners(self, hotkeys: Sequence[str]) -> Mapping[str, str | None]:
        """The owner coldkey of each hotkey (None when unowned), read at one block."""
        ...

    async def next_nonce(self) -> int:
        """The payout coldkey's next account nonce (on chain, including its pool)."""
        ...

    async def sign_batch(self, transfers: Sequence[Transfer], *, nonce: int) -> SignedBatch:
        """Compose and sign the `batch_all` with `nonce`, without sending it: the hash is known now."""
        ...

    async def submit_batch(self, signed: SignedBatch) -> SubmitResult:
        """Send a signed batch and wait for inclusion and finalization.

        Raises `BatchFailed` (nobody paid), `ChainTimeout` / `NodeDown` / `NonceConflict` (outcome unknown).
        """
        ...

    async def find_extrinsic(
        self, extrinsic_hashes: Sequence[str], from_block: int, to_block: int
    ) -> Landing | None:
        """The first of `extrinsic_hashes` included in blocks `from_block..to_block`, or None."""
        ...
