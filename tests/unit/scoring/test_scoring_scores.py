"""SPEC 3.1: every reason code, the stacking order, and when score.updated is emitted."""

from __future__ import annotations

from typing import Any

from schemas.envelope import Event
from schemas.events import ScoreUpdated
from services.scoring.core import ScoringCore
from tests.unit.scoring.scoring_factory import B300, H100, H200, bench, delisted, listed, params


def feed(core: ScoringCore, *events: Event) -> list[Event]:
    out: list[Event] = []
    for ev in events:
        out.extend(core.handle(ev))
    return out


def last_score(out: list[Event]) -> tuple[int, list[str]]:
    data = out[-1].data
    assert isinstance(data, ScoreUpdated)
    return data.score, data.reasons


def reasons_after(*events: Event) -> list[str]:
    core = ScoringCore()
    out = feed(core, *events)
    assert out, "the first computation always emits score.updated"
    return last_score(out)[1]


def test_listing_without_benchmark_is_not_benchmarked() -> None:
    core = ScoringCore()
    out = core.handle(listed("e1"))
    assert len(out) == 1 and out[0].type == "score.updated" and out[0].key == "e1"
    assert out[0].data.model_dump() == {
        "executor_id": "e1", "hotkey": "hk-e1", "score": 0, "reasons": ["not_benchmarked"]}
    assert out[0].causation_id is not None and out[0].source == "scoring"


def test_a_passing_benchmark_scores_one() -> None:
    core = ScoringCore()
    out = feed(core, listed("e1"), bench("e1"))
    assert [e.data.model_dump()["score"] for e in out] == [0, 1]
    assert last_score(out) == (1, [])


def test_unknown_gpu_model_stands_alone() -> None:
    # Everything else is wrong too, but only unknown_gpu_model is reported.
    assert reasons_after(listed("e1", model="NVIDIA Quantum 9000", price="999"),
                         bench("e1", model="NVIDIA Quantum 9000", gpus=3, vram=1, matmul=False,
                               down="1", sysbox=False)) == ["unknown_gpu_model"]


def test_not_benchmarked_stands_alone_even_for_an_unknown_model() -> None:
    assert reasons_after(listed("e1", model="NVIDIA Quantum 9000")) == ["not_benchmarked"]


def test_matmul_failed() -> None:
    assert reasons_after(listed("e1"), bench("e1", matmul=False)) == ["matmul_failed"]


def test_vram_window_bounds_are_inclusive() -> None:
    # A model with vram_mib 1000 and window [0.9, 1.05]: bounds 900 and 1050 exactly.
    model = {"NVIDIA T1": {"price": "1", "caps": {"1": 1}, "vram_mib": 1000}}
    for vram, expected in ((899, ["vram_mismatch"]), (900, []), (1050, []), (1051, ["vram_mismatch"])):
        got = reasons_after(params(models=model), listed("e1", model="NVIDIA T1", price="1"),
                            bench("e1", model="NVIDIA T1", vram=vram))
        assert got == expected, vram


def test_vram_against_the_table() -> None:
    # H200 nominal 143771 MiB: 0.9 × 143771 = 129393.9, so 129393 is out and 129394 in.
    assert reasons_after(listed("e1"), bench("e1", vram=129393)) == ["vram_mismatch"]
    assert reasons_after(listed("e1"), bench("e1", vram=129394)) == []


def test_gpu_count_mismatch() -> None:
    assert reasons_after(listed("e1", gpus=8), bench("e1", gpus=4)) == ["gpu_count_mismatch"]


def test_network_ema_is_exact_and_starts_with_the_first_value() -> None:
    core = ScoringCore()
    out = feed(core, listed("e1"), bench("e1", down="99.99"))
    assert last_score(out) == (0, ["network_too_slow"])  # first value as is
    out = feed(core, bench("e1", down="100.01"))  # ema = 100.00, not below 100
    assert last_score(out) == (1, [])
    out = feed(core, bench("e1", down="99.99"))  # ema = 99.995
    assert last_score(out) == (0, ["network_too_slow"])
    assert core.benchmarks["e1"].download_ema * 1000 == 99995


def test_network_ema_counts_benchmarks_before_the_listing() -> None:
    core = ScoringCore()
    assert feed(core, bench("e1", down="10"), bench("e1", down="170")) == []  # stored, nothing emitted
    assert last_score(feed(core, listed("e1"))) == (0, ["network_too_slow"])  # ema 90


