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
        log = logs.setdefault(service, ServiceLog())
        if kind == "consumed":
            log.consumed.append(json.dumps(rec["event"]).encode())
        elif kind == "published":
            log.published.append(rec["event"])
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
