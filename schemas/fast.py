"""The fast path of `schemas.codec.decode`: one Rust validation, from the message bytes to the `Event`.

A tagged union (on `type`) of one envelope schema per event type (current schema_version only) is validated
straight from the bytes and calls `Event` with the validated fields (a keyword-only arguments schema: an
unknown key is refused, as in the envelope model), with its data model inside (validated by the model's own
validator). Two things make it cheaper than validating an envelope model, and neither changes
what is accepted:
- the envelope's time, in the canonical form (`2026-11-01T00:00:41Z`, up to six decimals), is parsed by
  pydantic's Rust datetime parser instead of the Python validator `parse_time`; any other spelling fails here
  and the slow path decides, with `parse_time` (so refusals and their reasons come from one place);
- no intermediate envelope model: the union's members are schemas of `Event` itself.
It returns None for anything it does not take, and the slow path decides. A test holds both paths to the same
`Event` (and the same bytes) on every line of a faulty simulated log, on odd values of every field and on
generated times (`tests/unit/schemas/test_fast_decode.py`).
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import SchemaValidator, core_schema

from schemas.envelope import Event
from schemas.events import CURRENT_VERSION, EVENT_MODELS
from schemas.values import EARLIEST, LATEST, MAX_TEXT_CHARS

# What `parse_time` and Rust's datetime parser read alike: UTC ('Z'), a real hour/minute/second, at most six
# decimals, ASCII digits. Days past the month's end fail in both.
CANONICAL_TIME = (
    r"^[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z$"
)


def _rust_time() -> core_schema.CoreSchema:
    return core_schema.chain_schema([
        core_schema.str_schema(strict=True, pattern=CANONICAL_TIME),
        core_schema.datetime_schema(microseconds_precision="truncate", ge=EARLIEST, lt=LATEST),  # as `parse_time`
    ])


def _strict_str() -> core_schema.CoreSchema:
    return core_schema.str_schema(strict=True, max_length=MAX_TEXT_CHARS)  # as `Envelope`'s `Text` fields


def _exactly(version: int) -> core_schema.CoreSchema:
    """A JSON integer equal to `version` (a literal would also take `true` and `1.0`, which the slow path's
    strict integer refuses)."""
    return core_schema.int_schema(strict=True, ge=version, le=version)


def _keyword(name: str, schema: core_schema.CoreSchema) -> core_schema.ArgumentsParameter:
    """A keyword-only argument of `Event`: the JSON object's keys are its keywords, and no other key is taken."""
    return core_schema.arguments_parameter(name, schema, mode="keyword_only")


def _envelope(type_: str) -> core_schema.CoreSchema:
    data = EVENT_MODELS[type_].__pydantic_core_schema__
    args = core_schema.arguments_schema(
        [
            _keyword("id", _strict_str()),
            _keyword("type", core_schema.literal_schema([type_])),
            _keyword("source", _strict_str()),
            _keyword("time", _rust_time()),
            _keyword("key", _strict_str()),
            _keyword("causation_id", core_schema.with_default_schema(core_schema.nullable_schema(_strict_str()),
                                                                     default=None)),
            _keyword("data", data),
            _keyword("schema_version", _exactly(CURRENT_VERSION[type_])),
        ],
    )
    return core_schema.call_schema(args, Event)


_VALIDATOR = SchemaValidator(
    core_schema.tagged_union_schema({t: _envelope(t) for t in EVENT_MODELS}, discriminator="type")
)


def decode_fast(raw: bytes | str) -> Event | None:
    try:
        event: Event = _VALIDATOR.validate_json(raw)
    except (ValidationError, ValueError):
        return None
    return event
