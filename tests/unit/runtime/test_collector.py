"""The collector's settings: full collections when idle reach the cycles a frozen or old generation holds."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.runtime.collector import IdleCollections, collect_everything


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


def frozen_cycle() -> weakref.ref[Node]:
    """A cycle frozen out of the collector's sight (as a service freezes its state after the rebuild), then
    dropped: a weak reference to one of its two nodes."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.freeze()
    return weakref.ref(a)


def test_a_cycle_frozen_at_start_up_is_freed_only_by_a_collection_of_everything(unfrozen_afterwards: None) -> None:
    gone = frozen_cycle()
    gc.collect()  # every generation, but not the frozen objects
    assert gone() is not None
    assert collect_everything() >= 2
    assert gone() is None
    assert gc.get_freeze_count() > 0  # what survived is frozen again


def test_idle_collections_run_at_most_every_interval() -> None:
    now = [100.0]
    runs: list[float] = []

    def collect() -> int:
        runs.append(now[0])
        return 7

    idle = IdleCollections(600, clock=lambda: now[0], collect=collect)
    assert idle.on_idle() is None  # not in the first interval after start-up
    now[0] = 699.0
    assert idle.on_idle() is None
    now[0] = 700.0
    assert idle.on_idle() == 7
    now[0] = 1299.0
    assert idle.on_idle() is None  # the interval counts from the last collection
    now[0] = 1300.0
    assert idle.on_idle() == 7
    assert runs == [700.0, 1300.0]
