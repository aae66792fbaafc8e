"""The live topology, offline: every input event goes to each core that reads it, and every derived event is
processed by its readers right after its cause, before the next input (SPEC section 4, `sn51 replay`).

Cores are visited in pipeline order (scoring, billing, settlement), depth first, so an `epoch.closed` is scored,
billed (closing days) and only then seen by settlement planning. Duplicates (same id, same content) are skipped;
the same id with other content is refused (`id_conflict`); an event refused by a rule changes nothing and its id
stays unused. An input line of a type the replayed cores publish (`epoch.scored`, `day.closed`, ...) is refused,
`wrong_topic`, as the live services refuse one that arrives on another topic than its type's; the collateral
service's events are inputs here (its chain watcher is not replayed). `benchmark` takes a benchmark line decoded
by another process (`services.benchmark_lines`) to the same outcome as `line`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from schemas.codec import Refused, content_digest, decode
from schemas.envelope import Cause, Event
from schemas.topics import BILLING, ROUTES, SCORING, SETTLEMENT
from services.billing.core import BillingCore
from services.core import Core, awaits_origin
from services.scoring.core import ScoringCore
from services.scoring.scores import BenchmarkFacts
from services.settlement.core import SettlementCore

if TYPE_CHECKING:
    from services.benchmark_lines import BenchmarkLine

# What the replayed cores publish; the collateral service's events are inputs here.
DERIVED_TYPES = frozenset(t for t, route in ROUTES.items() if route.topic in (SCORING, BILLING, SETTLEMENT))


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    event_id: str | None
    code: str
    reason: str


BENCHMARK = "benchmark.completed"


@runtime_checkable
class BenchmarkReader(Protocol):
    """A core that can fold a benchmark from its facts (`services.scoring.core.ScoringCore.benchmarked`)."""

    def benchmarked(self, cause: Cause, executor_id: str, facts: BenchmarkFacts) -> list[Event]: ...


class Pipeline:
    def __init__(self, cores: list[Core] | None = None) -> None:
        self.cores: list[Core] = cores if cores is not None else [ScoringCore(), BillingCore(), SettlementCore()]
        self.seen: dict[str, bytes] = {}
        self._readers: dict[str, list[Core]] = {}
        self.awaiting_origin: list[Core] = [c for c in self.cores if awaits_origin(c)]
        # Whether every reader of benchmark.completed can take a benchmark's facts without its `Event`.
        self.benchmark_path = all(isinstance(c, BenchmarkReader) for c in self.readers(BENCHMARK))

    def readers(self, type_: str) -> list[Core]:
        found = self._readers.get(type_)
        if found is None:
            found = self._readers[type_] = [c for c in self.cores if type_ in c.reads]
        return found

    def feed(self, event: Event, raw: bytes | str) -> list[Event]:
        """One decoded input event and its message bytes (what "the same content" is judged on) through the
        topology; raises `Refused`."""
        if event.type in DERIVED_TYPES:
            route = ROUTES[event.type]
            raise Refused("wrong_topic", f"{event.type} is published by {route.sources[0]} on {route.topic}; "
                                         "the replay derives it, it is not an input")
        return self._fold(event.id, content_digest(raw), event.type, lambda core: core.handle(event), event)

    def benchmark(self, number: int, raw: bytes, facts: BenchmarkLine | Refusal | None) -> list[Event] | Refusal:
        """A benchmark line that another process decoded (`services.benchmark_lines`): `facts` is what it found,
        the codec's refusal, or None (not a benchmark after all). The same outcome as `line(number, raw)`."""
        if facts is None or not self.benchmark_path or self.awaiting_origin:
            return self.line(number, raw)
        if isinstance(facts, Refusal):
            return facts
        try:
            return self._fold(facts.id, facts.digest, BENCHMARK,
                              lambda core: cast(BenchmarkReader, core).benchmarked(facts, facts.executor_id, facts),
                              None)
        except Refused as r:
            return Refusal(number, facts.id, r.code, r.reason)

    def _fold(self, event_id: str, digest: bytes, type_: str, handle: Callable[[Core], list[Event]],
              event: Event | None) -> list[Event]:
        """An accepted input (or a duplicate, or a conflict) through its readers, each handled by `handle`;
        `event` is None only on the benchmark path, which is not taken while a core awaits its origin."""
        known = self.seen.get(event_id)
        if known is not None:
            if known == digest:
                return []
            raise Refused("id_conflict", f"id {event_id} was seen before with other content")
        out: list[Event] = []
        for i, core in enumerate(self.readers(type_)):
            try:
                derived = handle(core)
            except Refused:
                if i == 0:
                    raise
                continue  # a later reader refusing what an earlier one took: the earlier one's effect stands
            for child in derived:
                out.append(child)
                out.extend(self._derived(child))
        if self.awaiting_origin and event is not None:  # accepted: the first input of the log
            for core in self.awaiting_origin:
                if type_ not in core.reads:
                    out.extend(core.handle(event))
            self.awaiting_origin = [c for c in self.awaiting_origin if awaits_origin(c)]
        self.seen[event_id] = digest
        return out

    def _derived(self, event: Event) -> list[Event]:
        out: list[Event] = []
        for core in self.readers(event.type):
            for child in core.handle(event):
                out.append(child)
                out.extend(self._derived(child))
        return out

    def line(self, number: int, raw: bytes | str) -> list[Event] | Refusal:
        """One line of an input log through the topology: what it derives, in order, or its refusal."""
        event_id: str | None = None
        try:
            event = decode(raw)
            event_id = event.id
            return self.feed(event, raw)
        except Refused as r:
            return Refusal(number, event_id, r.code, r.reason)

    def run(self, lines: Iterable[bytes | str]) -> Iterator[Event | Refusal]:
        for number, raw in enumerate(lines, start=1):
            if not raw or raw.isspace():
                continue
            out = self.line(number, raw)
            if isinstance(out, Refusal):
                yield out
            else:
                yield from out
