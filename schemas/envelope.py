"""The envelope every Kafka message value carries, and the decoded event the cores fold over."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any, Protocol

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from schemas.events import Data
from schemas.values import Text, UtcTime, format_time

ID_NAMESPACE = uuid.UUID("5b1c0d51-0000-4000-8000-000000000051")


class Envelope(BaseModel):
    """SPEC section 2: `{"id", "type", "schema_version", "source", "time", "key", "causation_id", "data"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text
    type: StrictStr
    schema_version: StrictInt
    source: Text
    time: UtcTime
    key: Text
    causation_id: Text | None = None
    data: dict[str, Any]


class Event(msgspec.Struct, frozen=True):
    """A decoded, validated event: envelope fields plus its typed data."""

    id: str
    type: str
    source: str
    time: datetime
    key: str
    causation_id: str | None
    data: Data
    schema_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = self.data.__pydantic_serializer__.to_python(self.data, mode="json")  # = model_dump, 40 % less
        return envelope_dict(self.id, self.type, self.schema_version, self.source, self.time, self.key,
                             self.causation_id, data)

    def to_json(self) -> str:
        return self.to_bytes().decode()

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.to_dict())


class Written(Event, frozen=True):
    """A derived event whose bytes were written when it was derived, from the validated fields of a plain data
    model (`schemas.plain`): `to_bytes` returns them. They are the bytes `Event.to_bytes` writes for the same
    event (a property test holds the two together); its fields are never replaced (no code replaces a derived
    event's fields), which would leave the bytes behind."""

    wire: bytes = b""

    def to_bytes(self) -> bytes:
        return self.wire


def envelope_dict(id_: str, type_: str, schema_version: int, source: str, time: datetime, key: str,
                  causation_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """An event as the JSON object it travels as (SPEC section 2), its data already in JSON form. The keys are
    in sorted order, which the canonical form sorts them into anyway: an ordered dict sorts fastest."""
    return {"causation_id": causation_id, "data": data, "id": id_, "key": key, "schema_version": schema_version,
            "source": source, "time": format_time(time), "type": type_}


EVENT_FIELDS: tuple[str, ...] = Event.__struct_fields__
"""The envelope fields of an `Event` (a subclass may carry more beside them, never published)."""

_STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the one byte form used for hashes and for replay output, i.e.
    `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.

    Written by orjson, several times faster (the hot path of every derived event and of the simulator).
    orjson writes the same bytes for every value an event holds (a property test holds the two together); it
    refuses integers beyond 64 bits (wei amounts) and strings that are not valid Unicode, and those values go
    to the standard library. No event holds a float (every model is strict: integers and decimal strings),
    the one type the two would print differently."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _STDLIB.encode(value)


def canonical_bytes(value: Any) -> bytes:
    """`canonical_json(value).encode()`, without the round trip through `str`."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _STDLIB.encode(value).encode()


_NAMESPACE_BYTES = ID_NAMESPACE.bytes
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}  # a hex digit's top two bits set to 10


def derived_id(type_: str, *causes: str) -> str:
    """Deterministic id of a derived event: uuid5 over its type and the ids (or keys) of what caused it.

    `str(uuid.uuid5(ID_NAMESPACE, name))`, computed on the hex digest without building `UUID` objects (one per
    derived event; a test holds the two together): SHA-1 of namespace and name, its first 16 bytes, the
    version digit 5 and the RFC 4122 variant set."""
    h = hashlib.sha1(_NAMESPACE_BYTES + "|".join((type_, *causes)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


class Cause(Protocol):
    """What a derived event takes of its cause: the id and the time (an `Event`, or the facts of one)."""

    @property
    def id(self) -> str: ...

    @property
    def time(self) -> datetime: ...


def derive(
    type_: str, data: Data, cause: Cause, *, source: str, key: str, discriminator: str = ""
) -> Event:
    """A derived event: deterministic id, the time of its cause, `causation_id` set to the cause."""
    # positional: a quarter less than keywords, on the path of every derived event
    return Event(derived_id(type_, cause.id, discriminator), type_, source, cause.time, key, cause.id, data)
