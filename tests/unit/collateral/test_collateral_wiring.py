"""The collateral service's wiring and the pure chain conversions."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from schemas.topics import COLLATERAL, INPUT
from services.collateral import chain
from services.collateral.app import SPEC, CollateralSettings
from services.collateral.core import CollateralCore
from services.runtime.service import consumed_topics
from sn51.service import load_spec


def test_the_runtime_finds_the_spec_and_its_topics() -> None:
    assert load_spec("collateral") is SPEC
    core = SPEC.core_factory()
    assert isinstance(core, CollateralCore)
    assert {"rental.incident", "epoch.closed", "collateral.deposited", "collateral.slashed"} <= core.reads
    assert "collateral.slash_requested" not in core.reads  # its own decision is not folded back
    assert consumed_topics(SPEC, core) == sorted([INPUT, COLLATERAL])
    assert SPEC.migrations and SPEC.project is not None and SPEC.router is not None and len(SPEC.tasks) == 2


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SN51_COLLATERAL_RPC_URL", "http://node:9944")
    monkeypatch.setenv("SN51_COLLATERAL_CONTRACT_ADDRESS", "0x" + "11" * 20)
    monkeypatch.setenv("SN51_COLLATERAL_CHAIN_ID", "945")
    monkeypatch.setenv("SN51_COLLATERAL_CONFIRMATIONS", "6")
    cfg = CollateralSettings().watcher_config()
    assert (cfg.rpc_url, cfg.chain_id, cfg.confirmations, cfg.start_block) == ("http://node:9944", 945, 6, 0)
    assert SPEC.core_factory().chain_id == 945  # type: ignore[attr-defined]


def test_executor_ids_and_slash_tags() -> None:
    ex = "6339ba4f-60f9-45c2-9d95-2b755bb57ca6"
    raw = chain.executor_bytes(ex)
    assert raw == uuid.UUID(ex).bytes and len(raw) == 16
    assert chain.executor_uuid(raw) == ex
    url, md5 = chain.slash_tag("req-1")
    assert (url, md5) == ("sn51:slash:req-1", hashlib.md5(b"sn51:slash:req-1").digest())
    assert chain.slash_tag("req-2")[1] != md5
