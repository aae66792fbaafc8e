"""Property tests of the epoch split (hypothesis): conservation, shares, caps, signs, order independence."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction as F
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.envelope import Event
from schemas.events import EpochScored
from schemas.values import fmt_decimal
from services.params import DEFAULT_MODELS
from services.scoring.core import ScoringCore
from services.scoring.split import RENTED, UNRENTED, Split, split
from tests.unit.scoring.scoring_factory import (
    B300,
    H100,
    H200,
    RTX4090,
    bench,
    delisted,
    epoch,
    listed,
    params,
    started,
    stopped,
)

MODELS = [H200, H100, B300, RTX4090]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def executor(draw: Any, eid: str) -> list[Event]:
    """One executor's own events, in their own order: listing, benchmarks, rentals, maybe a delisting."""
    model = draw(st.sampled_from(MODELS))
    gpus = draw(st.sampled_from([1, 1, 2, 8, 8]))
    rate = draw(st.sampled_from([F(1), F("0.5"), F("1.1"), F(1), F("1.2"), F("3.1")]))
    price = DEFAULT_MODELS[model].price * rate
    events = [listed(eid, model, gpus, fmt_decimal(price))]
    for _ in range(draw(st.integers(1, 2))):
        events.append(bench(eid, model, gpus, sysbox=draw(st.sampled_from([True, True, True, False])),
                            down=draw(st.sampled_from(["500", "150", "500", "50"]))))
    if draw(st.integers(0, 2)) == 0:
        rate = draw(st.sampled_from([F(1), F("0.5"), F("0.4")]))
        events.append(started(f"r-{eid}", eid, fmt_decimal(DEFAULT_MODELS[model].price * rate)))
        if draw(st.integers(0, 3)) == 0:
            events.append(stopped(f"r-{eid}", eid))
    if draw(st.integers(0, 5)) == 0:
        events.append(delisted(eid))
    return events


@st.composite
def world(draw: Any) -> tuple[list[Event], list[list[Event]]]:
    """Parameters (first, in order) and the executors' event sequences."""
    fields: dict[str, Any] = {
        "rented_normalization": draw(st.sampled_from(["rented", "table"])),
        "total_burn_emission": draw(st.sampled_from(["0.91", "0.5", "0", "1"])),
        "unrented_pay_ratio": draw(st.sampled_from(["1", "2.5", "1", "0.5"]) | st.just("0")),
    }
    if draw(st.booleans()):  # small caps, so that buckets go over them
        fields["models"] = {H200: {"caps": {"1": 2, "8": 8}}, H100: {"caps": {"1": 1, "8": 0}}}
    count = draw(st.integers(1, 14))
    return [params(**fields)], [draw(executor(f"e{i:02d}")) for i in range(count)]


prices = st.tuples(st.sampled_from([10**11, 10**8, 0]) | st.integers(0, 10**13),
                   st.sampled_from(["400", "1", "0.01"]), st.sampled_from(["0.05", "1", "0.0001"]))


def run(setup: list[Event], events: list[Event]) -> ScoringCore:
    core = ScoringCore()
    for ev in [*setup, *events]:
        core.handle(ev)
    return core


def exact(core: ScoringCore, e: int, tao: str, alpha: str) -> Split:
    return split(core.participants(), core.params, core.portions, e, F(tao), F(alpha))


