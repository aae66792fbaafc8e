"""SPEC 3.3: the epoch split, hand-worked, and the reason of every node that earns nothing.

Defaults: total_burn_emission 0.91 (R = 0.09), tempo 360 × 12 s = 4320 s = 1.2 h per epoch,
min_rented_price_rate 0.5, max_unrented_price_rate 1.1, portions H200 0.56, B200 0.05, H100 0.10.
"""

from __future__ import annotations

from typing import Any

from schemas.envelope import Event
from schemas.events import EpochScored
from services.scoring.core import ScoringCore
from tests.unit.scoring.scoring_factory import (
    B300,
    H100,
    H200,
    bench,
    delisted,
    epoch,
    listed,
    params,
    ready,
    started,
    stopped,
)

B200 = "NVIDIA B200"


def run(*events: Event | list[Event]) -> tuple[ScoringCore, list[Event]]:
    core = ScoringCore()
    out: list[Event] = []
    for ev in events:
        for e in ev if isinstance(ev, list) else [ev]:
            out.extend(core.handle(e))
    return core, out


def scored(out: list[Event]) -> EpochScored:
    last = out[-1]
    assert last.type == "epoch.scored" and last.key == "netuid-51"
    assert isinstance(last.data, EpochScored)
    return last.data


def nodes(data: EpochScored) -> dict[str, tuple[str, str, int, str | None]]:
    return {n.executor_id: (n.pool, n.incentive, n.alpha_rao, n.reason) for n in data.nodes}


def shares(data: EpochScored) -> tuple[str, str, str]:
    return data.shares.rented, data.shares.unrented, data.shares.burn


def test_two_rented_h200_and_one_unrented_h100() -> None:
    """E = 100 alpha = 10¹¹ rao, tao_usd 400, alpha_tao 0.05: the epoch's emission is worth 2000 USD.

    Rented (price 2.5 ≥ 0.5 × 2.85 = 1.425): a 1×H200, b 8×H200. Rented H200 GPUs: 9. N = Σm = 0.56.
      m_a = 0.56 × 1/9, m_b = 0.56 × 8/9; incentive_a = 0.09 × (1/9) = 0.01, incentive_b = 0.09 × 8/9 = 0.08.
      alpha_a = 0.01 × 10¹¹ = 1 000 000 000, alpha_b = 8 000 000 000. R' = 0.09.
    Unrented: c 8×H100 listed 1.40 ≤ 1.1 × 1.494 = 1.6434; bucket (H100, 8): count 8 ≤ cap 64, cap_mult 1.
      C = 8 × 1.494 = 11.952 USD/h; raw = 11.952 × 1.2 / 2000 = 14.3424 / 2000 = 0.0071712 = U (< 0.91).
      incentive_c = U × 8 × 1.494 × 1 / 11.952 = U = 0.0071712; alpha_c = 717 120 000.
    burn = 1 − 0.09 − 0.0071712 = 0.9028288; burn_rao = 10¹¹ − 9 717 120 000 = 90 282 880 000.
    """
    _, out = run(ready("a", H200, 1), ready("b", H200, 8), ready("c", H100, 8, price="1.40"),
                 started("r1", "a"), started("r2", "b"), epoch(1))
    data = scored(out)
    assert nodes(data) == {
        "a": ("rented", "0.01", 1_000_000_000, None),
        "b": ("rented", "0.08", 8_000_000_000, None),
        "c": ("unrented", "0.0071712", 717_120_000, None),
    }
    assert shares(data) == ("0.09", "0.0071712", "0.9028288")
    assert data.burn_rao == 90_282_880_000
    assert data.miner_emission_rao == 10**11 and data.epoch == 1 and data.netuid == 51
    assert [n.executor_id for n in data.nodes] == ["a", "b", "c"]
    assert [n.hotkey for n in data.nodes] == ["hk-a", "hk-b", "hk-c"]


def test_rented_across_models_with_floors() -> None:
    """E = 1 000 000 007 rao. Rented: a 1×H200, b 2×H200, c 1×B200. N = 0.56 + 0.05 = 0.61.

    incentive_a = 0.09 × (0.56 × 1/3) / 0.61 = 0.0504 / 1.83 = 42/1525 = 0.027540983606557377|04…
    incentive_b = 84/1525 = 0.055081967213114754|09…; incentive_c = 0.09 × 0.05 / 0.61 = 9/1220 =
    0.007377049180327868|85… (the last rounds up to …869). Their sum is 549/6100 = 0.09.
    alpha_a = ⌊42 × 1 000 000 007 / 1525⌋ = ⌊27 540 983.79…⌋ = 27 540 983; alpha_b = ⌊55 081 967.59…⌋ =
    55 081 967; alpha_c = ⌊9 000 000 063 / 1220⌋ = ⌊7 377 049.23…⌋ = 7 377 049.
    Nothing unrented: U = 0; burn = 0.91; burn_rao = 1 000 000 007 − 89 999 999 = 910 000 008.
    """
    _, out = run(ready("a", H200, 1), ready("b", H200, 2), ready("c", B200, 1, price="4"),
                 started("r1", "a"), started("r2", "b"), started("r3", "c", price="4"),
                 epoch(1, emission=1_000_000_007, tao_usd="500", alpha_tao="0.02"))
    data = scored(out)
    assert nodes(data) == {
        "a": ("rented", "0.027540983606557377", 27_540_983, None),
        "b": ("rented", "0.055081967213114754", 55_081_967, None),
        "c": ("rented", "0.007377049180327869", 7_377_049, None),
    }
    assert shares(data) == ("0.09", "0", "0.91")
    assert data.burn_rao == 910_000_008


