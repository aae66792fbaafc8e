"""Bytes to events and back, with the refusal codes of SPEC section 2.

`decode` is pure: it parses one message value, upcasts old versions, validates the typed data and applies the
stateless rules (`bad_time`, `bad_listing`, `bad_revenue`, `bad_netuid`, `bad_params`). Stateful rules
(`id_conflict`, `duplicate_epoch`, `bad_prices`, `unknown_executor`, a params update that does not fit the
current model table) belong to the inbox and the cores.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from schemas.envelope import Envelope, Event, canonical_json
from schemas.events import EVENT_MODELS, EpochClosed, ExecutorListed, ParamsUpdated, RentalStarted, RevenueReported
from schemas.fast import decode_fast
from schemas.upcasters import UnknownVersion, upcast
from schemas.values import frac

NETUID = 51


class Refused(Exception):
    """An event refused to the dead-letter topic: `code` is one of SPEC section 2, `reason` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def _has_time_error(exc: ValidationError) -> ValidationError | None:
    return exc if any(e["type"] == "bad_time" for e in exc.errors(include_url=False)) else None


def unstorable_text(raw: bytes | str) -> str | None:
    """Why a message's strings could not be stored or written again, or None. JSON escapes can spell what no
    text column and no UTF-8 output holds: U+0000 (PostgreSQL refuses it in text and jsonb) and an unpaired
    surrogate (`\\ud800`: not Unicode text; I-JSON, RFC 7493, forbids it). Taken, either would stop the
    service at its next write, and again after every restart (a poison message), or the replay at its next
    output line. Only a message with a `\\u` escape is looked into."""
    if b"\\u" not in raw if isinstance(raw, bytes) else "\\u" not in raw:
        return None
    try:
        stack: list[Any] = [json.loads(raw)]
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None  # the codec refuses it as it is
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return "a string holds U+0000, which no text field can store"
            try:
                value.encode()
            except UnicodeEncodeError:
                return "a string holds an unpaired surrogate: not Unicode text"
    return None


def decode(raw: bytes | str) -> Event:
    """One message value to an `Event`, or `Refused`.

    The fast path validates the whole envelope in one pass (`fast.decode_fast`); whatever it does not take
    (an error of any kind, an old schema_version) goes through the slow path below, which alone decides
    refusal codes. Both use the same data models, so they accept the same events and build equal `Event`s.
    Strings no text field can store are refused first (`unstorable_text`).
    """
    why = unstorable_text(raw)
    if why is not None:
        raise Refused("malformed", why)
    event = decode_fast(raw)
    if event is not None:
        _check_stateless(event.data)
        return event
    return decode_slow(raw)


