"""Rental fees of one rental on one UTC day (SPEC 3.4), exact to the microsecond."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction

from schemas.values import day_start
from services.rentals import Rental

ONE_DAY = timedelta(days=1)


def seconds_in_day_us(rental: Rental, day: date) -> int:
    """Microseconds of the rental inside [day 00:00, day+1 00:00) UTC; an open rental runs on."""
    lo = max(rental.started_at, day_start(day))
    hi = day_start(day) + ONE_DAY
    if rental.stopped_at is not None:
        hi = min(hi, rental.stopped_at)
    if hi <= lo:
        return 0
    delta = hi - lo
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def charge_usd_micros(rental: Rental, day: date) -> int:
    """seconds inside the day × price_per_gpu_usd × gpu_count / 3600, in micro-USD, half to even: from the
    microseconds, us × price × gpu_count / 3600 (micro-USD = µs × USD / s). In integers: a day close prices
    every live rental, and three `Fraction` operations cost ten times as much."""
    us = seconds_in_day_us(rental, day)
    if us == 0:
        return 0
    price = rental.price
    return divide_half_even(us * price.numerator * rental.listing.gpu_count, price.denominator * 3600)


def provider_part(charge: int, rate: Fraction) -> int:
    """floor(charge × rate)."""
    return charge * rate.numerator // rate.denominator  # a Fraction's denominator is positive: // is the floor


def divide_half_even(n: int, d: int) -> int:
    """n / d rounded to the nearest integer, a tie to the even one (`round(Fraction(n, d))`); d > 0."""
    q, r = divmod(n, d)  # n / d = q + r / d, 0 <= r < d
    if 2 * r > d or (2 * r == d and q % 2 == 1):
        q += 1
    return q


def days_touched(start: datetime, stop: datetime | None, first: date, last: date) -> list[date]:
    """The days in [first, last] that the interval [start, stop) overlaps."""
    lo = max(first, start.date())
    hi = last if stop is None else min(last, (stop - timedelta(microseconds=1)).date())
    out: list[date] = []
    d = lo
    while d <= hi:
        out.append(d)
        d += ONE_DAY
    return out
