"""Weights for set_weights: per hotkey, u16, max 65535, a positive share never 0, burn to the burner."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction as F

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import EpochScored, ScoredNode, Shares
from schemas.values import fmt_decimal
from services.scoring.weights import U16_MAX, hotkey_shares, to_uids, u16_weights, weights

BURNER = "hk-burn"


def scored(nodes: list[tuple[str, str]], burn: str) -> EpochScored:
    return EpochScored(
        netuid=51, epoch=1, closed_at=datetime(2026, 11, 21, tzinfo=UTC), miner_emission_rao=10**9,
        shares=Shares(rented="0", unrented="0", burn=burn),
        nodes=[ScoredNode(executor_id=f"e{i}", hotkey=hk, pool="rented", incentive=inc, alpha_rao=0,
                          reason=None if F(inc) > 0 else "no_rented_portion")
               for i, (hk, inc) in enumerate(nodes)],
        burn_rao=0)


def test_hand_worked_vector() -> None:
    """hk-a has two nodes, 0.01 + 0.08 = 0.09; hk-b 0.0071712; hk-c 0; burn 0.9028288 is the largest.
    hk-a: 0.09 / 0.9028288 × 65535 = 6532.97… → 6533; hk-b: 0.0071712 / 0.9028288 × 65535 = 520.55… → 521.
    """
    data = scored([("hk-a", "0.01"), ("hk-b", "0.0071712"), ("hk-a", "0.08"), ("hk-c", "0")], "0.9028288")
    assert weights(data, BURNER) == [("hk-a", 6533), ("hk-b", 521), (BURNER, 65535), ("hk-c", 0)]


def test_a_tiny_positive_share_gets_weight_one() -> None:
    data = scored([("hk-a", "0.000000000000000001")], "0.999999999999999999")
    assert dict(weights(data, BURNER)) == {"hk-a": 1, BURNER: U16_MAX}


def test_the_burner_may_also_be_a_node() -> None:
    data = scored([(BURNER, "0.5")], "0.5")
    assert weights(data, BURNER) == [(BURNER, U16_MAX)]


def test_no_burn_keeps_the_burner_at_zero() -> None:
    data = scored([("hk-a", "0.25"), ("hk-b", "0.75")], "0")
    assert weights(data, BURNER) == [("hk-a", 21845), ("hk-b", U16_MAX), (BURNER, 0)]


def test_to_uids() -> None:
    vector = [("hk-a", 10), ("hk-b", 0), (BURNER, U16_MAX), ("hk-x", 3)]
    got = to_uids(vector, {"hk-a": 7, "hk-b": 2, BURNER: 0})
    assert (got.uids, got.weights, got.unregistered) == ([0, 2, 7], [U16_MAX, 0, 10], ["hk-x"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.fractions(0, 1, max_denominator=10**6)),
                max_size=8))
def test_u16_properties(raw: list[tuple[str, F]]) -> None:
    total = sum((x for _, x in raw), F(0))
    if total > 1:
        raw = [(h, x / total) for h, x in raw]
        total = F(1)
    data = scored([(h, fmt_decimal(x)) for h, x in raw], fmt_decimal(1 - total))
    shares = hotkey_shares(data, BURNER)
    vector = weights(data, BURNER)
    assert [h for h, _ in vector] == sorted(shares)
    assert max(w for _, w in vector) == U16_MAX
    for h, w in vector:
        assert 0 <= w <= U16_MAX
        assert (w > 0) == (shares[h] > 0)
    assert u16_weights({}) == []
