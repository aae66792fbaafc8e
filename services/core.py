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


def takes(core: Core, type_: str) -> bool:
    """Whether `core` folds an event of this type now: a type it reads, or any input type while the core
    `awaits_origin` (billing counts its days from the first accepted event of the log, whatever its type, so it
    is handed that one event even when it is a benchmark)."""
    return type_ in core.reads or (type_ in INPUT_TYPES and getattr(core, "awaits_origin", False))
