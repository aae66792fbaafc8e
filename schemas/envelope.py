"""The envelope every Kafka message value carries, and the decoded event the cores fold over."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from schemas.events import Data
from schemas.values import UtcTime, format_time

ID_NAMESPACE = uuid.UUID("5b1c0d51-0000-4000-8000-000000000051")


class Envelope(BaseModel):
    """SPEC section 2: `{"id", "type", "schema_version", "source", "time", "key", "causation_id", "data"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StrictStr
    type: StrictStr
    schema_version: StrictInt
    source: StrictStr
    time: UtcTime
    key: StrictStr
    causation_id: StrictStr | None = None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
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
        return {
            "id": self.id,
            "type": self.type,
            "schema_version": self.schema_version,
            "source": self.source,
            "time": format_time(self.time),
            "key": self.key,
            "causation_id": self.causation_id,
            "data": self.data.model_dump(mode="json"),
        }

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    def to_bytes(self) -> bytes:
        return self.to_json().encode()


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the one byte form used for hashes and for replay output."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derived_id(type_: str, *causes: str) -> str:
    """Deterministic id of a derived event: uuid5 over its type and the ids (or keys) of what caused it."""
    return str(uuid.uuid5(ID_NAMESPACE, "|".join((type_, *causes))))


def derive(
    type_: str, data: Data, cause: Event, *, source: str, key: str, discriminator: str = ""
) -> Event:
    """A derived event: deterministic id, the time of its cause, `causation_id` set to the cause."""
    return Event(
        id=derived_id(type_, cause.id, discriminator),
        type=type_,
        source=source,
        time=cause.time,
        key=key,
        causation_id=cause.id,
        data=data,
    )
