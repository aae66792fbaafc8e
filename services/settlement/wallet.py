"""The payout wallet and chain endpoint, as the operator configures them; dry-run when they are not.

Everything comes from the environment (prefix `SN51_SETTLEMENT_`) or arguments, never from defaults that
reach a public network: without an explicit endpoint, a wallet and the payout hotkey, settlement plans and
records but sends nothing, and says so. The coldkey password is a `SecretStr`: it shows as `**********` in
reprs and is never logged; the unlocked keypair is kept inside the bittensor wallet object only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.redact import redact_url

if TYPE_CHECKING:
    from services.settlement.chain_bittensor import BittensorChain

log = structlog.get_logger("settlement.wallet")


class SettlementChainSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SN51_SETTLEMENT_", extra="ignore")

    endpoint: str | None = None  # ws:// or wss:// of the subtensor node; no public fallback is ever used
    wallet_path: str | None = None  # the directory holding the wallet directories
    wallet_name: str | None = None
    wallet_password: SecretStr | None = None  # the coldkey keyfile's password, if it is encrypted
    payout_hotkey: str | None = None  # ss58 of the hotkey that holds the payout stake on netuid 51
    daily_ceiling_rao: int | None = None
    era_period_blocks: int = 128
    submit_timeout_seconds: float = 180.0

    @property
    def missing(self) -> list[str]:
        """What is not configured for live payouts (empty: live)."""
        names = ("endpoint", "wallet_path", "wallet_name", "payout_hotkey")
        return [f"SN51_SETTLEMENT_{n.upper()}" for n in names if not getattr(self, n)]

    @property
    def dry_run(self) -> bool:
        return bool(self.missing)

    def describe(self) -> dict[str, Any]:
        """A loggable summary: no secret in it."""
        return {
            "mode": "dry_run" if self.dry_run else "live",
            "missing": self.missing,
            "endpoint": redact_url(self.endpoint) if self.endpoint else None,  # credentials travel in URLs
            "wallet_path": self.wallet_path,
            "wallet_name": self.wallet_name,
            "wallet_password": "set" if self.wallet_password else "unset",
            "payout_hotkey": self.payout_hotkey,
            "daily_ceiling_rao": self.daily_ceiling_rao,
        }


def announce(settings: SettlementChainSettings) -> None:
    """Log once, at start, whether settlement will send anything."""
    if settings.dry_run:
        log.warning(
            "settlement.dry_run",
            reason="payout wallet, endpoint or payout hotkey not configured: payouts are planned, not sent",
            **settings.describe(),
        )
    else:
        log.info("settlement.live", **settings.describe())


def load_wallet(settings: SettlementChainSettings) -> Any:
    """The operator's bittensor wallet with its coldkey unlocked (raises when not configured)."""
    import bittensor as bt

    if not settings.wallet_path or not settings.wallet_name:
        raise ValueError("no payout wallet configured (SN51_SETTLEMENT_WALLET_PATH / _WALLET_NAME)")
    wallet = bt.Wallet(settings.wallet_name, path=settings.wallet_path)
    password = settings.wallet_password.get_secret_value() if settings.wallet_password else None
    wallet.get_coldkey(password)  # unlock once; the keypair stays inside the wallet object
    log.info("settlement.wallet.loaded", wallet_name=settings.wallet_name, coldkey=wallet.coldkeypub.ss58_address)
    return wallet


def chain_from_settings(settings: SettlementChainSettings, *, substrate: Any = None) -> BittensorChain | None:
    """The live chain client, or None (dry-run) when the operator configured no wallet, endpoint or payout
    hotkey. Says which, once. `substrate` is the SDK's test seam."""
    announce(settings)
    if settings.dry_run:
        return None
    from services.settlement.chain_bittensor import BittensorChain

    assert settings.endpoint is not None and settings.payout_hotkey is not None
    return BittensorChain.connect(
        settings.endpoint,
        load_wallet(settings),
        payout_hotkey=settings.payout_hotkey,
        substrate=substrate,
        era_period_blocks=settings.era_period_blocks,
        submit_timeout_seconds=settings.submit_timeout_seconds,
    )
