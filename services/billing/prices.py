"""The prices a day's statement converts at (SPEC 3.4): the `epoch.closed` with the greatest closed_at before
D+1 00:00 (on a tie, the later in the log), else the one that closes D."""

from __future__ import annotations

import bisect
from datetime import date, datetime
from fractions import Fraction

from schemas.values import day_start
from services.billing.fees import ONE_DAY


class PriceBook:
    def __init__(self) -> None:
        self._keys: list[tuple[datetime, int]] = []
        self._prices: dict[tuple[datetime, int], tuple[Fraction, Fraction]] = {}
        self._seq = 0

    def add(self, closed_at: datetime, tao_usd: Fraction, alpha_tao: Fraction) -> None:
        self._seq += 1
        key = (closed_at, self._seq)
        bisect.insort(self._keys, key)
        self._prices[key] = (tao_usd, alpha_tao)

    def for_day(self, day: date, fallback: tuple[Fraction, Fraction]) -> tuple[Fraction, Fraction]:
        bound = (day_start(day + ONE_DAY), 0)
        i = bisect.bisect_left(self._keys, bound)
        return self._prices[self._keys[i - 1]] if i > 0 else fallback
