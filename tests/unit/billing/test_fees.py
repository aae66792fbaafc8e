"""Rental fees in integers give exactly what the SPEC's formula gives in exact fractions."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from services.billing.fees import charge_usd_micros, divide_half_even, provider_part, seconds_in_day_us
from services.rentals import Listing, Rental

DAY = date(2026, 11, 2)
prices = st.builds(lambda units, places: Fraction(units, 10**places), st.integers(0, 10**7), st.integers(0, 6))


@given(st.integers(-(10**30), 10**30), st.integers(1, 10**18))
def test_divide_half_even_is_round_of_the_exact_quotient(n: int, d: int) -> None:
    assert divide_half_even(n, d) == round(Fraction(n, d))


@given(st.integers(-50, 50), st.sampled_from([2, 4, 6, 10]))
def test_divide_half_even_ties_go_to_the_even_neighbour(k: int, d: int) -> None:
    n = k * d + d // 2  # exactly k + 1/2
    assert divide_half_even(n, d) == (k if k % 2 == 0 else k + 1)


@given(st.integers(0, 10**15), st.fractions(min_value=0, max_value=1, max_denominator=10**9))
def test_provider_part_is_the_floor(charge: int, rate: Fraction) -> None:
    assert provider_part(charge, rate) == math.floor(charge * rate)


@given(prices, st.integers(1, 16), st.integers(-2 * 86_400 * 10**6, 2 * 86_400 * 10**6),
       st.none() | st.integers(0, 3 * 86_400 * 10**6))
def test_charge_is_the_specs_formula(price: Fraction, gpus: int, start_us: int, length_us: int | None) -> None:
    started = datetime(2026, 11, 2, tzinfo=UTC) + timedelta(microseconds=start_us)
    stopped = None if length_us is None else started + timedelta(microseconds=length_us)
    listing = Listing("ex", "hk", "ck", "H100", gpus, price, False)
    rental = Rental("r", "ex", price, started, stopped, listing, "start-id")
    seconds = Fraction(seconds_in_day_us(rental, DAY), 10**6)
    assert charge_usd_micros(rental, DAY) == round(seconds * price * gpus / 3600 * 10**6)
