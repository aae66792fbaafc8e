"""The settlement service process: `sn51 service settlement` runs `SPEC` with the shared runtime.

- The consumer folds `day.closed`, `epoch.closed` and `params.updated` into `SettlementCore`; the projection
  (`store.project`) records each `payout.planned` (state planned) and `payout.deferred` in the same
  transaction as the inbox row, and NOTIFYs the executor.
- The `payout_executor` task drives planned payouts onto the chain with the two-phase `Executor` every
  `SN51_PAYOUT_INTERVAL_SECONDS` (and at once when a plan commits), storing every transition through
  `PgExecutionStore` (payout rows + outbox events in one transaction).

The chain (`SN51_CHAIN`): `live` (default) uses `wallet.chain_from_settings(SettlementChainSettings())`, which
is None, a dry run, when the operator configured no endpoint, wallet or payout hotkey: the plan is stored,
nothing is sent, and the log says so. `memory` uses the in-memory chain persisted in PostgreSQL
(`chain_memory_pg`), funded from `SN51_MEMORY_CHAIN_STAKE_RAO`, whose hotkey owners are registered from what
has been planned (so owner checks pass, except hotkeys listed in `SN51_MEMORY_CHAIN_FOREIGN_HOTKEYS`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import asdict
from typing import Literal

import asyncpg
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.db import schema_name, set_state
from services.runtime.service import BackgroundTask, RuntimeContext, ServiceSpec
from services.settlement.api import EXECUTOR_STATE, router
from services.settlement.chain import ChainClient
from services.settlement.chain_memory_pg import MemoryChainSettings, PersistentMemoryChain
from services.settlement.core import SettlementCore
from services.settlement.execution import PayoutRecord, PayoutState
from services.settlement.executor import Executor, ExecutorConfig
from services.settlement.store import MIGRATIONS, PLANNED_CHANNEL, PgExecutionStore, project
from services.settlement.wallet import SettlementChainSettings, chain_from_settings

API_PORT = 8153


class PayoutSettings(BaseSettings):
    """`SN51_CHAIN`, `SN51_FAULT`, `SN51_PAYOUT_*`: how the payout executor runs."""

    model_config = SettingsConfigDict(env_prefix="SN51_", extra="ignore")

    chain: Literal["live", "memory"] = "live"
    fault: Literal["crash_after_submit", "pause_after_submit"] | None = None  # memory chain only (tests)
    payout_interval_seconds: float = 1.0
    payout_backoff_seconds: float = 2.0
    payout_max_attempts: int = 3
    payout_max_batch: int | None = None  # None: the planner's batches (params max_batch) as they are


def executor_config(settings: PayoutSettings, chain_settings: SettlementChainSettings,
                    pending: list[PayoutRecord]) -> ExecutorConfig:
    largest = max(Counter((r.planned.run_id, r.planned.batch) for r in pending).values(), default=1)
    return ExecutorConfig(
        max_batch=settings.payout_max_batch or largest,
        daily_ceiling_rao=chain_settings.daily_ceiling_rao,
        max_attempts=settings.payout_max_attempts,
        backoff_seconds=settings.payout_backoff_seconds,
    )


async def open_chain(settings: PayoutSettings, pool: asyncpg.Pool,
                     memory: MemoryChainSettings | None = None) -> ChainClient | None:
    if settings.chain == "memory":
        return await PersistentMemoryChain(pool, memory or MemoryChainSettings(), settings.fault).load()
    return chain_from_settings(SettlementChainSettings())


def payout_executor_task(settings: PayoutSettings | None = None,
                         memory: MemoryChainSettings | None = None) -> BackgroundTask:
    """The executor loop; settings from the environment unless given (tests)."""

    async def payout_executor(ctx: RuntimeContext) -> None:
        config = settings or PayoutSettings()
        chain_settings = SettlementChainSettings()
        chain = await open_chain(config, ctx.pool, memory)
        mode = "dry_run" if chain is None else config.chain
        async with ctx.pool.acquire() as conn:
            missing = chain_settings.missing if chain is None else []
            await set_state(conn, EXECUTOR_STATE, {"mode": mode, "missing": missing, "announced": 0})
        store = PgExecutionStore(ctx.pool, ctx.settings.topic_prefix, ctx.wake_relay)
        wake = asyncio.Event()
        listener = await asyncpg.connect(ctx.settings.database_url)
        announced: set[str] = set()
        try:
            await listener.add_listener(PLANNED_CHANNEL + schema_name(ctx.settings.service), lambda *_: wake.set())
            ctx.log.info("settlement.executor.started", mode=mode, interval_seconds=config.payout_interval_seconds)
            while True:
                wake.clear()
                await execute_once(ctx, config, chain_settings, chain, store, announced)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), config.payout_interval_seconds)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    return payout_executor


async def execute_once(ctx: RuntimeContext, config: PayoutSettings, chain_settings: SettlementChainSettings,
                       chain: ChainClient | None, store: PgExecutionStore, announced: set[str]) -> None:
    """One round: finish open batches, then pay what is planned (nothing to do: no chain call at all)."""
    pending = await store.payouts_in(PayoutState.PLANNED)
    if chain is None:
        new = [r for r in pending if r.payout_id not in announced]
        if new:  # logs the dry run (what would be sent) once per newly planned payouts
            await Executor(None, store, executor_config(config, chain_settings, new)).run([r.planned for r in new])
            announced.update(r.payout_id for r in new)
            async with ctx.pool.acquire() as conn:
                await set_state(conn, EXECUTOR_STATE, {"mode": "dry_run", "missing": chain_settings.missing,
                                                       "announced": len(announced)})
        return
    if not pending and not await store.open_batches():
        return
    if isinstance(chain, PersistentMemoryChain):
        await chain.own({hk: r.planned.coldkey for r in pending for hk in r.planned.hotkeys})
    executor = Executor(chain, store, executor_config(config, chain_settings, pending))
    report = await executor.run([r.planned for r in pending])
    ctx.log.info("settlement.executor.round", **asdict(report))


def make_spec(name: str = "settlement", settings: PayoutSettings | None = None,
              memory: MemoryChainSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        core_factory=SettlementCore,
        migrations=MIGRATIONS,
        project=project,
        router=router,
        tasks=[payout_executor_task(settings, memory)],
        api_port=API_PORT,
    )


SPEC = make_spec()