def test_price_above_limit() -> None:
    # max_price_rate 3 × 2.85 = 8.55.
    assert reasons_after(listed("e1", price="8.55"), bench("e1")) == []
    assert reasons_after(listed("e1", price="8.551"), bench("e1")) == ["price_above_limit"]


def test_no_price_limit_for_a_model_priced_zero() -> None:
    model = {"NVIDIA Free": {"price": "0", "caps": {"1": 1}, "vram_mib": 1000}}
    assert reasons_after(params(models=model), listed("e1", model="NVIDIA Free", price="1000"),
                         bench("e1", model="NVIDIA Free", vram=1000)) == []


def test_sysbox_from_the_benchmark() -> None:
    assert reasons_after(listed("e1", sysbox=True), bench("e1", sysbox=False)) == ["sysbox_missing"]
    assert reasons_after(listed("e1", sysbox=False), bench("e1", sysbox=True)) == []


def test_stacked_reasons_keep_the_spec_order() -> None:
    got = reasons_after(listed("e1", gpus=8, price="100"),
                        bench("e1", gpus=1, vram=10, matmul=False, down="5", sysbox=False))
    assert got == ["matmul_failed", "vram_mismatch", "gpu_count_mismatch", "network_too_slow",
                   "price_above_limit", "sysbox_missing"]


def test_emitted_only_when_score_or_reasons_change() -> None:
    core = ScoringCore()
    feed(core, listed("e1"), bench("e1"))
    assert feed(core, bench("e1")) == []  # same result
    assert feed(core, listed("e1", hotkey="another")) == []  # a new hotkey alone is no change
    out = feed(core, bench("e1", sysbox=False))
    assert last_score(out) == (0, ["sysbox_missing"])
    out = feed(core, bench("e1", sysbox=False, matmul=False))  # still 0, reasons change
    assert last_score(out) == (0, ["matmul_failed", "sysbox_missing"])
    assert out[0].data.model_dump()["hotkey"] == "another"


def test_benchmark_of_a_delisted_executor_is_rescored() -> None:
    core = ScoringCore()
    feed(core, listed("e1"), bench("e1"), delisted("e1"))
    assert last_score(feed(core, bench("e1", matmul=False))) == (0, ["matmul_failed"])


def test_relisting_recomputes_from_the_new_listing() -> None:
    core = ScoringCore()
    feed(core, listed("e1", gpus=8), bench("e1", gpus=8))
    assert last_score(feed(core, listed("e1", gpus=4))) == (0, ["gpu_count_mismatch"])


def test_params_update_rescores_every_executor_ever_listed_in_id_order() -> None:
    core = ScoringCore()
    feed(core, listed("e2"), bench("e2", down="150"), listed("e1"), bench("e1", down="120"),
         listed("e3"), bench("e3", down="500"), listed("e0"), bench("e0", down="130"), delisted("e0"))
    out = core.handle(params(min_download_mbps="140"))  # the delisted e0 keeps its listing: its score changes too
    assert [(e.key, e.data.model_dump()["reasons"]) for e in out] == [("e0", ["network_too_slow"]),
                                                                       ("e1", ["network_too_slow"])]
    out = core.handle(params(min_download_mbps="1000"))
    assert [e.key for e in out] == ["e2", "e3"]
    assert len({e.id for e in out}) == 2


def test_params_update_can_make_a_model_known() -> None:
    core = ScoringCore()
    out = feed(core, listed("e1", model="NVIDIA X"), bench("e1", model="NVIDIA X", vram=500))
    assert last_score(out) == (0, ["unknown_gpu_model"])
    out = core.handle(params(models={"NVIDIA X": {"price": "1", "caps": {"1": 2}, "vram_mib": 500}}))
    assert last_score(out) == (1, [])


def test_vram_window_update_applies() -> None:
    core = ScoringCore()
    feed(core, listed("e1", model=H100), bench("e1", model=H100, vram=81559 * 2))
    out = core.handle(params(vram_window=["0.5", "2"]))
    assert last_score(out) == (1, [])
    model_update: dict[str, Any] = {B300: {"vram_mib": 1}}
    assert core.handle(params(models=model_update)) == []  # another model: nothing changes for e1
    assert core.scores["e1"] == (1, ())


