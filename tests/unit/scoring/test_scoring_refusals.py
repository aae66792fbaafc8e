"""Refusals of the scoring core: the event is refused with its code and changes nothing."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from schemas.codec import Refused
from schemas.envelope import Event
from services.scoring.core import ScoringCore
from tests.unit.scoring.scoring_factory import H200, epoch, incident, params, ready, revenue, started, stopped


def base() -> ScoringCore:
    core = ScoringCore()
    for ev in [*ready("a", H200), *ready("b", H200, 8), started("r1", "a"), revenue({H200: "3"}), epoch(1)]:
        core.handle(ev)
    return core


def refused(core: ScoringCore, ev: Event, code: str) -> None:
    before = pickle.dumps(core)
    with pytest.raises(Refused) as info:
        core.handle(ev)
    assert info.value.code == code
    assert pickle.dumps(core) == before


def test_duplicate_epoch() -> None:
    core = base()
    refused(core, epoch(1), "duplicate_epoch")
    refused(core, epoch(1, tao_usd="0"), "duplicate_epoch")  # duplicate_epoch comes first
    assert core.handle(epoch(2))[0].type == "epoch.scored"


@pytest.mark.parametrize("kw", [{"tao_usd": "0"}, {"tao_usd": "-1"}, {"alpha_tao": "0"},
                                {"alpha_tao": "-0.5"}, {"emission": -1},
                                {"emission": 21_000_000 * 10**9 + 1}])  # more than alpha's whole supply
def test_bad_prices(kw: dict[str, Any]) -> None:
    core = base()
    refused(core, epoch(5, **kw), "bad_prices")
    assert core.handle(epoch(5))[0].type == "epoch.scored"  # a refused epoch is not recorded as seen


@pytest.mark.parametrize("make", [lambda: started("r9", "ghost"), lambda: stopped("r9", "ghost")])
def test_unknown_executor(make: Any) -> None:
    refused(base(), make(), "unknown_executor")


def test_an_incident_of_an_unknown_executor_is_taken() -> None:
    """SPEC 3.4 refuses "a rental (or stop) for an executor never listed"; an incident is not named."""
    assert base().handle(incident("r9", "ghost")) == []


@pytest.mark.parametrize("fields", [
    {"models": {"NVIDIA New": {"price": "1", "caps": {"1": 1}}}},  # no vram_mib
    {"models": {"NVIDIA New": {"caps": {"1": 1}, "vram_mib": 1}}},  # no price
    {"models": {"NVIDIA New": {"price": "1", "vram_mib": 1}}},  # no caps
    {"models": {H200: {"portion": "0.3"}}},  # portion of an existing model
    {"min_download_mbps": "1000", "models": {H200: {"price": "9", "portion": "0.1"}}},  # refused whole
])  # out-of-range values ("total_burn_emission": "1.5", ...) are the codec's: tests/unit/schemas
def test_bad_params(fields: dict[str, Any]) -> None:
    refused(base(), params(**fields), "bad_params")


def test_refused_stop_does_not_hold() -> None:
    core = base()
    refused(core, stopped("r7", "ghost"), "unknown_executor")
    assert "r7" not in core.book.held_stops