def decode_slow(raw: bytes | str) -> Event:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused("malformed", f"not JSON: {exc}") from None
    except RecursionError:  # nesting past the interpreter's depth: a poison message must not stop a service
        raise Refused("malformed", "not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise Refused("malformed", "the message is not a JSON object")
    return decode_obj(obj)


def decode_obj(obj: dict[str, Any]) -> Event:
    try:
        env = Envelope.model_validate(obj)
    except ValidationError as exc:
        if _has_time_error(exc):
            raise Refused("bad_time", _first_error(exc)) from None
        raise Refused("bad_schema", _first_error(exc)) from None
    model = EVENT_MODELS.get(env.type)
    if model is None:
        raise Refused("unknown_type", f"unknown event type {env.type!r}")
    try:
        data_obj = upcast(env.type, env.schema_version, env.data)
    except UnknownVersion as exc:
        raise Refused("bad_schema", str(exc)) from None
    try:
        data = model.model_validate(data_obj)
    except ValidationError as exc:
        if _has_time_error(exc):
            raise Refused("bad_time", _first_error(exc)) from None
        code = "bad_params" if env.type == "params.updated" else "bad_schema"
        raise Refused(code, _first_error(exc)) from None
    _check_stateless(data)
    return Event(
        id=env.id,
        type=env.type,
        source=env.source,
        time=env.time,
        key=env.key,
        causation_id=env.causation_id,
        data=data,
    )


MAX_GPU_COUNT = 2**31 - 1  # what scoring's gpu_count column holds


def _check_price(price: str, code: str) -> None:
    """No negative price: billing's fees are never negative (a CHECK of its provider rows)."""
    if frac(price) < 0:
        raise Refused(code, f"price_per_gpu_usd {price} < 0")


def _check_listing(data: ExecutorListed) -> None:
    if data.gpu_count < 1:
        raise Refused("bad_listing", f"gpu_count {data.gpu_count} < 1")
    if data.gpu_count > MAX_GPU_COUNT:
        raise Refused("bad_listing", f"gpu_count {data.gpu_count} > {MAX_GPU_COUNT}")
    _check_price(data.price_per_gpu_usd, "bad_listing")


def _check_rental(data: RentalStarted) -> None:
    _check_price(data.price_per_gpu_usd, "bad_schema")


def _check_revenue(data: RevenueReported) -> None:
    for model, amount in data.revenue_usd_by_model.items():
        if frac(amount) < 0:
            raise Refused("bad_revenue", f"negative revenue {amount} for {model}")


def _check_netuid(data: EpochClosed) -> None:
    if data.netuid != NETUID:
        raise Refused("bad_netuid", f"netuid {data.netuid} is not {NETUID}")


_CAP_KEY = re.compile(r"0|[1-9][0-9]*")  # a GPU count as JSON writes an integer: ASCII, no leading zero


def check_params_ranges(p: ParamsUpdated) -> None:
    """Values that would break an invariant of the money or stop the system, refused whole (beyond the spec's
    list, written down in the README): a rate, share or portion that would pay a provider more than there is
    or less than nothing (`rental_fees_rate`, `total_burn_emission`, `gpu_portion_alpha` outside [0, 1], a
    negative `portion`, a `tempo` or `seconds_per_block` below 1), a day closing before it ends (a negative
    `day_close_grace_seconds`), and what no run can do (`max_batch` below 1, `payout_hour_utc` outside 0..23,
    a grace or payout delay past any date Python's clock can name: a billion seconds, a hundred years).
    Values the spec's own rules take as they are stay accepted: a negative model price or cap, a cap keyed 0
    ("a model price > 0", "a cap key ... with cap > 0"), an empty `vram_window` (every benchmark outside it), a
    negative `payout_delay_days` or `min_payout_rao`. A cap key must still be a GPU count, written as JSON
    writes an integer."""

    def bad(msg: str) -> Refused:
        return Refused("bad_params", msg)

    for name in ("total_burn_emission", "rental_fees_rate", "gpu_portion_alpha"):
        v = getattr(p, name)
        if v is not None and not (0 <= frac(v) <= 1):
            raise bad(f"{name} {v} outside [0, 1]")
    for name in ("tempo", "seconds_per_block", "max_batch"):
        v = getattr(p, name)
        if v is not None and v < 1:
            raise bad(f"{name} {v} < 1")
    if p.day_close_grace_seconds is not None and not 0 <= p.day_close_grace_seconds <= 10**9:
        raise bad(f"day_close_grace_seconds {p.day_close_grace_seconds} outside 0..10^9 (a day closing before "
                  "it ends, or past any date the clock can name)")
    if p.payout_delay_days is not None and not -36_600 <= p.payout_delay_days <= 36_600:
        raise bad(f"payout_delay_days {p.payout_delay_days} outside ±36,600 (past any date the clock can name)")
    if p.payout_hour_utc is not None and not 0 <= p.payout_hour_utc <= 23:
        raise bad(f"payout_hour_utc {p.payout_hour_utc} outside 0..23")
    for name, spec in (p.models or {}).items():
        if spec.portion is not None and frac(spec.portion) < 0:
            raise bad(f"models.{name}.portion is negative")
        for k in spec.caps or {}:
            if not _CAP_KEY.fullmatch(k):
                raise bad(f"models.{name}.caps key {k!r} is not a GPU count")


# The stateless rules by data type (a dict lookup: most events, benchmarks, have none).
_STATELESS: dict[type, Callable[[Any], None]] = {
    ExecutorListed: _check_listing,
    RentalStarted: _check_rental,
    RevenueReported: _check_revenue,
    EpochClosed: _check_netuid,
    ParamsUpdated: check_params_ranges,
}


def _check_stateless(data: object) -> None:
    check = _STATELESS.get(type(data))
    if check is not None:
        check(data)


def content_hash(raw: bytes | str) -> str:
    """What 'the same content' means for an id seen twice: the same message bytes (surrounding white space
    aside). A redelivery or a re-send of the stored event is byte-identical; anything else under a used id
    is a conflict, refused rather than guessed at. Hex, as the inbox stores it."""
    return content_digest(raw).hex()


def content_digest(raw: bytes | str) -> bytes:
    """`content_hash` as its 16 bytes (what `sn51 replay` keeps per event id: half the memory of the hex)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data[-2:] == b"}\n" and data[:1] == b"{":  # a line as read from a log: only its newline to strip
        return hashlib.blake2b(memoryview(data)[:-1], digest_size=16).digest()
    return hashlib.blake2b(data.strip(), digest_size=16).digest()


def encode(event: Event) -> bytes:
    return event.to_bytes()


def encode_obj(obj: dict[str, Any]) -> bytes:
    return canonical_json(obj).encode()
