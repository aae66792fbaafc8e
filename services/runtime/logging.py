"""structlog as JSON lines on stdout (the libraries' stdlib logs too), and the helper that binds an event's id
and type to a logger.

No secret in a log, whoever wrote the line: each rendered line goes through `redact.redact_text` (URLs reduced
to scheme, host and port; `password=...`-like pairs masked), exception texts included. `SN51_LOG_LEVEL=DEBUG`
turns on the project's own debug lines only: the libraries stay at INFO or above (at DEBUG, web3 logs every
request's URI and websockets every request's headers, an `Authorization` among them).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from schemas.envelope import Event
from services.runtime.redact import redact_text

PROJECT_LOGGERS = ("sn51", "scoring", "billing", "settlement", "collateral")
"""The stdlib logger names the project's structlog loggers use (`get_logger`, and `structlog.get_logger("settlement.
executor")` and the like in the services); `SN51_LOG_LEVEL` applies to these, the root stays at INFO or above."""

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
                _redacted,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(lvl, logging.INFO))
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(lvl)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


def _redacted(logger: Any, method: str, rendered: Any) -> str:
    """The last step of every line: the rendered JSON (a str), redacted (`redact.redact_text`)."""
    return redact_text(str(rendered))


def get_logger(service: str, **fields: Any) -> Any:
    return structlog.get_logger("sn51").bind(service=service, **fields)


def for_event(log: Any, event: Event) -> Any:
    """A logger carrying `event_id` and `event_type` (never the payload: it may name keys of providers)."""
    return log.bind(event_id=event.id, event_type=event.type)
