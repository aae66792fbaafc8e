"""Live, billing reads the input and scoring's splits from two topics, interleaved any way. With
`await_scores` its derived events are the replay's whatever the interleaving."""

from __future__ import annotations

import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode
from schemas.envelope import Event
from services.billing.core import BillingCore
from services.scoring.core import ScoringCore
from sn51.sim import lines


@functools.cache
def billing_inputs() -> tuple[list[Event], list[Event]]:
    """(input events billing reads, scoring's epoch.scored events), each in its own topic order."""
    scoring = ScoringCore()
    inputs: list[Event] = []
    scores: list[Event] = []
    for line in lines(11, 4, 3.2, benchmark_interval_minutes=120):
        event = decode(line.text)
        scores += [d for d in scoring.handle(event) if d.type == "epoch.scored"]
        if event.type in BillingCore.reads:
            inputs.append(event)
    return inputs, scores


def replay_order(inputs: list[Event], scores: list[Event]) -> list[Event]:
    by_epoch = {(s.data.netuid, s.data.epoch): s for s in scores}  # type: ignore[attr-defined]
    out: list[Event] = []
    for e in inputs:
        if e.type == "epoch.closed":
            out.append(by_epoch[(e.data.netuid, e.data.epoch)])  # type: ignore[attr-defined]
        out.append(e)
    return out


def run(events: list[Event]) -> list[str]:
    core = BillingCore()
    return [d.to_json() for e in events for d in core.handle(e)]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_any_interleaving_of_the_two_topics_gives_the_replay_events(seed: int) -> None:
    inputs, scores = billing_inputs()
    expected = run(replay_order(inputs, scores))
    rng = random.Random(seed)
    merged: list[Event] = []
    i = j = 0
    while i < len(inputs) or j < len(scores):
        take_score = j < len(scores) and (i == len(inputs) or rng.random() < 0.02)
        if take_score:
            merged.append(scores[j])
            j += 1
        else:
            merged.append(inputs[i])
            i += 1
    assert sorted(run(merged)) == sorted(expected)
    assert any('"type":"day.closed"' in line for line in expected)
