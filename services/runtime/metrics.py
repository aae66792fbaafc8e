"""Prometheus metrics of the runtime, labelled by service (one registry per process, shared by all runtimes)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.runtime.outbox import backlog

PROCESSED = Counter("sn51_events_processed", "Events accepted and folded by the core", ["service", "type"])
DUPLICATES = Counter("sn51_events_duplicate", "Events skipped: same id, same content", ["service", "type"])
REFUSED = Counter(
    "sn51_events_refused", "Events refused (decode or core) with their code", ["service", "type", "code"]
)
DEAD_LETTERED = Counter("sn51_events_dead_lettered", "Messages written to the dead-letter topic", ["service", "code"])
ID_CONFLICTS = Counter("sn51_id_conflicts", "Events whose id was seen before with other content", ["service"])
DERIVED = Counter("sn51_events_derived", "Derived events written to the outbox", ["service", "type"])
PUBLISHED = Counter("sn51_outbox_published", "Outbox rows published to Kafka", ["service"])
BATCH_SECONDS = Histogram(
    "sn51_batch_processing_seconds",
    "Time of one consumed batch: decode, core, projection, inbox and outbox writes, commit",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
OUTBOX_BACKLOG = Gauge("sn51_outbox_backlog", "Outbox rows not yet published", ["service"])
REBUILT = Gauge("sn51_rebuilt_events", "Inbox events re-folded into the core at start-up", ["service"])

# Issue 7 (operations): read from the service's own tables when /metrics is scraped (`refresh`), so they are
# right whichever process or task changed the rows; the watcher's chain head is set by the watcher itself.
PAYOUTS = Gauge("sn51_payouts", "Payouts by state (settlement's payout table)", ["service", "state"])
PAYOUTS_RAO = Gauge("sn51_payouts_rao", "Alpha rao of the payouts by state", ["service", "state"])
WATCHER_BLOCK = Gauge("sn51_watcher_block", "Last block the collateral watcher has read (its checkpoint)",
                      ["service"])
WATCHER_HEAD = Gauge("sn51_watcher_head_block", "Chain head the collateral watcher last saw", ["service"])
WATCHER_LAG = Gauge("sn51_watcher_lag_blocks", "Blocks between the chain head and the watcher's checkpoint",
                    ["service"])
LAST_EVENT_AGE = Gauge("sn51_last_processed_age_seconds",
                       "Seconds since the service last stored an event in its inbox", ["service"])
PAYOUT_STATES = ("planned", "submitting", "confirmed", "held", "failed")


async def refresh(conn: Any, service: str) -> None:
    """Update the gauges read from the service's tables (its schema is the connection's search_path)."""
    OUTBOX_BACKLOG.labels(service).set(await backlog(conn))
    age = await conn.fetchval(  # the newest inbox row by seq: an index lookup, not a scan
        "SELECT extract(epoch FROM now() - processed_at) FROM inbox ORDER BY seq DESC LIMIT 1")
    if age is not None:
        LAST_EVENT_AGE.labels(service).set(float(age))
    if await conn.fetchval("SELECT to_regclass('payout') IS NOT NULL"):
        rows = {r["state"]: r for r in await conn.fetch(
            "SELECT state, count(*) AS n, coalesce(sum(amount_rao), 0) AS rao FROM payout GROUP BY state")}
        for state in sorted(set(PAYOUT_STATES) | set(rows)):
            row = rows.get(state)
            PAYOUTS.labels(service, state).set(int(row["n"]) if row else 0)
            PAYOUTS_RAO.labels(service, state).set(int(row["rao"]) if row else 0)
    checkpoint = await conn.fetchval(
        "SELECT (value ->> 'block_number')::bigint FROM service_state WHERE value ? 'block_hash' "
        "AND value ? 'block_number' ORDER BY updated_at DESC LIMIT 1")
    if checkpoint is not None:
        WATCHER_BLOCK.labels(service).set(int(checkpoint))
        head = _heads.get(service)
        if head is not None:
            WATCHER_LAG.labels(service).set(max(head - int(checkpoint), 0))


_heads: dict[str, int] = {}


def watcher_saw_head(service: str, head: int) -> None:
    """Called by the collateral watcher with each chain head it reads."""
    _heads[service] = head
    WATCHER_HEAD.labels(service).set(head)
