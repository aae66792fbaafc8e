"""Rental fees of one rental on one UTC day (SPEC 3.4), exact to the microsecond."""

from __future__ import annotations

import math
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
    """seconds inside the day × price_per_gpu_usd × gpu_count / 3600, in micro-USD, half to even."""
    us = seconds_in_day_us(rental, day)
    if us == 0:
        return 0
    return round(Fraction(us) * rental.price * rental.listing.gpu_count / 3600)


def provider_part(charge: int, rate: Fraction) -> int:
    return math.floor(charge * rate)


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
