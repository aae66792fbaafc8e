"""What every service core is: a pure fold over the events the service reads.

`handle(event)` returns the derived events, in order, and changes the core's state; it raises
`schemas.codec.Refused` (and then changes nothing) for an event the rules refuse. No I/O, no wall clock, no
randomness: the same events in the same order give the same state and the same derived events, live and in
`sn51 replay`. Duplicates are the inbox's business: a core sees each accepted event id once.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from schemas.envelope import Event
from schemas.topics import INPUT_TYPES


class Core(Protocol):
    service: ClassVar[str]
    reads: ClassVar[frozenset[str]]

    def handle(self, event: Event) -> list[Event]: ...


def awaits_origin(core: Core) -> bool:
    """Whether `core` counts its days from the first accepted input of the log and has not been handed it yet
    (billing and settlement declare an `awaits_origin` property; other cores never await)."""
    return bool(getattr(core, "awaits_origin", False))


def takes(core: Core, type_: str) -> bool:
    """Whether `core` folds an event of this type now: a type it reads, or any input type while the core
    awaits its origin (so it is handed the log's first accepted input even when that is a benchmark)."""
    return type_ in core.reads or (type_ in INPUT_TYPES and awaits_origin(core))