def test_caps_dilute_a_bucket() -> None:
    """Six 1×B300 (cap 4) and one 8×B300 (cap 32), unrented, listed 5.0 ≤ 1.1 × 5.10 = 5.61.

    Bucket (B300, 1): count 6, cap_mult 4/6; bucket (B300, 8): count 8, cap_mult 1.
    C = 4 × 5.10 + 8 × 5.10 = 20.4 + 40.8 = 61.2 USD/h. Emission worth 2000 USD:
    raw = 61.2 × 1.2 / 2000 = 0.03672 = U.
    1-GPU node: 0.03672 × 1 × 5.10 × (2/3) / 61.2 = 0.00204 → 204 000 000 rao (× 6);
    8-GPU node: 0.03672 × 8 × 5.10 / 61.2 = 0.02448 → 2 448 000 000 rao.
    Σ = 6 × 0.00204 + 0.02448 = 0.03672 = U; burn_rao = 10¹¹ − 3 672 000 000 = 96 328 000 000.
    """
    events: list[Event] = []
    for i in range(6):
        events += ready(f"s{i}", B300, 1, price="5.0")
    events += ready("big", B300, 8, price="5.0")
    _, out = run(events, epoch(1))
    data = scored(out)
    got = nodes(data)
    assert all(got[f"s{i}"] == ("unrented", "0.00204", 204_000_000, None) for i in range(6))
    assert got["big"] == ("unrented", "0.02448", 2_448_000_000, None)
    assert shares(data) == ("0", "0.03672", "0.96328")
    assert data.burn_rao == 96_328_000_000


def test_unrented_share_is_capped_by_total_burn_emission() -> None:
    """E = 10⁸ rao worth 0.1 × 400 × 0.05 = 2 USD; one 8×H100: raw = 14.3424 / 2 = 7.1712 > 0.91.

    U = 0.91, the node takes it all: 0.91 × 10⁸ = 91 000 000 rao. Nobody rented: R' = 0, burn = 0.09.
    """
    _, out = run(ready("c", H100, 8, price="1.40"), epoch(1, emission=10**8))
    data = scored(out)
    assert nodes(data) == {"c": ("unrented", "0.91", 91_000_000, None)}
    assert shares(data) == ("0", "0.91", "0.09")
    assert data.burn_rao == 9_000_000


def test_table_normalization_leaves_unrented_portions_to_burn() -> None:
    """N = Σ table portions = 0.56 + 0.10 + 0.05 × 3 + 0.025 + 0.05 = 0.885; one rented 1×H200:
    incentive = 0.09 × 0.56 / 0.885 = 84/1475 = 0.056949152542372881|35…, alpha = ⌊5 694 915 254.23…⌋.
    burn = 1 − 84/1475 = 0.943050847457627118|64… → …119 (rounded at 18 places)."""
    _, out = run(params(rented_normalization="table"), ready("a", H200, 1), started("r1", "a"), epoch(1))
    data = scored(out)
    assert nodes(data) == {"a": ("rented", "0.056949152542372881", 5_694_915_254, None)}
    assert shares(data) == ("0.056949152542372881", "0", "0.943050847457627119")
    assert data.burn_rao == 10**11 - 5_694_915_254


def test_total_burn_emission_sets_the_rented_share() -> None:
    _, out = run(params(total_burn_emission="0.5"), ready("a", H200, 1), started("r1", "a"), epoch(1))
    data = scored(out)
    assert nodes(data) == {"a": ("rented", "0.5", 50_000_000_000, None)}
    assert shares(data) == ("0.5", "0", "0.5")


