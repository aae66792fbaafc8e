"""The live topology, offline: every input event goes to each core that reads it, and every derived event is
processed by its readers right after its cause, before the next input (SPEC section 4, `sn51 replay`).

An input line of a type the replayed cores publish (`epoch.scored`, `day.closed`, ...) is refused, `wrong_topic`,
as the live services refuse one that arrives on another topic than its type's; the collateral service's events
are inputs here (its chain watcher is not replayed). Cores are visited in pipeline order (scoring, billing,
settlement), depth first, so an `epoch.closed` is
scored, billed (closing days) and only then seen by settlement planning. Duplicates (same id, same content)
are skipped; the same id with other content is refused (`id_conflict`); an event refused by a rule changes
nothing and its id stays unused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from schemas.codec import Refused, content_digest, decode
from schemas.envelope import Event
from schemas.topics import BILLING, ROUTES, SCORING, SETTLEMENT
from services.billing.core import BillingCore
from services.core import Core
from services.scoring.core import ScoringCore
from services.settlement.core import SettlementCore

# What the replayed cores publish; the collateral service's events are inputs here.
DERIVED_TYPES = frozenset(t for t, route in ROUTES.items() if route.topic in (SCORING, BILLING, SETTLEMENT))


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    event_id: str | None
    code: str
    reason: str


class Pipeline:
    def __init__(self, cores: list[Core] | None = None) -> None:
        self.cores: list[Core] = cores if cores is not None else [ScoringCore(), BillingCore(), SettlementCore()]
        self.seen: dict[str, bytes] = {}
        self._readers: dict[str, list[Core]] = {}
        self.awaiting_origin: list[Core] = [c for c in self.cores if getattr(c, "awaits_origin", False)]

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
        digest = content_digest(raw)
        known = self.seen.get(event.id)
        if known is not None:
            if known == digest:
                return []
            raise Refused("id_conflict", f"id {event.id} was seen before with other content")
        out: list[Event] = []
        for i, core in enumerate(self.readers(event.type)):
            try:
                derived = core.handle(event)
            except Refused:
                if i == 0:
                    raise
                continue  # a later reader refusing what an earlier one took: the earlier one's effect stands
            for child in derived:
                out.append(child)
                out.extend(self._derived(child))
        if self.awaiting_origin:  # accepted: the first input a core that counts days from it may not read
            for core in self.awaiting_origin:
                if event.type not in core.reads:
                    out.extend(core.handle(event))
            self.awaiting_origin = [c for c in self.awaiting_origin if getattr(c, "awaits_origin", False)]
        self.seen[event.id] = digest
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
