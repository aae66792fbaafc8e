"""The collateral service process (`sn51 service collateral`): the core on the shared runtime, plus the
watcher and the trustee as background tasks.

Settings (environment, besides the runtime's `DATABASE_URL`, `KAFKA_BOOTSTRAP`, `SN51_*`):
`SN51_COLLATERAL_RPC_URL`, `SN51_COLLATERAL_CONTRACT_ADDRESS`, `SN51_COLLATERAL_CHAIN_ID` (964 mainnet, 945
testnet), `SN51_COLLATERAL_CONFIRMATIONS`, `SN51_COLLATERAL_START_BLOCK` (the deployment block),
`SN51_COLLATERAL_BATCH_BLOCKS`, `SN51_COLLATERAL_POLL_SECONDS`; the trustee key from `SN51_TRUSTEE_KEY_FILE`
or `SN51_TRUSTEE_KEY`. Without an RPC URL and contract the watcher is off; without a key the trustee is off;
both say so in the log and the rest of the service runs.
"""

from __future__ import annotations

import asyncio

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.collateral.api import router
from services.collateral.core import CollateralCore
from services.collateral.store import MIGRATIONS, PgStore, project
from services.collateral.trustee import Trustee, load_key
from services.collateral.watcher import Watcher, WatcherConfig, make_web3
from services.runtime.service import RuntimeContext, ServiceSpec


class CollateralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SN51_COLLATERAL_", extra="ignore")

    rpc_url: str | None = None
    contract_address: str | None = None
    chain_id: int = 964
    confirmations: int = 12
    start_block: int = 0
    batch_blocks: int = 2000
    poll_seconds: float = 2.0
    rpc_timeout_seconds: float = 10.0

    def watcher_config(self) -> WatcherConfig:
        assert self.rpc_url is not None and self.contract_address is not None
        return WatcherConfig(
            rpc_url=self.rpc_url, contract_address=self.contract_address, chain_id=self.chain_id,
            confirmations=self.confirmations, start_block=self.start_block, batch_blocks=self.batch_blocks,
            poll_seconds=self.poll_seconds, rpc_timeout_seconds=self.rpc_timeout_seconds,
        )


def _store(ctx: RuntimeContext, s: CollateralSettings) -> PgStore:
    assert s.contract_address is not None
    return PgStore(ctx.pool, s.chain_id, s.contract_address, topic_prefix=ctx.settings.topic_prefix,
                   on_publish=ctx.wake_relay)


async def watch(ctx: RuntimeContext) -> None:
    s = CollateralSettings()
    if not s.rpc_url or not s.contract_address:
        ctx.log.warning("collateral.watcher.off",
                        reason="set SN51_COLLATERAL_RPC_URL and SN51_COLLATERAL_CONTRACT_ADDRESS")
        return
    await Watcher(s.watcher_config(), _store(ctx, s)).run(asyncio.Event())


async def trust(ctx: RuntimeContext) -> None:
    s = CollateralSettings()
    account = load_key()
    if not s.rpc_url or not s.contract_address or account is None:
        ctx.log.warning("collateral.trustee.off",
                        reason="no trustee key (SN51_TRUSTEE_KEY_FILE or SN51_TRUSTEE_KEY)" if account is None
                        else "no RPC URL or contract address")
        return
    w3 = make_web3(s.rpc_url, s.rpc_timeout_seconds)
    trustee = Trustee(w3, s.contract_address, s.chain_id, account, _store(ctx, s),
                      confirmations=s.confirmations, poll_seconds=s.poll_seconds)
    try:
        await trustee.run(asyncio.Event())
    finally:
        await w3.provider.disconnect()


def new_core() -> CollateralCore:
    return CollateralCore(chain_id=CollateralSettings().chain_id)


SPEC = ServiceSpec(
    name="collateral",
    core_factory=new_core,
    migrations=MIGRATIONS,
    project=project,
    router=router,
    tasks=(watch, trust),
    api_port=8154,
)
