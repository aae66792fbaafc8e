"""Wallet and endpoint configuration: from the operator's environment, dry-run without it, no secret shown."""

from __future__ import annotations

from pathlib import Path

import bittensor as bt
import pytest
from structlog.testing import capture_logs

from services.settlement.chain_bittensor import BittensorChain
from services.settlement.wallet import SettlementChainSettings, announce, chain_from_settings, load_wallet

SECRET = "correct-horse-battery-staple"


def test_without_configuration_settlement_is_dry_run_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENDPOINT", "WALLET_PATH", "WALLET_NAME", "PAYOUT_HOTKEY", "WALLET_PASSWORD"):
        monkeypatch.delenv(f"SN51_SETTLEMENT_{name}", raising=False)
    settings = SettlementChainSettings()
    assert settings.dry_run
    assert "SN51_SETTLEMENT_ENDPOINT" in settings.missing
    with capture_logs() as logs:
        announce(settings)
    [entry] = logs
    assert entry["event"] == "settlement.dry_run" and entry["log_level"] == "warning"
    assert entry["mode"] == "dry_run" and "not sent" in entry["reason"]
    with capture_logs() as logs:
        assert chain_from_settings(settings) is None
    assert [e["event"] for e in logs] == ["settlement.dry_run"]


def test_the_password_never_shows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SN51_SETTLEMENT_ENDPOINT", "ws://127.0.0.1:9944")
    monkeypatch.setenv("SN51_SETTLEMENT_WALLET_PATH", str(tmp_path))
    monkeypatch.setenv("SN51_SETTLEMENT_WALLET_NAME", "payout")
    monkeypatch.setenv("SN51_SETTLEMENT_PAYOUT_HOTKEY", "5Hotkey")
    monkeypatch.setenv("SN51_SETTLEMENT_WALLET_PASSWORD", SECRET)
    settings = SettlementChainSettings()
    assert not settings.dry_run
    assert settings.wallet_password is not None and settings.wallet_password.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in str(settings.describe()) and settings.describe()["wallet_password"] == "set"
    assert SECRET not in settings.model_dump_json()
    with capture_logs() as logs:
        announce(settings)
    assert logs[0]["event"] == "settlement.live" and SECRET not in str(logs)


def test_load_wallet_unlocks_the_coldkey_and_logs_only_its_address(tmp_path: Path) -> None:
    created = bt.Wallet("payout", path=str(tmp_path))
    mnemonics: list[str] = []
    created.create_new_coldkey(use_password=False, suppress=True, on_mnemonic=mnemonics.append)
    settings = SettlementChainSettings(
        endpoint="ws://127.0.0.1:9944", wallet_path=str(tmp_path), wallet_name="payout", payout_hotkey="5Hk"
    )
    with capture_logs() as logs:
        wallet = load_wallet(settings)
    address = created.coldkeypub.ss58_address
    assert wallet.coldkey.ss58_address == address
    assert logs[0]["coldkey"] == address
    chain = chain_from_settings(settings)  # never connected: the client is lazy
    assert isinstance(chain, BittensorChain) and chain.client.endpoint == "ws://127.0.0.1:9944"
    for text in (str(logs), repr(chain), repr(wallet)):
        assert mnemonics[0] not in text and mnemonics[0].split()[0] not in text.split()
    assert chain.payout_coldkey == address


def test_load_wallet_refuses_without_a_configured_wallet() -> None:
    with pytest.raises(ValueError, match="no payout wallet"):
        load_wallet(SettlementChainSettings(endpoint="ws://127.0.0.1:9944"))
