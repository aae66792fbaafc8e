"""Helpers of the scoring service tests: a simulated input log and what the core makes of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.envelope import Event
from schemas.topics import INPUT
from services.runtime.outbox import Message
from services.runtime.processor import Accepted, DeadLetter, decide, decode_message
from services.scoring.core import ScoringCore
from sn51.sim import Faults, lines


def simulated_log(seed: int, providers: int, days: float) -> list[bytes]:
    """A realistic input log from the simulator, with a few delivery faults and one params update."""
    faults = Faults(duplicates=0.03, out_of_order=0.03, malformed=0.01)
    return [line.text.encode() for line in lines(seed, providers, days, faults=faults, params_update=True)]


@dataclass
class Expected:
    """What the service must make of a log consumed in file order (offset i = line i)."""

    core: ScoringCore = field(default_factory=ScoringCore)
    derived: list[Event] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)  # (source offset, code)


def expected(log: list[bytes], topic: str) -> Expected:
    """The core over the log through the runtime's own pure decision (duplicates, id conflicts, refusals)."""
    out = Expected()
    known: dict[str, str] = {}
    for offset, raw in enumerate(log):
        message = Message(topic, 0, offset, None, raw)
        outcome = decide(out.core, known, message, decode_message(message), topic.removesuffix(INPUT))
        if isinstance(outcome, Accepted):
            out.derived.extend(outcome.derived)
        elif isinstance(outcome, DeadLetter):
            out.dead.append((offset, outcome.code))
    return out