@SETTINGS
@given(world(), prices)
def test_shares_sum_to_one_and_rao_is_conserved(w: tuple[list[Event], list[list[Event]]],
                                                p: tuple[int, str, str]) -> None:
    setup, execs = w
    core = run(setup, [e for seq in execs for e in seq])
    result = exact(core, *p)
    assert result.rented + result.unrented + result.burn == 1
    assert min(result.rented, result.unrented, result.burn) >= 0
    assert result.unrented <= core.params.total_burn_emission
    assert result.rented <= 1 - core.params.total_burn_emission
    assert sum(n.award.alpha_rao for n in result.nodes) + result.burn_rao == p[0]
    assert result.burn_rao >= 0
    for n in result.nodes:
        assert n.award.incentive >= 0 and n.award.alpha_rao >= 0
        assert n.award.alpha_rao == n.award.incentive.numerator * p[0] // n.award.incentive.denominator
        assert (n.award.reason is None) == (n.award.incentive > 0)
    assert sum(n.award.incentive for n in result.nodes if n.award.pool == RENTED) == result.rented
    assert sum(n.award.incentive for n in result.nodes if n.award.pool == UNRENTED) == result.unrented
    data = core.handle(epoch(1, *p))[0].data
    assert isinstance(data, EpochScored)
    assert sum(n.alpha_rao for n in data.nodes) + data.burn_rao == p[0]
    assert [n.executor_id for n in data.nodes] == sorted(n.executor_id for n in data.nodes)
    assert all(F(n.incentive) >= 0 for n in data.nodes)


@SETTINGS
@given(world(), prices)
def test_caps_dilute_as_specified(w: tuple[list[Event], list[list[Event]]], p: tuple[int, str, str]) -> None:
    """Within a bucket every GPU earns the same; a bucket's total is U × min(count, cap) × price / C,
    so per unit of min(count, cap) × price every earning bucket is paid the same."""
    setup, execs = w
    core = run(setup, [e for seq in execs for e in seq])
    result = exact(core, *p)
    per_gpu: dict[tuple[str, int], set[F]] = defaultdict(set)
    totals: dict[tuple[str, int], F] = defaultdict(F)
    gpus: dict[tuple[str, int], int] = defaultdict(int)
    for n in result.nodes:
        if n.award.pool == UNRENTED and n.award.incentive > 0:
            key = (n.listing.gpu_model, n.listing.gpu_count)
            per_gpu[key].add(n.award.incentive / n.listing.gpu_count)
            totals[key] += n.award.incentive
            gpus[key] += n.listing.gpu_count
    assert all(len(v) == 1 for v in per_gpu.values())
    rates = set()
    for (model, count), total in totals.items():
        cap = core.params.models[model].caps[count]
        rates.add(total / (min(gpus[(model, count)], cap) * core.params.models[model].price))
    assert len(rates) <= 1
    if rates:
        capped = sum((min(gpus[k], core.params.models[k[0]].caps[k[1]]) * core.params.models[k[0]].price
                      for k in totals), F(0))
        assert rates.pop() * capped == result.unrented


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), prices)
def test_an_over_cap_bucket_dilutes_its_members(extra: int, others: int, p: tuple[int, str, str]) -> None:
    """B300 1-GPU cap 4: with 4 + extra nodes the bucket is paid as 4 GPUs, shared by all; other buckets
    (8×H100) earn exactly what they earn with the bucket at its cap."""
    def scored(n: int) -> Split:
        events = []
        for i in range(n):
            events += [listed(f"b{i}", B300, 1, "5"), bench(f"b{i}", B300, 1)]
        for i in range(others):
            events += [listed(f"h{i}", H100, 8, "1.4"), bench(f"h{i}", H100, 8)]
        return exact(run([], events), *p)

    at_cap, over = scored(4), scored(4 + extra)
    inc = {n.listing.executor_id: n.award.incentive for n in over.nodes}
    base = {n.listing.executor_id: n.award.incentive for n in at_cap.nodes}
    assert over.unrented == at_cap.unrented
    assert all(inc[f"h{i}"] == base[f"h{i}"] for i in range(others))
    assert all(inc[f"b{i}"] == base["b0"] * 4 / (4 + extra) for i in range(4 + extra))


