"""structlog as JSON lines on stdout (the libraries' stdlib logs too), and the helper that binds an event's id
and type to a logger."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from schemas.envelope import Event

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str = "INFO") -> None:
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


def get_logger(service: str, **fields: Any) -> Any:
    return structlog.get_logger("sn51").bind(service=service, **fields)


def for_event(log: Any, event: Event) -> Any:
    """A logger carrying `event_id` and `event_type` (never the payload: it may name keys of providers)."""
    return log.bind(event_id=event.id, event_type=event.type)
