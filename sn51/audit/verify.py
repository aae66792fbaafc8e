"""Recompute every figure from what each service consumed and compare with what it published.

Pure: each service's consumed log (its inbox, in processing order) is folded through a fresh core; the derived
events must equal, id for id and byte for byte, what the service published of the types its core decides.
Differences are described in the domain's words: a provider's payable on a day, a node's alpha in an epoch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from schemas.codec import Refused, decode
from schemas.envelope import canonical_json
from services.billing.core import BillingCore
from services.core import Core
from services.scoring.core import ScoringCore
from services.settlement.core import SettlementCore
from sn51.audit.records import ServiceLog

CORES: dict[str, tuple[Callable[[], Core], frozenset[str]]] = {
    "scoring": (ScoringCore, frozenset({"score.updated", "gpu_portion.updated", "epoch.scored"})),
    "billing": (BillingCore, frozenset({"earnings.accrued", "day.closed"})),
    "settlement": (SettlementCore, frozenset({"payout.planned", "payout.deferred"})),
}


@dataclass(frozen=True)
class Difference:
    service: str
    event_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.service}: {self.what} (event {self.event_id})"


@dataclass
class Report:
    checked: dict[str, int]
    differences: list[Difference]
    unverified: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


def recompute(service: str, consumed: list[bytes]) -> tuple[dict[str, dict[str, Any]], list[Difference]]:
    factory, _ = CORES[service]
    core = factory()
    out: dict[str, dict[str, Any]] = {}
    problems: list[Difference] = []
    for raw in consumed:
        try:
            event = decode(raw)
            for derived in core.handle(event):
                out[derived.id] = derived.to_dict()
        except Refused as r:
            problems.append(Difference(service, json.loads(raw).get("id", "?"),
                                       f"the core refuses an event the service accepted: {r.code}: {r.reason}"))
    return out, problems


def verify(logs: dict[str, ServiceLog]) -> Report:
    checked: dict[str, int] = {}
    differences: list[Difference] = []
    unverified = sorted(s for s in logs if s not in CORES)
    for service, log in sorted(logs.items()):
        if service not in CORES:
            continue
        expected, problems = recompute(service, log.consumed)
        differences += problems
        decided = CORES[service][1]
        published = {e["id"]: e for e in log.published if e.get("type") in decided}
        checked[service] = len(expected)
        for event_id in sorted(set(expected) | set(published)):
            differences += list(_compare(service, event_id, expected.get(event_id), published.get(event_id)))
    return Report(checked, differences, unverified)


def _compare(service: str, event_id: str, want: dict[str, Any] | None,
             got: dict[str, Any] | None) -> Iterator[Difference]:
    if got is None:
        assert want is not None
        yield Difference(service, event_id, f"{want['type']} the rules give was not published")
        return
    if want is None:
        yield Difference(service, event_id, f"published {got.get('type')} that the rules do not give")
        return
    if canonical_json(want) == canonical_json(got):
        return
    found = False
    for what in _domain_diff(want, got):
        found = True
        yield Difference(service, event_id, what)
    if not found:
        yield Difference(service, event_id, f"published {want['type']} differs from the rules' "
                                            f"(fields: {', '.join(_changed_paths(want, got))})")


def _domain_diff(want: dict[str, Any], got: dict[str, Any]) -> Iterator[str]:
    wd, gd = want.get("data", {}), got.get("data", {})
    if want["type"] == "day.closed":
        day = wd.get("billing_day")
        if wd.get("ledger_hash") != gd.get("ledger_hash"):
            yield f"day {day}: ledger_hash {gd.get('ledger_hash')} published, {wd.get('ledger_hash')} recomputed"
        wp = {p["hotkey"]: p for p in wd.get("providers", [])}
        gp = {p["hotkey"]: p for p in gd.get("providers", []) if isinstance(p, dict) and "hotkey" in p}
        for hk in sorted(set(wp) | set(gp)):
            a, b = wp.get(hk, {}), gp.get(hk, {})
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    yield f"day {day}, provider {hk}: {k} published {b.get(k)}, recomputed {a.get(k)}"
    elif want["type"] == "epoch.scored":
        epoch = wd.get("epoch")
        wn = {n["executor_id"]: n for n in wd.get("nodes", [])}
        gn = {n["executor_id"]: n for n in gd.get("nodes", []) if isinstance(n, dict) and "executor_id" in n}
        for ex in sorted(set(wn) | set(gn)):
            a, b = wn.get(ex, {}), gn.get(ex, {})
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    yield f"epoch {epoch}, executor {ex}: {k} published {b.get(k)}, recomputed {a.get(k)}"
        for k in ("shares", "burn_rao", "miner_emission_rao"):
            if wd.get(k) != gd.get(k):
                yield f"epoch {epoch}: {k} published {gd.get(k)}, recomputed {wd.get(k)}"
    elif want["type"].startswith("payout."):
        for k in sorted(set(wd) | set(gd)):
            if wd.get(k) != gd.get(k):
                yield f"payout {wd.get('payout_id')} to {wd.get('coldkey')}: {k} published {gd.get(k)}, " \
                      f"recomputed {wd.get(k)}"


def _changed_paths(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _changed_paths(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [path or "<root>"]
