"""Executors and rentals as the log tells them: the one book scoring and billing both keep.

Pure. It answers two questions the same way for every core: which listing a rental uses (the latest
`executor.listed` of its executor processed before its `rental.started`, even if since delisted), and what a
rental's interval is once starts and stops have arrived in any order (a stop before its start is held and
applied when the start arrives; a second start is ignored; a second stop replaces the stop time).
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime
from fractions import Fraction

import msgspec

from schemas.codec import Refused
from schemas.envelope import Event
from schemas.events import ExecutorDelisted, ExecutorListed, RentalStarted, RentalStopped
from schemas.values import frac


def require_listed(event: Event, listed: Container[str]) -> None:
    """SPEC 3.4: "a rental (or stop) for an executor never listed is refused" (`unknown_executor`). An incident
    is not: it forfeits its executor's day whatever that executor is (one never listed earns nothing anyway)."""
    d = event.data
    if isinstance(d, RentalStarted | RentalStopped) and d.executor_id not in listed:
        raise Refused("unknown_executor", f"executor {d.executor_id} was never listed")


class Listing(msgspec.Struct, frozen=True):
    executor_id: str
    hotkey: str
    coldkey: str
    gpu_model: str
    gpu_count: int
    price: Fraction
    sysbox: bool

    @staticmethod
    def of(d: ExecutorListed) -> Listing:
        return Listing(d.executor_id, d.hotkey, d.coldkey, d.gpu_model, d.gpu_count,
                       frac(d.price_per_gpu_usd), d.sysbox)


class Rental(msgspec.Struct, frozen=True):
    rental_id: str
    executor_id: str
    price: Fraction
    started_at: datetime
    stopped_at: datetime | None
    listing: Listing
    start_event_id: str

    @property
    def active(self) -> bool:
        return self.stopped_at is None


class RentalChange(msgspec.Struct, frozen=True):
    """What an event did to a rental: `before` is None for a rental that just became known."""

    before: Rental | None
    after: Rental


class RentalBook:
    def __init__(self) -> None:
        self.listings: dict[str, Listing] = {}  # latest listing per executor, kept after a delisting
        self.listed: set[str] = set()
        self.rentals: dict[str, Rental] = {}
        self.held_stops: dict[str, datetime] = {}
        self.active_by_executor: dict[str, set[str]] = {}

    def check(self, event: Event) -> None:
        """Refuse (`unknown_executor`) a rental event for an executor never listed. Changes nothing."""
        require_listed(event, self.listings)

    def knows(self, executor_id: str) -> bool:
        return executor_id in self.listings

    def apply(self, event: Event) -> RentalChange | None:
        """Apply an executor.* or rental.* event (already checked); the rental change it made, if any."""
        d = event.data
        if isinstance(d, ExecutorListed):
            self.listings[d.executor_id] = Listing.of(d)
            self.listed.add(d.executor_id)
        elif isinstance(d, ExecutorDelisted):
            self.listed.discard(d.executor_id)
        elif isinstance(d, RentalStarted):
            return self._start(event, d)
        elif isinstance(d, RentalStopped):
            return self._stop(d)
        return None

    def _start(self, event: Event, d: RentalStarted) -> RentalChange | None:
        if d.rental_id in self.rentals:
            return None
        rental = Rental(d.rental_id, d.executor_id, frac(d.price_per_gpu_usd), d.started_at,
                        self.held_stops.pop(d.rental_id, None), self.listings[d.executor_id], event.id)
        self.rentals[d.rental_id] = rental
        if rental.active:
            self.active_by_executor.setdefault(d.executor_id, set()).add(d.rental_id)
        return RentalChange(None, rental)

    def _stop(self, d: RentalStopped) -> RentalChange | None:
        before = self.rentals.get(d.rental_id)
        if before is None:
            self.held_stops[d.rental_id] = d.stopped_at
            return None
        after = msgspec.structs.replace(before, stopped_at=d.stopped_at)
        self.rentals[d.rental_id] = after
        active = self.active_by_executor.get(before.executor_id)
        if active is not None:
            active.discard(d.rental_id)
            if not active:
                del self.active_by_executor[before.executor_id]
        return RentalChange(before, after)

    def active_rentals(self, executor_id: str) -> list[Rental]:
        return [self.rentals[r] for r in sorted(self.active_by_executor.get(executor_id, ()))]
