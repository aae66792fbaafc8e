"""The simulator behind `sn51 simulate`: a deterministic platform and chain producing the input log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sn51.sim.faults import Faults, Line, inject
from sn51.sim.stream import DEFAULT_START, generate


def lines(
    seed: int,
    providers: int,
    days: float,
    *,
    faults: Faults | None = None,
    start: datetime = DEFAULT_START,
    benchmark_interval_minutes: float = 15,
    params_update: bool = False,
) -> Iterator[Line]:
    """The lines of a run (canonical JSON, one envelope each, with its Kafka key), with the faults asked for."""
    envelopes = generate(
        seed, providers, days, start=start, benchmark_interval_minutes=benchmark_interval_minutes,
        params_update=params_update,
    )
    return inject(envelopes, faults or Faults(), seed)


__all__ = ["DEFAULT_START", "Faults", "Line", "generate", "inject", "lines"]
