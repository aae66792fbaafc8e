"""`audit verify` over what a pipeline run consumed and published: pass, then a tampered figure is reported."""

from __future__ import annotations

import copy
import functools
from typing import Any, ClassVar

from schemas.envelope import Event
from services.billing.core import BillingCore
from services.pipeline import Pipeline
from services.scoring.core import ScoringCore
from services.settlement.core import SettlementCore
from sn51.audit.records import ServiceLog
from sn51.audit.verify import verify
from sn51.sim import lines


class Recording:
    """A core that remembers what it accepted and what it derived, as a service's inbox and outbox would."""

    service: ClassVar[str] = ""

    def __init__(self, inner: Any, log: ServiceLog) -> None:
        self.inner, self.log, self.reads = inner, log, inner.reads

    def handle(self, event: Event) -> list[Event]:
        out: list[Event] = self.inner.handle(event)
        self.log.consumed.append(event.to_bytes())
        self.log.published.extend(e.to_dict() for e in out)
        return out


@functools.cache
def _recorded_run() -> dict[str, ServiceLog]:
    logs = {s: ServiceLog() for s in ("scoring", "billing", "settlement")}
    cores: list[Any] = [Recording(ScoringCore(), logs["scoring"]), Recording(BillingCore(), logs["billing"]),
                        Recording(SettlementCore(), logs["settlement"])]
    for _ in Pipeline(cores).run(line.text for line in lines(7, 5, 3.5, benchmark_interval_minutes=60)):
        pass
    return logs


def recorded_run() -> dict[str, ServiceLog]:
    return copy.deepcopy(_recorded_run())


def test_verify_passes_on_what_the_rules_give_and_names_a_tampered_payable() -> None:
    logs = recorded_run()
    report = verify(logs)
    assert report.ok, report.differences[:3]
    assert report.checked["billing"] > 0 and report.checked["scoring"] > 0

    tampered = recorded_run()
    day = next(e for e in tampered["billing"].published if e["type"] == "day.closed" and e["data"]["providers"])
    provider = day["data"]["providers"][0]
    provider["payable_rao"] += 1
    report = verify(tampered)
    assert not report.ok
    assert any(f"provider {provider['hotkey']}: payable_rao published" in str(d) for d in report.differences)


def test_verify_reports_a_missing_split() -> None:
    logs = recorded_run()
    logs["scoring"].published = [e for e in logs["scoring"].published if e["type"] != "epoch.scored"][:]
    report = verify(logs)
    assert any("epoch.scored the rules give was not published" in str(d) for d in report.differences)
