"""The topic map: which event types travel on which topic, keyed by what, produced by which source."""

from __future__ import annotations

from dataclasses import dataclass

INPUT = "sn51.input"
SCORING = "sn51.scoring"
BILLING = "sn51.billing"
SETTLEMENT = "sn51.settlement"
COLLATERAL = "sn51.collateral"
DEAD_LETTER = "sn51.dead-letter"


@dataclass(frozen=True)
class Route:
    topic: str
    key: str  # the data field that is the Kafka key, or a constant in quotes
    sources: tuple[str, ...]


ROUTES: dict[str, Route] = {
    "executor.listed": Route(INPUT, "executor_id", ("platform",)),
    "executor.delisted": Route(INPUT, "executor_id", ("platform",)),
    "rental.started": Route(INPUT, "executor_id", ("platform",)),
    "rental.stopped": Route(INPUT, "executor_id", ("platform",)),
    "rental.incident": Route(INPUT, "executor_id", ("platform",)),
    "revenue.reported": Route(INPUT, '"revenue"', ("platform",)),
    "benchmark.completed": Route(INPUT, "executor_id", ("platform", "validator")),
    "params.updated": Route(INPUT, '"params"', ("platform", "operator")),
    "epoch.closed": Route(INPUT, '"netuid-51"', ("chain", "platform")),
    "score.updated": Route(SCORING, "executor_id", ("scoring",)),
    "gpu_portion.updated": Route(SCORING, '"gpu_portion"', ("scoring",)),
    "epoch.scored": Route(SCORING, '"netuid-51"', ("scoring",)),
    "earnings.accrued": Route(BILLING, "hotkey", ("billing",)),
    "day.closed": Route(BILLING, '"billing"', ("billing",)),
    **{
        f"payout.{s}": Route(SETTLEMENT, "coldkey", ("settlement",))
        for s in ("planned", "submitted", "confirmed", "failed", "deferred", "held")
    },
    **{
        f"collateral.{s}": Route(COLLATERAL, "executor_id", ("collateral",))
        for s in ("deposited", "reclaim_started", "reclaimed", "reclaim_denied", "slashed", "slash_requested")
    },
}

ALL_TOPICS = (INPUT, SCORING, BILLING, SETTLEMENT, COLLATERAL, DEAD_LETTER)
INPUT_TYPES = frozenset(t for t, route in ROUTES.items() if route.topic == INPUT)
"""The types of the input log (what `sn51 replay` reads): the platform's and the chain's events."""

# What each service consumes (SPEC section 1); the runtime subscribes to the topics these types travel on.
READS: dict[str, frozenset[str]] = {
    "scoring": frozenset({
        "executor.listed", "executor.delisted", "rental.started", "rental.stopped", "rental.incident",
        "benchmark.completed", "revenue.reported", "epoch.closed", "params.updated",
        "collateral.deposited", "collateral.reclaim_started", "collateral.reclaimed",
        "collateral.reclaim_denied", "collateral.slashed", "collateral.slash_requested",
    }),
    "billing": frozenset({
        "executor.listed", "executor.delisted", "rental.started", "rental.stopped", "rental.incident",
        "epoch.closed", "epoch.scored", "params.updated", "collateral.slashed",
    }),
    "settlement": frozenset({"day.closed", "epoch.closed", "params.updated"}),
    "collateral": frozenset({
        "executor.listed", "rental.incident", "rental.started", "rental.stopped", "epoch.closed",
    }),
}


def topics_for(service: str) -> list[str]:
    return sorted({ROUTES[t].topic for t in READS[service]})


def key_for(type_: str, data: dict[str, object]) -> str:
    k = ROUTES[type_].key
    return k.strip('"') if k.startswith('"') else str(data[k])
