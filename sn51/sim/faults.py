"""Delivery faults on a clean event stream: duplicates, out-of-order lines with the same key, malformed lines.

Each fault is drawn from its own seeded `random.Random`, so the clean events (and their ids) are the same
with or without faults. A malformed line is added beside the clean ones (never replaces one), with a fresh
id, and says which refusal code of SPEC section 2 it must get.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from schemas.envelope import canonical_json as encode
from sn51.sim.keys import uuid4

# Types whose lines may be delivered late, after the next line with the same key.
SWAPPABLE = frozenset({"rental.started", "rental.stopped", "rental.incident", "benchmark.completed"})
RENTAL = frozenset({"rental.started", "rental.stopped", "rental.incident"})
MALFORMED_KINDS = ("invalid_json", "time_without_offset", "unknown_field", "gpu_count_zero",
                   "negative_revenue", "wrong_netuid")


class Line(NamedTuple):
    key: str
    text: str
    fault: str | None = None  # "duplicate", "out_of_order", or a malformed kind
    code: str | None = None  # the refusal code a malformed line must get


@dataclass(frozen=True, slots=True)
class Faults:
    duplicates: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicates", "out_of_order", "malformed"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise ValueError(f"{name.replace('_', '-')} rate {rate} is not between 0 and 1")

    @property
    def any(self) -> bool:
        return bool(self.duplicates or self.out_of_order or self.malformed)


def clean_lines(envelopes: Iterable[dict[str, Any]]) -> Iterator[Line]:
    for env in envelopes:
        yield Line(env["key"], encode(env))


def _broken(kind: str, env: dict[str, Any], last: dict[str, dict[str, Any]], rng: random.Random) -> Line | None:
    """One malformed line made from `env` (or the last listing / epoch seen), with its refusal code."""
    fresh = {**env, "id": uuid4(rng)}
    if kind == "invalid_json":
        text = encode(fresh)
        return Line(env["key"], text[: rng.randint(1, len(text) - 1)], kind, "malformed")
    if kind == "time_without_offset":
        return Line(env["key"], encode({**fresh, "time": env["time"].rstrip("Z")}), kind, "bad_time")
    if kind == "unknown_field":
        code = "bad_params" if env["type"] == "params.updated" else "bad_schema"
        return Line(env["key"], encode({**fresh, "data": {**env["data"], "comment": "late"}}), kind, code)
    if kind == "negative_revenue":
        t = env["time"]
        data = {"window_start": t, "window_end": t, "revenue_usd_by_model": {"NVIDIA H200": "-12.5"}}
        bad = {**fresh, "type": "revenue.reported", "key": "revenue", "data": data}
        return Line("revenue", encode(bad), kind, "bad_revenue")
    base = last.get("executor.listed" if kind == "gpu_count_zero" else "epoch.closed")
    if base is None:
        return None
    if kind == "gpu_count_zero":
        bad = {**base, "id": fresh["id"], "time": env["time"], "data": {**base["data"], "gpu_count": 0}}
        return Line(base["key"], encode(bad), kind, "bad_listing")
    bad = {**base, "id": fresh["id"], "time": env["time"], "data": {**base["data"], "netuid": 52}}
    return Line(base["key"], encode(bad), kind, "bad_netuid")


def inject(envelopes: Iterable[dict[str, Any]], faults: Faults, seed: int) -> Iterator[Line]:
    """The lines of `envelopes`, with the faults of `faults` drawn from a generator seeded by `seed`."""
    if not faults.any:
        yield from clean_lines(envelopes)
        return
    rng = random.Random(f"sn51-sim:{seed}:faults")
    last: dict[str, dict[str, Any]] = {}
    held: dict[str, tuple[Line, bool]] = {}  # key -> (late line, waits for a rental event)
    repeats: list[tuple[int, int, Line]] = []  # (after line n, tie, line)
    n = 0

    def out(line: Line, type_: str) -> Iterator[Line]:
        nonlocal n
        n += 1
        yield line
        pending = held.get(line.key)
        if pending is not None and (not pending[1] or type_ in RENTAL):
            del held[line.key]
            n += 1
            yield pending[0]
        while repeats and repeats[0][0] <= n:
            n += 1
            yield heapq.heappop(repeats)[2]

    for env in envelopes:
        type_ = env["type"]
        line = Line(env["key"], encode(env))
        if type_ in ("executor.listed", "epoch.closed"):
            last[type_] = env
        if (
            faults.out_of_order
            and type_ in SWAPPABLE
            and line.key not in held
            and rng.random() < faults.out_of_order
        ):
            held[line.key] = (line._replace(fault="out_of_order"), type_ in RENTAL)
        else:
            if faults.duplicates and rng.random() < faults.duplicates:
                heapq.heappush(repeats, (n + rng.randint(1, 200), n, line._replace(fault="duplicate")))
            yield from out(line, type_)
        if faults.malformed and rng.random() < faults.malformed:
            broken = _broken(rng.choice(MALFORMED_KINDS), env, last, rng)
            if broken is not None:
                yield from out(broken, "")
    for late, _ in held.values():
        yield late
    while repeats:
        yield heapq.heappop(repeats)[2]
