"""The collateral watcher: the contract's logs, once confirmed, become `collateral.*` events.

It reads `eth_getLogs` in batched block ranges, only up to `head - confirmations` (a block is acted on once
`confirmations` blocks sit on top of it), and commits each batch together with its checkpoint (the last block
read: number and hash) through a `WatchStore`, atomically. On start it resumes from the stored checkpoint.

Reorgs: before reading on, it checks that the checkpoint's hash is still canonical. If not, it walks back over
the anchors the store kept (checkpoints and the blocks its logs came from) to the newest one still canonical,
asks the store to retract every log above it, and rereads from there.

Retraction, as represented here: a retracted log's event is not re-emitted and no other event is published
(an event already in the log stays a fact of the log); the store marks its row `retracted` in the projection,
which the read API shows and which drops it from the per-executor totals. If the same log (same
`chain_id:tx_hash:log_index`) is read again on the new chain, its row is un-retracted (with its new block)
and nothing is published again.

RPC failures (node down, timeouts, a store error) are logged and retried with exponential backoff; the
checkpoint makes a retry reread at most one uncommitted batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import aiohttp
import structlog
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import FilterParams

from schemas.envelope import Event
from schemas.events import CollateralLog
from services.collateral import chain
from services.runtime import metrics

log = structlog.get_logger("collateral.watcher")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    block_number: int
    block_hash: str


@dataclass(frozen=True, slots=True)
class ObservedLog:
    """One confirmed log as its event, with the hash of the block it was read in."""

    event: Event
    block_hash: str

    @property
    def data(self) -> CollateralLog:
        assert isinstance(self.event.data, CollateralLog)
        return self.event.data


@dataclass(frozen=True, slots=True)
class ReclaimInfo:
    executor_id: str
    miner_evm_address: str
    amount_wei: int


class WatchStore(Protocol):
    async def checkpoint(self) -> Checkpoint | None: ...

    async def anchors(self) -> list[Checkpoint]:
        """Known (number, hash) pairs at or below the checkpoint, newest first."""
        ...

    async def reclaim(self, reclaim_request_id: int) -> ReclaimInfo | None: ...

    async def commit(self, logs: list[ObservedLog], checkpoint: Checkpoint) -> list[Event]:
        """Store the logs (publishing the new ones), their blocks as anchors and the checkpoint, atomically.
        Returns the events newly published (a log already stored is not published again)."""
        ...

    async def rewind(self, anchor: Checkpoint | None) -> list[str]:
        """Retract every log above `anchor` (all of them for None), drop the anchors above it and make it the
        checkpoint, atomically. Returns the retracted event ids."""
        ...


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    rpc_url: str
    contract_address: str
    chain_id: int
    confirmations: int = 12
    start_block: int = 0
    batch_blocks: int = 2000
    poll_seconds: float = 2.0
    backoff_min_seconds: float = 0.2
    backoff_max_seconds: float = 30.0
    rpc_timeout_seconds: float = 10.0


def make_web3(url: str, timeout: float) -> AsyncWeb3[Any]:
    # No provider-level retries: the watcher's own backoff is the one retry policy.
    provider = AsyncHTTPProvider(url, request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)},
                                 exception_retry_configuration=None)
    return AsyncWeb3(provider)


def to_event(chain_id: int, name: str, args: Any, raw: Any, block_time: datetime,
             reclaim: ReclaimInfo | None = None) -> Event:
    """One decoded contract log as its `collateral.*` event (id `chain_id:tx_hash:log_index`)."""
    tx_hash = chain.hex0x(raw["transactionHash"]).lower()
    index = int(raw["logIndex"])
    rid = int(args["reclaimRequestId"]) if "reclaimRequestId" in args else None
    if name == "Denied":
        if reclaim is None:
            raise LookupError(f"reclaim request {rid} unknown for the Denied log in {tx_hash}")
        executor_id, miner, amount = reclaim.executor_id, reclaim.miner_evm_address, reclaim.amount_wei
    else:
        executor_id = chain.executor_uuid(args["executorId"])
        miner, amount = chain.checksum(args["miner"]), int(args["amount"])
    data = CollateralLog(
        executor_id=executor_id, miner_evm_address=miner, amount_wei=amount, url=args.get("url"),
        chain_id=chain_id, tx_hash=tx_hash, block_number=int(raw["blockNumber"]), log_index=index,
        reclaim_request_id=rid,
    )
    return Event(id=f"{chain_id}:{tx_hash}:{index}", type=chain.EVENT_TYPES[name], source="collateral",
                 time=block_time, key=executor_id, causation_id=None, data=data)


class Watcher:
    def __init__(self, config: WatcherConfig, store: WatchStore, w3: AsyncWeb3[Any] | None = None) -> None:
        self.config = config
        self.store = store
        self._owns_w3 = w3 is None
        self.w3 = w3 or make_web3(config.rpc_url, config.rpc_timeout_seconds)
        self.address = chain.checksum(config.contract_address)
        self.contract = self.w3.eth.contract(address=self.address, abi=chain.ABI)  # type: ignore[call-overload]
        self._chain_checked = False

    async def close(self) -> None:
        """Close the HTTP session of a web3 client this watcher made itself."""
        if self._owns_w3:
            await self.w3.provider.disconnect()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; survives RPC and store failures with exponential backoff."""
        try:
            await self._loop(stop)
        finally:
            await self.close()

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = self.config.backoff_min_seconds
        while not stop.is_set():
            try:
                progressed = await self.step()
                backoff = self.config.backoff_min_seconds
                delay = 0.0 if progressed else self.config.poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the node or the store is away: wait and retry from the checkpoint
                log.warning("collateral.watcher.retry", error=type(exc).__name__, detail=str(exc)[:200],
                            backoff_seconds=backoff)
                delay, backoff = backoff, min(backoff * 2, self.config.backoff_max_seconds)
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def step(self) -> bool:
        """Read at most one batch; True if it did something (read, or rewound after a reorg)."""
        if not self._chain_checked:
            actual = await self.w3.eth.chain_id
            if actual != self.config.chain_id:
                raise RuntimeError(f"the RPC serves chain {actual}, configured {self.config.chain_id}")
            self._chain_checked = True
        head = await self.w3.eth.block_number
        metrics.watcher_saw_head("collateral", head)  # sn51_watcher_head_block / _lag_blocks (issue 7)
        safe = head - self.config.confirmations
        cp = await self.store.checkpoint()
        if cp is not None and await self._hash(cp.block_number) != cp.block_hash:
            await self._rewind(cp)
            return True
        start = cp.block_number + 1 if cp is not None else self.config.start_block
        if start > safe:
            return False
        end = min(safe, start + self.config.batch_blocks - 1)
        end_hash = await self._hash(end)
        raw_logs = await self.w3.eth.get_logs(cast(FilterParams, {
            "address": self.address, "fromBlock": start, "toBlock": end,
            "topics": [list(chain.TOPICS)],
        }))
        if end_hash is None or await self._hash(end) != end_hash:  # the range changed under us: read again
            return True
        observed = await self._observe(raw_logs)
        published = await self.store.commit(observed, Checkpoint(end, end_hash))
        for e in published:
            log.info("collateral.log", event_id=e.id, event_type=e.type, block=e.data.block_number)  # type: ignore[attr-defined]
        return True

    async def _hash(self, number: int) -> str | None:
        try:
            block = await self.w3.eth.get_block(number)
        except Exception as exc:
            if "not found" in str(exc).lower():
                return None
            raise
        return chain.hex0x(block["hash"]).lower()

    async def _rewind(self, cp: Checkpoint) -> None:
        anchor: Checkpoint | None = None
        for a in await self.store.anchors():
            if a.block_number < cp.block_number and await self._hash(a.block_number) == a.block_hash:
                anchor = a
                break
        retracted = await self.store.rewind(anchor)
        log.warning("collateral.reorg", checkpoint=cp.block_number,
                    anchor=None if anchor is None else anchor.block_number, retracted=retracted)

    async def _observe(self, raw_logs: list[Any]) -> list[ObservedLog]:
        times = await self._block_times(raw_logs)
        batch_reclaims: dict[int, ReclaimInfo] = {}
        out: list[ObservedLog] = []
        for raw in sorted(raw_logs, key=lambda r: (int(r["blockNumber"]), int(r["logIndex"]))):
            topic0 = chain.hex0x(raw["topics"][0]).lower()
            name = chain.TOPICS[topic0]
            args = dict(getattr(self.contract.events, name)().process_log(raw)["args"])
            reclaim = None
            if name == "ReclaimProcessStarted":
                batch_reclaims[int(args["reclaimRequestId"])] = ReclaimInfo(
                    chain.executor_uuid(args["executorId"]), chain.checksum(args["miner"]), int(args["amount"]))
            elif name == "Denied":
                reclaim = await self._reclaim(int(args["reclaimRequestId"]), int(raw["blockNumber"]),
                                              batch_reclaims)
            event = to_event(self.config.chain_id, name, args, raw, times[int(raw["blockNumber"])], reclaim)
            out.append(ObservedLog(event, chain.hex0x(raw["blockHash"]).lower()))
        return out

    async def _reclaim(self, rid: int, block: int, batch: dict[int, ReclaimInfo]) -> ReclaimInfo | None:
        known = batch.get(rid) or await self.store.reclaim(rid)
        if known is not None:
            return known
        # started before the watcher's start block: ask the contract as of the block before the denial
        executor, miner, amount, _ = await self.contract.functions.reclaims(rid).call(block_identifier=block - 1)
        return ReclaimInfo(chain.executor_uuid(executor), chain.checksum(miner), int(amount))

    async def _block_times(self, raw_logs: list[Any]) -> dict[int, datetime]:
        times: dict[int, datetime] = {}
        missing: set[int] = set()
        for raw in raw_logs:
            number = int(raw["blockNumber"])
            stamp = raw.get("blockTimestamp")
            if stamp is not None:
                times[number] = datetime.fromtimestamp(int(stamp, 16) if isinstance(stamp, str) else int(stamp), UTC)
            else:
                missing.add(number)
        for number in sorted(missing - times.keys()):
            block = await self.w3.eth.get_block(number)
            times[number] = datetime.fromtimestamp(int(block["timestamp"]), UTC)
        return times