def test_reason_of_every_node_that_earns_nothing() -> None:
    """Unrented eligibility in order: model priced, price within the unrented limit, gpu_count a cap key
    with cap > 0; a rented node of a model with portion 0 earns nothing (no_rented_portion)."""
    spec: dict[str, Any] = {"caps": {"1": 10}, "vram_mib": 1000}
    models = {
        "NVIDIA Zero": {**spec, "price": "1", "portion": "0"},
        "NVIDIA Free": {**spec, "price": "0"},
        "NVIDIA Capless": {**spec, "price": "1", "caps": {"1": 0}},
    }
    events: list[Event | list[Event]] = [
        params(models=models),
        [listed("r0", "NVIDIA Zero", 1, "1"), bench("r0", "NVIDIA Zero", 1, vram=1000)], started("x", "r0", "1"),
        [listed("u1", "NVIDIA Free", 1, "1"), bench("u1", "NVIDIA Free", 1, vram=1000)],
        ready("u2", H100, 1, price="1.7"),  # 1.7 > 1.6434 (and ≤ 3 × 1.494 for its score)
        ready("u3", H200, 2),  # no cap key "2"
        [listed("u4", "NVIDIA Capless", 1, "1"), bench("u4", "NVIDIA Capless", 1, vram=1000)],
        ready("u5", H200, 1),  # eligible
        ready("r1", H200, 1), started("y", "r1"),
    ]
    _, out = run(*events, epoch(1))
    got = {k: (v[0], v[3]) for k, v in nodes(scored(out)).items()}
    assert got == {
        "r0": ("rented", "no_rented_portion"),
        "u1": ("unrented", "model_not_priced"),
        "u2": ("unrented", "price_above_unrented_limit"),
        "u3": ("unrented", "gpu_count_not_priced"),
        "u4": ("unrented", "gpu_count_not_priced"),
        "u5": ("unrented", None),
        "r1": ("rented", None),
    }
    for n in scored(out).nodes:
        assert (n.incentive == "0") == (n.reason is not None)
        assert n.reason is None or n.alpha_rao == 0


def test_zero_emission_leaves_no_unrented_share() -> None:
    _, out = run(ready("u", H200, 1), ready("r", H200, 1), started("x", "r"), epoch(1, emission=0))
    data = scored(out)
    assert nodes(data) == {"r": ("rented", "0.09", 0, None), "u": ("unrented", "0", 0, "no_unrented_share")}
    assert shares(data) == ("0.09", "0", "0.91") and data.burn_rao == 0


def test_unrented_pay_ratio_zero_leaves_no_unrented_share() -> None:
    _, out = run(params(unrented_pay_ratio="0"), ready("u", H200, 1), epoch(1))
    assert nodes(scored(out)) == {"u": ("unrented", "0", 0, "no_unrented_share")}
    assert shares(scored(out)) == ("0", "0", "1")


def test_no_rented_portion_when_n_is_zero_sends_the_rented_share_to_burn() -> None:
    _, out = run(params(models={"NVIDIA Zero": {"price": "1", "caps": {"1": 1}, "vram_mib": 10}}),
                 listed("r", "NVIDIA Zero", 1, "1"), bench("r", "NVIDIA Zero", 1, vram=10),
                 started("x", "r", "1"), epoch(1))
    data = scored(out)
    assert nodes(data) == {"r": ("rented", "0", 0, "no_rented_portion")}
    assert shares(data) == ("0", "0", "1") and data.burn_rao == 10**11


def test_rental_price_floor_is_inclusive() -> None:
    # 0.5 × 2.85 = 1.425: a rental at 1.42 does not make the executor rented, one at 1.425 does.
    _, out = run(ready("a", H200), ready("b", H200), started("x", "a", "1.42"), started("y", "b", "1.425"),
                 epoch(1))
    got = nodes(scored(out))
    assert got["a"][0] == "unrented" and got["b"][0] == "rented"


def test_stopped_rentals_and_held_stops() -> None:
    # a: started then stopped → unrented. b: stop arrives first, held, applied at the start → unrented.
    # c: a second, cheap rental does not undo the rented state of the first.
    _, out = run(ready("a", H200), ready("b", H200), ready("c", H200),
                 started("x", "a"), stopped("x", "a"), stopped("y", "b"), started("y", "b"),
                 started("z1", "c"), started("z2", "c", "0.1"), epoch(1))
    got = nodes(scored(out))
    assert (got["a"][0], got["b"][0], got["c"][0]) == ("unrented", "unrented", "rented")


def test_only_listed_executors_with_score_one_take_part() -> None:
    _, out = run(ready("a", H200), ready("gone", H200), delisted("gone"), listed("nobench", H200),
                 ready("slow", H200)[0], bench("slow", down="1"), epoch(1))
    assert list(nodes(scored(out))) == ["a"]


def test_state_as_of_the_epoch_in_the_log() -> None:
    core, out = run(ready("a", H200), started("x", "a"), epoch(1))
    assert nodes(scored(out))["a"][0] == "rented"
    out = core.handle(stopped("x", "a")) + core.handle(epoch(2))
    assert nodes(scored(out))["a"][0] == "unrented"
    assert core.last_split is not None and core.last_split.epoch == 2


def test_empty_epoch_burns_everything() -> None:
    _, out = run(epoch(7, emission=123))
    data = scored(out)
    assert data.nodes == [] and shares(data) == ("0", "0", "1") and data.burn_rao == 123


def test_derived_event_identity() -> None:
    core, _ = run(ready("a", H200))
    ev = epoch(3)
    first = core.handle(ev)[0]
    assert first.causation_id == ev.id and first.time == ev.time and first.source == "scoring"
    other = ScoringCore()
    for e in ready("a", H200):
        other.handle(e)
    assert other.handle(ev)[0].to_json() == first.to_json()
