"""structlog as JSON lines on stdout, and the one helper that binds an event's id and type to a logger."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from schemas.envelope import Event


def configure(level: str = "INFO") -> None:
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stdout, level=lvl, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(service: str, **fields: Any) -> Any:
    return structlog.get_logger("sn51").bind(service=service, **fields)


def for_event(log: Any, event: Event) -> Any:
    """A logger carrying `event_id` and `event_type` (never the payload: it may name keys of providers)."""
    return log.bind(event_id=event.id, event_type=event.type)
