"""The audit export format: JSON lines, one record each.

`{"kind": "consumed", "service": S, "seq": N, "event": {...}}` — S's inbox in processing order (its log);
`{"kind": "published", "service": S, "seq": N, "event": {...}}` — what S decided to publish (its outbox);
`{"kind": "dead_letter", "service": S, "code": C, "reason": R, "raw": "..."}` — what S refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import Refused, decode_obj


@dataclass
class ServiceLog:
    consumed: list[bytes] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def read_export(lines: Iterable[bytes | str]) -> dict[str, ServiceLog]:
    logs: dict[str, ServiceLog] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            kind, service = rec["kind"], rec["service"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ValueError(f"export line {number} is not an audit record: {exc}") from None
        if not isinstance(kind, str) or not isinstance(service, str):
            raise ValueError(f"export line {number} is not an audit record: kind and service must be strings")
        event = rec.get("event")
        if kind in ("consumed", "published") and not isinstance(event, dict):
            raise ValueError(f"export line {number}: its event is not a JSON object")
        log = logs.setdefault(service, ServiceLog())
        if kind == "consumed":  # replayed through the codec, which refuses what it must
            log.consumed.append(json.dumps(event).encode())
        elif kind == "published":  # read field by field by verify and statement: a valid event, or no export
            try:
                decode_obj(event)
            except Refused as refused:
                raise ValueError(f"export line {number}: its event is not valid: {refused}") from None
            log.published.append(event)
        elif kind == "dead_letter":
            log.dead_letters.append(rec)
        else:
            raise ValueError(f"export line {number}: unknown kind {kind!r}")
    return logs


def record(kind: str, service: str, seq: int, event: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, "service": service, "seq": seq, "event": event}, sort_keys=True)


def iter_published(logs: dict[str, ServiceLog]) -> Iterator[dict[str, Any]]:
    for log in logs.values():
        yield from log.published
