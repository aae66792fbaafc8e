"""`ChainClient` on the bittensor 11 SDK.

A payout batch is the SDK's own intents: `bt.Batch([bt.TransferStake(...), ...])` (composed as
`Utility.batch_all` of `SubtensorModule.transfer_stake`, amounts in alpha rao on netuid 51), planned with
`client.plan` (composition, fee, policy). It is then signed with an explicit nonce through the client's
substrate (`sign_extrinsic`) so the extrinsic hash is known, and stored by the executor, before
`submit_signed` sends it with inclusion and finalization. (`client.execute` would pick the nonce itself and
never tell the hash, which is what a crash between sending and recording needs.)

The substrate is the test seam: `BittensorChain.connect(endpoint, ..., substrate=fake)`. Without one the
client is pinned to the one explicit endpoint: empty fallback and archive lists, never a public pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import bittensor as bt
from bittensor._transport.contract import SignedExtrinsic
from bittensor.signing import public_view, resolve_signer

from services.runtime.redact import redact_url
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

T = TypeVar("T")

_CONNECTION_ERRORS = (bt.RpcConnectionError, bt.ConnectionNotReady, OSError, TimeoutError)
# transaction-pool refusals that mean "this nonce is taken": the batch may have landed under it
_NONCE_WORDS = ("stale", "outdated", "priority is too low", "already imported", "in the future")


class BittensorChain:
    def __init__(
        self,
        client: bt.Client,
        wallet: Any,
        *,
        payout_hotkey: str,
        netuid: int = NETUID,
        era_period_blocks: int = 128,
        submit_timeout_seconds: float = 180.0,
    ) -> None:
        self.client = client
        self._substrate = client._substrate  # the seam the client itself uses; sign and submit go through it
        self._wallet = wallet
        self._payout_hotkey = payout_hotkey
        self._payout_coldkey = str(public_view(wallet, "coldkey").ss58_address)
        self.netuid = netuid
        self.era_period_blocks = era_period_blocks
        self.submit_timeout_seconds = submit_timeout_seconds

    @classmethod
    def connect(
        cls, endpoint: str, wallet: Any, *, payout_hotkey: str, substrate: Any = None, **options: Any
    ) -> BittensorChain:
        """A client pinned to `endpoint`: no fallback, no archive, no public default."""
        if not endpoint.startswith(("ws://", "wss://")):
            raise ValueError(f"an explicit ws:// or wss:// endpoint is required, got {redact_url(endpoint)!r}")
        client = bt.Client(endpoint, fallback_endpoints=[], archive_endpoints=[], substrate=substrate)
        return cls(client, wallet, payout_hotkey=payout_hotkey, **options)

    def __repr__(self) -> str:
        return (
            f"BittensorChain(endpoint={redact_url(self.client.endpoint)!r}, payout_hotkey={self._payout_hotkey!r}, "
            f"payout_coldkey={self._payout_coldkey!r})"
        )

    @property
    def payout_hotkey(self) -> str:
        return self._payout_hotkey

    @property
    def payout_coldkey(self) -> str:
        return self._payout_coldkey

    # --- reads ---------------------------------------------------------------------------------------------

    async def head(self) -> ChainHead:
        number = await self._read(self.client.block())
        block_hash = await self._read(self._substrate.block_hash(number))
        try:
            time = await self._read(self.client.timestamp(number))
        except (TypeError, ValueError):  # no readable Timestamp.Now at that block
            time = datetime.fromtimestamp(0, tz=UTC)
        return ChainHead(number, str(block_hash), time)

    async def stake(self, hotkey: str, coldkey: str, netuid: int = NETUID) -> int:
        balance = await self._read(self.client.staking.get(coldkey, hotkey, netuid))
        return int(balance.rao)

    async def hotkey_owners(self, hotkeys: Sequence[str]) -> Mapping[str, str | None]:
        keys = list(hotkeys)
        if not keys:
            return {}
        values = await self._read(
            self.client.query_batch(("SubtensorModule", "Owner"), [[hk] for hk in keys])
        )
        return {hk: (str(v) if v else None) for hk, v in zip(keys, values, strict=True)}

    async def next_nonce(self) -> int:
        return int(await self._read(self._substrate.account_next_index(self._payout_coldkey)))

    # --- writes --------------------------------------------------------------------------------------------

    def batch_intent(self, transfers: Sequence[Transfer]) -> Any:
        """The SDK intent of one payout batch: an atomic `batch_all` of alpha `transfer_stake`s."""
        return bt.Batch(
            [
                bt.TransferStake(
                    dest_coldkey_ss58=t.dest_coldkey,
                    hotkey_ss58=self._payout_hotkey,
                    origin_netuid=self.netuid,
                    dest_netuid=self.netuid,
                    amount_alpha=bt.Balance.from_rao(t.amount_rao, self.netuid),
                )
                for t in transfers
            ]
        )

    async def sign_batch(self, transfers: Sequence[Transfer], *, nonce: int) -> SignedBatch:
        if not transfers:
            raise ValueError("empty batch")
        plan = await self._read(self.client.plan(self.batch_intent(transfers), self._wallet))
        if not plan.ok:
            raise BatchFailed(f"policy: {'; '.join(plan.violations)}")
        keypair = resolve_signer(self._wallet, "coldkey")
        data, extrinsic_hash = await self._read(
            self._substrate.sign_extrinsic(plan.call, keypair, nonce=nonce, period=self.era_period_blocks)
        )
        fee = int(plan.fee.rao) if plan.fee is not None else None
        return SignedBatch(str(extrinsic_hash), nonce, tuple(transfers), fee, SignedExtrinsic(data, extrinsic_hash))

    async def submit_batch(self, signed: SignedBatch) -> SubmitResult:
        if not isinstance(signed.payload, SignedExtrinsic):
            raise TypeError("submit_batch needs a batch signed by this adapter")
        keypair = resolve_signer(self._wallet, "coldkey")
        try:
            result = await asyncio.wait_for(
                self._substrate.submit_signed(
                    signed.payload, keypair, wait_for_inclusion=True, wait_for_finalization=True
                ),
                timeout=self.submit_timeout_seconds,
            )
        except TimeoutError as e:
            raise ChainTimeout(f"no inclusion report after {self.submit_timeout_seconds}s") from e
        except _CONNECTION_ERRORS as e:
            raise NodeDown(str(e) or type(e).__name__) from e
        except bt.BittensorError as e:  # the transport failed mid-way: maybe sent
            raise ChainTimeout(f"submit interrupted: {e}") from e
        block_number = _block_number(result.extrinsic_id)
        if result.success:
            if result.block_hash is None or block_number is None:
                raise ChainTimeout("success reported without an including block")
            fee = int(result.fee.rao) if result.fee is not None else None
            return SubmitResult(signed.extrinsic_hash, result.block_hash, block_number, fee)
        reason = _reason(result)
        if result.block_hash is not None:  # included, dispatch failed: batch_all reverted every transfer
            raise BatchFailed(
                reason, extrinsic_hash=signed.extrinsic_hash, block_hash=result.block_hash, block_number=block_number
            )
        if any(word in reason.lower() for word in _NONCE_WORDS):
            raise NonceConflict(reason)
        raise BatchFailed(reason)

    async def find_extrinsic(
        self, extrinsic_hashes: Sequence[str], from_block: int, to_block: int
    ) -> Landing | None:
        for number in range(from_block, to_block + 1):
            block_hash = str(await self._read(self._substrate.block_hash(number)))
            for h in extrinsic_hashes:
                found = await self._read(self._substrate.find_extrinsic(h, block_hash))
                if found is not None:
                    reason = None if found.success else _reason(found)
                    return Landing(h, block_hash, number, bool(found.success), reason)
        return None

    async def _read(self, pending: Awaitable[T]) -> T:
        try:
            return await pending
        except _CONNECTION_ERRORS as e:
            raise NodeDown(str(e) or type(e).__name__) from e


def _block_number(extrinsic_id: str | None) -> int | None:
    """"4521-0003" -> 4521."""
    if not extrinsic_id or "-" not in extrinsic_id:
        return None
    head = extrinsic_id.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _reason(result: Any) -> str:
    error = getattr(result, "error", None)
    name = getattr(error, "name", None) if error is not None else None
    message = str(getattr(result, "message", "") or "failed")
    return f"{name}: {message}" if name and name not in message else message
