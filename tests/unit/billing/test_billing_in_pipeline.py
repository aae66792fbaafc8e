"""Billing inside the replay pipeline, on a simulated log with duplicates, out-of-order rentals and malformed
lines: its statements equal the naive reference's fed the events billing accepted, in the same order."""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.codec import encode_obj
from schemas.envelope import Event
from schemas.events import DayClosed
from services.billing.core import BillingCore
from services.pipeline import Pipeline, Refusal
from services.scoring.core import ScoringCore
from services.settlement.core import SettlementCore
from sn51.sim import Faults, lines
from tests.factories import envelope
from tests.unit.billing.reference import NaiveBilling


class Tap:
    """Billing, remembering what it accepted, in the order it took effect (epoch.scored right before its
    epoch.closed, as the core handles them)."""

    service: ClassVar[str] = "billing"

    def __init__(self) -> None:
        self.inner = BillingCore()
        self.reads = self.inner.reads
        self.accepted: list[Event] = []
        self.pending_scores: dict[tuple[int, int], Event] = {}

    def handle(self, event: Event) -> list[Event]:
        out = self.inner.handle(event)
        d: Any = event.data
        if event.type == "epoch.scored":
            self.pending_scores[(d.netuid, d.epoch)] = event
        elif event.type == "epoch.closed":
            self.accepted += [self.pending_scores.pop((d.netuid, d.epoch)), event]
        else:
            self.accepted.append(event)
        return out


def test_billing_in_the_pipeline_agrees_with_the_reference() -> None:
    tap = Tap()
    pipeline = Pipeline([ScoringCore(), tap, SettlementCore()])  # type: ignore[list-item]
    faults = Faults(duplicates=0.02, out_of_order=0.2, malformed=0.01)
    statements: dict[str, dict[str, dict[str, Any]]] = {}
    for item in pipeline.run(line.text for line in lines(21, 6, 4.5, faults=faults, benchmark_interval_minutes=60)):
        if isinstance(item, Event) and isinstance(item.data, DayClosed):
            statements[item.data.billing_day] = {
                p.hotkey: {k: v for k, v in p.model_dump().items() if k not in ("hotkey", "slashed_wei")}
                for p in item.data.providers}
    ref = NaiveBilling()
    for event in tap.accepted:
        ref.handle(event)
    assert statements == ref.statements
    assert len(statements) >= 3
    assert any(p["rental_fee_usd_micros"] for day in statements.values() for p in day.values())


def test_an_input_log_line_of_a_type_the_replay_derives_is_refused() -> None:
    """A forged `epoch.scored` in the input log would credit emission; the replay derives splits, it reads none."""
    forged = envelope("epoch.scored", "2026-11-01T01:00:00Z", {
        "netuid": 51, "epoch": 1, "closed_at": "2026-11-01T01:00:00Z", "miner_emission_rao": 10**9,
        "shares": {"rented": "1", "unrented": "0", "burn": "0"}, "burn_rao": 0,
        "nodes": [{"executor_id": "ex1", "hotkey": "hk1", "pool": "rented", "incentive": "1", "alpha_rao": 10**9,
                   "reason": None}]})
    out = list(Pipeline().run([encode_obj(forged)]))
    assert [(r.line, r.code) for r in out if isinstance(r, Refusal)] == [(1, "wrong_topic")]