def test_collateral_and_incidents_change_nothing() -> None:
    from tests.unit.scoring.scoring_factory import collateral, incident, started

    core = ScoringCore()
    feed(core, listed("e1", model=H200), bench("e1"), started("r1", "e1"))
    assert feed(core, collateral("e1"), incident("r1", "e1")) == []
    assert core.scores["e1"] == (1, ())


def test_decimal_ratio_reads_every_decimal_form_exactly() -> None:
    from fractions import Fraction

    from services.scoring.scores import decimal_scaled

    for text in ("523.17", "5.", ".5", "100", "0.000", "1e2", "2.5E-1", "-3.25", "+7", "00012.3400",
                 "-.5e+3", "1.25e-7", "0e5", "9119.35", "0.5", "12", "\u0663.\u0665", "\u0663"):
        num, places = decimal_scaled(text)
        assert places >= 0 and Fraction(num, 10**places) == Fraction(text), text


def test_long_ema_stays_exact() -> None:
    from fractions import Fraction

    core = ScoringCore()
    feed(core, listed("e1"))
    ema = None
    for i in range(300):
        x = ("100.5", "99.25", "1e2", "7.125e1", "0")[i % 5]
        feed(core, bench("e1", down=x))
        ema = Fraction(x) if ema is None else ema + (Fraction(x) - ema) / 2
    assert core.benchmarks["e1"].download_ema == ema


def test_network_ema_with_exponent_forms() -> None:
    core = ScoringCore()
    out = feed(core, listed("e1"), bench("e1", down="1e2"))  # exactly 100: not below
    assert last_score(out) == (1, [])
    out = feed(core, bench("e1", down="9.999e1"))  # (100 + 99.99) / 2 = 99.995
    assert last_score(out) == (0, ["network_too_slow"])


def literal_reasons(core: ScoringCore, eid: str, downloads: list[str], last: Any) -> list[str]:
    """SPEC 3.1 with Fractions, no precomputation: the oracle of the fast path."""
    from fractions import Fraction

    p, listing = core.params, core.book.listings[eid]
    model = p.models.get(listing.gpu_model)
    if model is None:
        return ["unknown_gpu_model"]
    ema = Fraction(downloads[0])
    for x in downloads[1:]:
        ema = ema + (Fraction(x) - ema) / 2
    out = []
    if not last.matmul_passed:
        out.append("matmul_failed")
    if not p.vram_window[0] * model.vram_mib <= last.vram_mb_per_gpu <= p.vram_window[1] * model.vram_mib:
        out.append("vram_mismatch")
    if last.gpu_count != listing.gpu_count:
        out.append("gpu_count_mismatch")
    if ema < p.min_download_mbps:
        out.append("network_too_slow")
    if model.price > 0 and listing.price > p.max_price_rate * model.price:
        out.append("price_above_limit")
    if not last.sysbox:
        out.append("sysbox_missing")
    return out


def test_fast_reasons_equal_the_literal_rules() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    decimals = st.decimals(min_value=0, max_value=3000, places=3, allow_nan=False).map(str)

    @settings(max_examples=150, deadline=None)
    @given(st.sampled_from([H200, H100, B300]), st.integers(1, 8), st.integers(1, 8), decimals,
           st.lists(decimals, min_size=1, max_size=6), st.integers(-3000, 3000), st.booleans(), st.booleans(),
           st.sampled_from([("0.9", "1.05"), ("0.99", "1"), ("0.333", "1.777")]),
           st.sampled_from(["100", "99.999", "1000"]))
    def check(model: str, listed_gpus: int, bench_gpus: int, price: str, downloads: list[str], dv: int,
              matmul: bool, sysbox: bool, window: tuple[str, str], min_dl: str) -> None:
        from services.params import DEFAULT_MODELS

        core = ScoringCore()
        feed(core, params(vram_window=list(window), min_download_mbps=min_dl),
             listed("e", model, listed_gpus, price))
        vram = DEFAULT_MODELS[model].vram_mib + dv * 5
        for i, x in enumerate(downloads):
            feed(core, bench("e", model, bench_gpus, vram=vram, matmul=matmul or i < len(downloads) - 1,
                             down=x, sysbox=sysbox))
        last = core.benchmarks["e"]
        assert list(core.scores["e"][1]) == literal_reasons(core, "e", downloads, last)

    check()
