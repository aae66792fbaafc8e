"""The in-memory chain of the demo and the integration tests, made durable in PostgreSQL.

Choice (documented): a real chain keeps what landed whatever happens to the settlement process, so the
in-memory chain must too, or a crash between submit and record could not be told apart from "never sent".
Rebuilding it from the service's stored batches cannot work for exactly that case (the batch is still an
intent while the chain has applied it), so the chain's own state is persisted: after every submit that reached
the node (landed, reverted, or landed-then-timed-out) a snapshot (stakes, owners, nonce, blocks, extrinsics,
fees) is written to table `memory_chain` in the service's schema, in the chain's OWN transaction, before the
submit returns or raises. A process killed before that write simply never landed the extrinsic (same nonce
free, no stake moved); killed after it, the chain knows the landing and the executor finds it on restart.

Fault injection for tests (`SN51_FAULT`): `pause_after_submit` stops the process right after a landing is
persisted and before the executor can record it (the test then SIGKILLs it); `crash_after_submit` kills the
process itself at that point. Other faults come from `MemoryChainSettings` (timeouts, failing coldkeys).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import asyncpg
import structlog
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.settlement.chain import NETUID, Landing, SignedBatch, SubmitResult
from services.settlement.chain_memory import MemoryChain, _Block, _hex

log = structlog.get_logger("settlement.chain_memory")

TABLE_SQL = "CREATE TABLE IF NOT EXISTS memory_chain (id integer PRIMARY KEY CHECK (id = 1), state jsonb NOT NULL)"


class MemoryChainSettings(BaseSettings):
    """`SN51_MEMORY_CHAIN_*`: the in-memory chain used when `SN51_CHAIN=memory`."""

    model_config = SettingsConfigDict(env_prefix="SN51_MEMORY_CHAIN_", extra="ignore")

    stake_rao: int = 10**18  # alpha rao staked on the payout hotkey when the chain is created
    payout_hotkey: str = "5PayoutHotkey"
    payout_coldkey: str = "5PayoutColdkey"
    foreign_hotkeys: str = ""  # "hk:owner,hk2:owner2": hotkeys owned by someone else (owner-check tests)
    failing_coldkeys: str = ""  # "ck:n,...": the next n batches paying ck revert
    timeouts_after_landing: int = 0
    timeouts_before_landing: int = 0
    node_down_calls: int = 0

    def pairs(self, text: str) -> dict[str, str]:
        return dict(item.split(":", 1) for item in text.split(",") if item.strip())


def snapshot(chain: MemoryChain) -> dict[str, Any]:
    return {
        "seed": chain.seed,
        "payout_hotkey": chain.payout_hotkey,
        "payout_coldkey": chain.payout_coldkey,
        "stakes": [[hk, ck, netuid, amount] for (hk, ck, netuid), amount in sorted(chain.stakes.items())],
        "owners": chain.owners,
        "nonce": chain.nonce,
        "fees_paid_rao": chain.fees_paid_rao,
        "head": chain.blocks[-1].number,
        "extrinsics": [
            [x.extrinsic_hash, x.block_hash, x.block_number, x.success, x.reason]
            for b in chain.blocks for x in b.extrinsics
        ],
        "submits": chain.submits,
        "included": chain.included,
    }


def restore(chain: MemoryChain, state: dict[str, Any]) -> None:
    chain.stakes = {(hk, ck, int(n)): int(a) for hk, ck, n, a in state["stakes"]}
    chain.owners = dict(state["owners"])
    chain.nonce = int(state["nonce"])
    chain.fees_paid_rao = int(state["fees_paid_rao"])
    chain.submits = int(state["submits"])
    chain.included = int(state["included"])
    chain.blocks = [_Block(n, _hex("block", chain.seed, n)) for n in range(int(state["head"]) + 1)]
    chain._landed = {}
    for h, bh, number, success, reason in state["extrinsics"]:
        landing = Landing(h, bh, int(number), bool(success), reason)
        chain.blocks[landing.block_number].extrinsics.append(landing)
        chain._landed[h] = landing


class PersistentMemoryChain(MemoryChain):
    """A `MemoryChain` whose state survives the process: see the module docstring."""

    def __init__(self, pool: asyncpg.Pool, settings: MemoryChainSettings, fault: str | None = None) -> None:
        super().__init__(payout_hotkey=settings.payout_hotkey, payout_coldkey=settings.payout_coldkey)
        self.pool = pool
        self.fault = fault
        self.foreign = settings.pairs(settings.foreign_hotkeys)
        self.failing_dests = {ck: int(n) for ck, n in settings.pairs(settings.failing_coldkeys).items()}
        self.timeouts_after_landing = settings.timeouts_after_landing
        self.timeouts_before_landing = settings.timeouts_before_landing
        self.node_down_calls = settings.node_down_calls
        self._initial_stake = settings.stake_rao

    async def load(self) -> PersistentMemoryChain:
        """Restore the persisted chain, or create it funded (and persist it)."""
        async with self.pool.acquire() as conn:
            await conn.execute(TABLE_SQL)
            raw = await conn.fetchval("SELECT state FROM memory_chain WHERE id = 1")
        if raw is None:
            self.fund(self._initial_stake)
            await self.save()
            log.info("settlement.memory_chain.created", stake_rao=self._initial_stake)
        else:
            restore(self, json.loads(raw))
            log.info("settlement.memory_chain.restored", head=self.blocks[-1].number, nonce=self.nonce)
        for hk, owner in self.foreign.items():
            self.owners[hk] = owner
        return self

    async def save(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO memory_chain (id, state) VALUES (1, $1::jsonb)
                   ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state""",
                json.dumps(snapshot(self)),
            )

    async def own(self, owners: dict[str, str]) -> None:
        """Register hotkey owners (the demo's chain knows what providers registered); foreign ones stay."""
        changed = False
        for hk, ck in owners.items():
            if hk not in self.owners:
                self.owners[hk] = ck
                changed = True
        if changed:
            await self.save()

    async def submit_batch(self, signed: SignedBatch) -> SubmitResult:
        included = self.included
        try:
            return await super().submit_batch(signed)
        finally:
            if self.included != included:
                await self.save()  # the chain's own commit: what landed stays landed
                await self._fault_after_submit(signed)

    async def _fault_after_submit(self, signed: SignedBatch) -> None:
        if self.fault == "crash_after_submit":
            log.warning("settlement.fault.crash_after_submit", extrinsic_hash=signed.extrinsic_hash)
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault == "pause_after_submit":
            log.warning("settlement.fault.pause_after_submit", extrinsic_hash=signed.extrinsic_hash)
            await asyncio.Event().wait()  # until the process is killed


async def stored_state(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """The persisted chain state (search_path: the service's schema), for tests and the demo."""
    if not await conn.fetchval("SELECT to_regclass('memory_chain') IS NOT NULL"):
        return None
    raw = await conn.fetchval("SELECT state FROM memory_chain WHERE id = 1")
    return None if raw is None else dict(json.loads(raw))


def stakes_on(state: dict[str, Any], hotkey: str) -> dict[str, int]:
    """Alpha rao per coldkey staked on `hotkey` (netuid 51) in a persisted state."""
    return {ck: int(a) for hk, ck, n, a in state["stakes"] if hk == hotkey and int(n) == NETUID}
