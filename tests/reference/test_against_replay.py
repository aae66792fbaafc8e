"""The product against the independent oracle (`tests/reference/oracle.py`, written from SPEC.md alone): the
same logs through `sn51 replay`'s pipeline and through the oracle give the same refusals, epoch splits, scores,
portions, daily statements and payouts, to the rao (`compare.py` says what "the same" allows)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from sn51.sim import Faults, lines
from tests.reference.compare import differences
from tests.reference.scenarios import scenario


@pytest.mark.parametrize("seed", range(40))
def test_adversarial_scenarios_agree(seed: int) -> None:
    assert differences(scenario(seed)) == []


@pytest.mark.parametrize(("seed", "faults", "params_update"), [
    (11, None, True),
    (12, Faults(duplicates=0.05, out_of_order=0.1, malformed=0.02), False),
])
def test_simulated_logs_agree(seed: int, faults: Faults | None, params_update: bool) -> None:
    log = [line.text.encode() for line in lines(seed, 6, 4, faults=faults, params_update=params_update)]
    assert differences(log) == []


def test_the_comparison_sees_one_micro_dollar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teeth: a provider part rounded up instead of down shows as differences in the statements."""
    import services.billing.core as billing

    monkeypatch.setattr(billing, "provider_part", lambda charge, rate: math.ceil(charge * Fraction(rate)))
    found = differences(scenario(3))
    assert any("rental_fee_usd_micros" in d for d in found), found
