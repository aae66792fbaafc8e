"""Value types of the event contract: UTC times, decimal strings, and their exact conversions.

Money never travels as a float: amounts are integers in their unit (rao, micro-USD, wei) and prices, rates,
shares and portions are decimal strings read exactly into `fractions.Fraction`.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, StrictInt, StrictStr, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

# ASCII digits only ([0-9], not \d, which also matches other scripts' digits, in Python and in pydantic's
# Rust patterns alike): RFC 3339 and a decimal string are written in ASCII. An offset is at most 23:59 (RFC
# 3339's time-numoffset; `datetime.fromisoformat` would take "+00:60" as an hour).
_TIME = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))$"
)
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
"""A decimal ("2.85"), an exponent of at most three digits allowed ("1e2"): "1e-99999999" is a number of a
hundred million digits, which, read exactly, would hang the service on it."""
DECIMAL_MAX_CHARS = 1000
"""A decimal string's longest: Python reads no integer of more than 4,300 digits from a string (it raises),
and none of the contract's figures needs a thousandth."""


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""Times are taken from EARLIEST (included) to LATEST (excluded). Python's clock ends at the years 1 and 9999,
and the cores count days and add grace periods and payout delays to times: near those ends that overflowed
and stopped a service (0001-01-01T00:00:00+01:00 is before year 1 in UTC), and an epoch closing in 9999 had
billing close three million days. No event of this product falls outside this century."""


def parse_time(value: Any) -> datetime:
    """RFC 3339 with a UTC offset, normalised to UTC; digits beyond the microsecond are truncated; within
    EARLIEST..LATEST."""
    try:
        dt: datetime | None = _parse_time(value)
    except OverflowError:  # an offset that carries the instant past year 1 or 9999
        dt = None
    if dt is None or not EARLIEST <= dt < LATEST:
        raise PydanticCustomError("bad_time", "time {value} outside 2000..2099", {"value": str(value)})
    return dt


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PydanticCustomError("bad_time", "time without a UTC offset")
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    if not isinstance(value, str):
        raise PydanticCustomError("bad_time", "time must be an RFC 3339 string")
    m = _TIME.match(value)
    if m is None:
        if re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$", value):
            raise PydanticCustomError("bad_time", "time without a UTC offset: {value}", {"value": value})
        raise PydanticCustomError("bad_time", "not an RFC 3339 time: {value}", {"value": value})
    try:
        dt = datetime.fromisoformat(value)  # C speed for what the pattern admits; truncates past microseconds
    except ValueError:
        dt = _from_groups(value, m)  # lower-case 't'/'z', which fromisoformat does not take
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)


def _from_groups(value: str, m: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second, frac_, zulu, sign, oh, om = m.groups()
    micro = int((frac_ or "").ljust(6, "0")[:6])
    if zulu:
        tz = UTC
    else:
        offset = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-offset if sign == "-" else offset)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except ValueError as exc:
        ctx = {"value": value, "err": str(exc)}
        raise PydanticCustomError("bad_time", "invalid time {value}: {err}", ctx) from None


@functools.lru_cache(maxsize=4096)  # derived events share their cause's time: hundreds per epoch
def format_time(dt: datetime) -> str:
    """Canonical RFC 3339 UTC form: seconds, microseconds only when non-zero, and 'Z'. Depends only on the
    instant (equal datetimes give the same text), so the cache may answer for an equal one."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat() + "Z"


UtcTime = Annotated[
    datetime,
    BeforeValidator(parse_time),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": r"(Z|z|[+-][0-9]{2}:[0-9]{2})$"}),
]
"""A point in time, always UTC, serialised as RFC 3339 with 'Z'."""

DecimalStr = Annotated[
    StrictStr,
    StringConstraints(pattern=_DECIMAL.pattern, max_length=DECIMAL_MAX_CHARS),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL.pattern, "maxLength": DECIMAL_MAX_CHARS}),
]
"""A decimal number carried as a string ("2.85"), read exactly with `frac`."""

MAX_TEXT_CHARS = 128
"""The longest identifier or name an input event may carry (an id, key, hotkey, executor, rental, model, ...):
hotkeys are 48 characters, ids 36. A longer one, accepted, could outgrow a PostgreSQL index entry (2,704 bytes;
the ledger's cause key holds four such strings) and stop the service at its write, after every restart."""

Text = Annotated[StrictStr, StringConstraints(max_length=MAX_TEXT_CHARS)]
"""A string of an input event: at most `MAX_TEXT_CHARS` characters."""

Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
"""An integer of an input event: what a PostgreSQL bigint holds. A larger one, accepted, would stop the
service at its write, and again after every restart; refused, it is a dead letter like any bad value."""


@functools.lru_cache(maxsize=4096)  # prices repeat (every rental of an executor), and parsing costs ~2 µs
def frac(value: str) -> Fraction:
    """The exact value of a decimal string (a `Fraction` is immutable: one may be shared)."""
    return Fraction(value)


def fmt_decimal(value: Fraction, places: int = 18) -> str:
    """A Fraction as a plain decimal string: exact when it terminates within `places` digits, otherwise
    rounded half to even at `places` digits; trailing zeros removed ("0.09", "1", "-2.5")."""
    scaled = value * 10**places
    n = scaled.numerator // scaled.denominator if scaled.denominator == 1 else round(scaled)
    sign = "-" if n < 0 else ""
    n = abs(n)
    whole, part = divmod(n, 10**places)
    digits = str(part).rjust(places, "0").rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def day_of(dt: datetime) -> date:
    return dt.astimezone(UTC).date()


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
