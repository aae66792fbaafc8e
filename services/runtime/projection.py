"""A service's read model in two steps, for the runtime that stores one batch while its core decides the next.

- `prepare(event, derived)` runs in the decide step, right after the core accepted `event`: CPU only, it
  builds what will be written (rows) from the event and its derived events alone, never from the core's
  state (the core has moved on by the time the batch is stored). `None` means nothing to write.
- `write(conn, prepared)` runs in the batch's transaction with what `prepare` returned for the batch's
  accepted events, in order: I/O only, so the database works while the core decides the next batch.

A read model that changes seldom can instead be a per-event hook (`ServiceSpec.project`), called in the store
step; it too must be a function of the event and what it derived.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import asyncpg

from schemas.envelope import Event

T = TypeVar("T")


class Projection(Protocol[T]):
    def prepare(self, event: Event, derived: list[Event]) -> T | None: ...

    async def write(self, conn: asyncpg.Connection, prepared: list[T]) -> None: ...
