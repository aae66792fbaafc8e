"""The fast path of `schemas.codec.decode`: one Rust validation of envelope and data together.

A discriminated union of one envelope model per event type (current schema_version only) is validated
straight from the message bytes. It returns None for anything it does not take, and the slow path decides.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter, ValidationError, create_model

from schemas.envelope import Event
from schemas.events import CURRENT_VERSION, EVENT_MODELS
from schemas.values import UtcTime


class _FastEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr
    source: StrictStr
    time: UtcTime
    key: StrictStr
    causation_id: StrictStr | None = None


def _envelope_model(type_: str) -> type[_FastEnvelope]:
    name = "Fast_" + type_.replace(".", "_")
    fields: dict[str, Any] = {
        "type": (Literal[type_], ...),
        "schema_version": (Literal[CURRENT_VERSION[type_]], ...),
        "data": (EVENT_MODELS[type_], ...),
    }
    model: type[_FastEnvelope] = create_model(name, __base__=_FastEnvelope, **fields)
    return model


_MODELS = tuple(_envelope_model(t) for t in EVENT_MODELS)
_UNION: Any = Annotated[Union[_MODELS], Field(discriminator="type")]  # noqa: UP007
_ADAPTER: TypeAdapter[Any] = TypeAdapter(_UNION)


def decode_fast(raw: bytes | str) -> Event | None:
    try:
        env = _ADAPTER.validate_json(raw)
    except (ValidationError, ValueError):
        return None
    return Event(
        id=env.id, type=env.type, source=env.source, time=env.time, key=env.key,
        causation_id=env.causation_id, data=env.data, schema_version=env.schema_version,
    )
