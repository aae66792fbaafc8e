"""Prometheus metrics of the runtime, labelled by service (one registry per process, shared by all runtimes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
