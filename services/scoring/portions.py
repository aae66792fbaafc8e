"""gpu_portion (SPEC 3.2): each GPU model's share of the rented pool, moved towards its share of revenue.

Pure and exact. Portions start from the table (`DEFAULT_PORTIONS`) and are kept for every model of the
table, every model a `params.updated` adds (its `portion`, else what revenue reports gave it, else 0), and
every model named in a revenue report so far (added at 0, even when the report's total is 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction

PLACES = 18
_SCALE = 10**PLACES


def round_portion(x: Fraction) -> Fraction:
    """x rounded to 18 decimal places, half to even (`round` of a Fraction is half-even)."""
    return Fraction(round(x * _SCALE), _SCALE)


def with_models(portions: Mapping[str, Fraction], names: Iterable[str]) -> dict[str, Fraction]:
    """`portions` with every model of `names` kept, at 0 when new."""
    out = dict(portions)
    for name in names:
        out.setdefault(name, Fraction(0))
    return out


def after_revenue(
    portions: Mapping[str, Fraction], revenue: Mapping[str, Fraction], alpha: Fraction
) -> tuple[dict[str, Fraction], bool]:
    """The portions after a revenue report, and whether they moved (total T > 0).

    Every model the report names is kept (at 0 when new). With T > 0, for every kept model:
    share = revenue / T (0 if absent); portion ← portion + alpha × (share − portion), rounded.
    """
    out = with_models(portions, revenue)
    total = sum(revenue.values(), Fraction(0))
    if total <= 0:
        return out, False
    zero = Fraction(0)
    for name, portion in out.items():
        share = revenue.get(name, zero) / total
        out[name] = round_portion(portion + alpha * (share - portion))
    return out, True
