"""SPEC 3.2: gpu_portion from revenue reports, exact, rounded to 18 places half to even."""

from __future__ import annotations

from fractions import Fraction as F

from schemas.events import GpuPortionUpdated
from services.params import DEFAULT_PORTIONS
from services.scoring.core import ScoringCore
from services.scoring.portions import after_revenue, round_portion
from tests.unit.scoring.scoring_factory import H100, H200, params, revenue

B200 = "NVIDIA B200"


def portions_of(core: ScoringCore, amounts: dict[str, str]) -> dict[str, str]:
    out = core.handle(revenue(amounts))
    assert len(out) == 1 and out[0].type == "gpu_portion.updated" and out[0].key == "gpu_portion"
    data = out[0].data
    assert isinstance(data, GpuPortionUpdated)
    return data.portions


def test_round_portion_is_half_to_even_at_18_places() -> None:
    assert round_portion(F(5, 10**19)) == 0
    assert round_portion(F(15, 10**19)) == F(2, 10**18)
    assert round_portion(F(25, 10**19)) == F(2, 10**18)
    assert round_portion(F(251, 10**20)) == F(3, 10**18)
    assert round_portion(F(1, 3)) == F(333333333333333333, 10**18)


def test_terminating_update_is_exact() -> None:
    # T = 40: H200 share 0.75 → 0.56 + 0.01 × (0.75 − 0.56) = 0.5619;
    # B200 share 0.25 → 0.05 + 0.01 × 0.20 = 0.052; H100 absent → 0.10 − 0.01 × 0.10 = 0.099;
    # RTX 5090 absent → 0.025 × 0.99 = 0.02475.
    got = portions_of(ScoringCore(), {H200: "30", B200: "10"})
    assert got[H200] == "0.5619"
    assert got[B200] == "0.052"
    assert got[H100] == "0.099"
    assert got["NVIDIA GeForce RTX 5090"] == "0.02475"
    assert set(got) == set(DEFAULT_PORTIONS)


def test_non_terminating_update_rounds() -> None:
    # T = 3: H200 = 0.56 + 0.01 × (1/3 − 0.56) = 0.5544 + 0.00333… = 0.557733333333333333|33… (down);
    # B200 = 0.05 + 0.01 × (2/3 − 0.05) = 0.0495 + 0.00666… = 0.056166666666666666|66… (up).
    core = ScoringCore()
    got = portions_of(core, {H200: "1", B200: "2"})
    assert got[H200] == "0.557733333333333333"
    assert got[B200] == "0.056166666666666667"
    assert core.portions[B200] == F(56166666666666667, 10**18)


def test_half_to_even_through_the_core() -> None:
    # alpha 0.5 and a model nobody earns: portion ← portion / 2. 1e-18 → 5e-19 → 0 (even);
    # 3e-18 → 1.5e-18 → 2e-18 (even).
    core = ScoringCore()
    spec = {"price": "1", "caps": {"1": 1}, "vram_mib": 1}
    core.handle(params(gpu_portion_alpha="0.5",
                       models={"NVIDIA P1": {**spec, "portion": "0.000000000000000001"},
                               "NVIDIA P3": {**spec, "portion": "0.000000000000000003"}}))
    got = portions_of(core, {H200: "1"})
    assert got["NVIDIA P1"] == "0"
    assert got["NVIDIA P3"] == "0.000000000000000002"
    assert got[H200] == "0.78"  # (0.56 + 1) / 2


def test_zero_total_adds_named_models_without_emitting() -> None:
    core = ScoringCore()
    assert core.handle(revenue({"NVIDIA New": "0"})) == []
    assert core.portions["NVIDIA New"] == 0
    assert core.portions[H200] == F("0.56")
    got = portions_of(core, {H200: "1"})
    assert got["NVIDIA New"] == "0"
    got = portions_of(core, {"NVIDIA New": "1"})
    assert got["NVIDIA New"] == "0.01"


def test_a_new_model_keeps_what_revenue_gave_it_unless_the_update_gives_a_portion() -> None:
    core = ScoringCore()
    portions_of(core, {"NVIDIA A": "1", "NVIDIA B": "1"})  # each 0.005
    spec = {"price": "1", "caps": {"1": 1}, "vram_mib": 1}
    core.handle(params(models={"NVIDIA A": spec, "NVIDIA B": {**spec, "portion": "0.2"},
                               "NVIDIA C": spec}))
    assert core.portions["NVIDIA A"] == F("0.005")
    assert core.portions["NVIDIA B"] == F("0.2")
    assert core.portions["NVIDIA C"] == 0


def test_alpha_from_params_and_all_models_reported() -> None:
    core = ScoringCore()
    core.handle(params(gpu_portion_alpha="1"))
    got = portions_of(core, {H100: "5"})
    assert got[H100] == "1"
    assert all(v == "0" for m, v in got.items() if m != H100)


def test_after_revenue_is_pure() -> None:
    start = dict(DEFAULT_PORTIONS)
    out, moved = after_revenue(start, {H200: F(1)}, F("0.01"))
    assert moved and start == DEFAULT_PORTIONS and out[H200] == F("0.5644")