@SETTINGS
@given(world(), prices, st.randoms(use_true_random=False))
def test_order_of_executors_events_does_not_matter(w: tuple[list[Event], list[list[Event]]],
                                                   p: tuple[int, str, str], rnd: Any) -> None:
    """Interleave the executors' event sequences differently (each executor's own order kept): the same
    final state gives the same epoch.scored."""
    setup, execs = w
    in_order = [e for seq in execs for e in seq]
    slots = [i for i, seq in enumerate(execs) for _ in seq]
    rnd.shuffle(slots)
    cursors = [iter(seq) for seq in execs]
    shuffled = [next(cursors[i]) for i in slots]
    close = epoch(1, *p)
    first = run(setup, in_order).handle(close)
    second = run(setup, shuffled).handle(close)
    assert [e.to_json() for e in first] == [e.to_json() for e in second]


def literal_split(core: ScoringCore, e: int, tao: F, alpha: F) -> dict[str, tuple[str, F, str | None]]:
    """SPEC 3.3 written out node by node, with no grouping or caching: the oracle of the fast split."""
    p, book = core.params, core.book
    part = [eid for eid in book.listed if core.scores.get(eid, (0, ()))[0] == 1]
    price = {eid: p.models[book.listings[eid].gpu_model].price for eid in part}
    rented = {eid for eid in part
              if any(r.price >= p.min_rented_price_rate * price[eid] for r in book.active_rentals(eid))}
    model = {eid: book.listings[eid].gpu_model for eid in part}
    gpus = {eid: book.listings[eid].gpu_count for eid in part}
    out: dict[str, tuple[str, F, str | None]] = {}
    ms = {eid: core.portions[model[eid]] * gpus[eid]
          / sum(gpus[o] for o in rented if model[o] == model[eid]) for eid in rented}
    n = sum(ms.values(), F(0)) if p.rented_normalization == "rented" else sum(
        (core.portions[m] for m in p.models), F(0))
    for eid in rented:
        inc = (1 - p.total_burn_emission) * ms[eid] / n if n > 0 else F(0)
        out[eid] = ("rented", inc, None if inc > 0 else "no_rented_portion")
    eligible = []
    for eid in sorted(set(part) - rented):
        caps = p.models[model[eid]].caps
        if price[eid] <= 0:
            out[eid] = ("unrented", F(0), "model_not_priced")
        elif book.listings[eid].price > p.max_unrented_price_rate * price[eid]:
            out[eid] = ("unrented", F(0), "price_above_unrented_limit")
        elif caps.get(gpus[eid], 0) <= 0:
            out[eid] = ("unrented", F(0), "gpu_count_not_priced")
        else:
            eligible.append(eid)
    count: dict[tuple[str, int], int] = defaultdict(int)
    for eid in eligible:
        count[(model[eid], gpus[eid])] += gpus[eid]
    mult = {k: F(min(c, p.models[k[0]].caps[k[1]]), c) for k, c in count.items()}
    c_total = sum((mult[k] * c * p.models[k[0]].price for k, c in count.items()), F(0))
    u = F(0)
    if c_total > 0 and e > 0:
        raw = (p.unrented_pay_ratio * c_total * p.tempo * p.seconds_per_block / 3600
               / (F(e, 10**9) * tao * alpha))
        u = min(raw, p.total_burn_emission)
    for eid in eligible:
        inc = u * gpus[eid] * price[eid] * mult[(model[eid], gpus[eid])] / c_total if u > 0 else F(0)
        out[eid] = ("unrented", inc, None if inc > 0 else "no_unrented_share")
    return out


@SETTINGS
@given(world(), prices)
def test_fast_split_equals_the_literal_rules(w: tuple[list[Event], list[list[Event]]],
                                            p: tuple[int, str, str]) -> None:
    setup, execs = w
    core = run(setup, [e for seq in execs for e in seq])
    result = exact(core, *p)
    expected = literal_split(core, p[0], F(p[1]), F(p[2]))
    got = {n.listing.executor_id: (n.award.pool, n.award.incentive, n.award.reason) for n in result.nodes}
    assert got == expected
    assert [n.listing.executor_id for n in result.nodes] == sorted(expected)
