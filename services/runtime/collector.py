"""The cyclic garbage collector's settings for long folds (a service's life, a replay).

A fold allocates a few objects per event, nearly all freed at once by reference counting, while its state only
grows. With Python's default thresholds (700, 10, 10) the collector walked that state again and again, so a
long fold moves what exists at its start out of the collector's sight (`gc.freeze`) and collects the young
generation far less often (how much less: below, per kind of fold). Memory is still freed by reference
counting; only cycles (the folds build none) wait longer for the collector.

Two kinds of cycles would wait for ever: among objects frozen at start-up, and among objects that had reached
the oldest generation (collected every 2,000 young collections, a billion net allocations: never, in a
service that handles a few thousand events a day). A chain client replacing a connection may leave either
kind. So a service also collects everything, the frozen objects included, when its consumer finds nothing to
do, at most every `Settings.full_collection_seconds` (`IdleCollections`), and freezes what survives again.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

REPLAY_YOUNG = 50_000
"""A replay's young objects are mostly its state growing: each is walked about once, however often the young
generation is collected, and a higher threshold measured no faster (`bench/replay.py`, 4 alternating rounds)."""

SERVICE_YOUNG = 500_000
"""A service's young objects are mostly the batches in flight (decoded epoch splits of a thousand node models
each, derived events, the rows to write): tens of thousands of live objects, none of them garbage, walked again
at every young collection. Measured with `gc.callbacks` over `bench/billing_e2e.py`'s 4-second drain: at
50,000, 14-15 young collections took 0.44-0.46 s (30 ms each, an eighth of the service's CPU); at 500,000 none
ran during the drain, and the service's peak RSS did not move (330-380 MB either way). On a 10-day log: 36-43
collections and 1.2-1.8 s at 50,000, one and 0.2 s at 500,000, peak RSS 360-440 MB against 413-455 MB."""


def quiet_collector(young: int) -> None:
    """Freeze what exists now and collect the young generation after `young` net allocations."""
    gc.freeze()
    gc.set_threshold(young, 20, 100)


def collect_everything() -> int:
    """A full collection of every generation, the frozen objects included; what survives is frozen again.
    Returns how many unreachable objects it found."""
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found


class IdleCollections:
    """Calls `collect_everything` when the service is idle (`on_idle`), at most every `every_seconds` (the
    first one `every_seconds` after start-up)."""

    def __init__(self, every_seconds: float, clock: Callable[[], float] = time.monotonic,
                 collect: Callable[[], int] = collect_everything) -> None:
        self.every_seconds = every_seconds
        self.clock = clock
        self.collect = collect
        self.last = clock()

    def on_idle(self) -> int | None:
        """Collect if it is time; returns what `collect` found, or None if it did not run."""
        if self.clock() - self.last < self.every_seconds:
            return None
        found = self.collect()
        self.last = self.clock()
        return found
