"""What every service core is: a pure fold over the events the service reads.

`handle(event)` returns the derived events, in order, and changes the core's state; it raises
`schemas.codec.Refused` (and then changes nothing) for an event the rules refuse. No I/O, no wall clock, no
randomness: the same events in the same order give the same state and the same derived events, live and in
`sn51 replay`. Duplicates are the inbox's business: a core sees each accepted event id once.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from schemas.envelope import Event


class Core(Protocol):
    service: ClassVar[str]
    reads: ClassVar[frozenset[str]]

    def handle(self, event: Event) -> list[Event]: ...
