"""`sn51 service NAME`: run one service process (`services.<NAME>.app:SPEC`) with the shared runtime."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
import signal
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the runtime (FastAPI, aiokafka, asyncpg) is imported only when a service runs
    from services.runtime.service import ServiceSpec

SERVICES = ("scoring", "billing", "settlement", "collateral")


def load_spec(name: str) -> ServiceSpec:
    """The `SPEC` of `services.<name>.app`, or `LookupError` with a one-line reason."""
    from services.runtime.service import ServiceSpec

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise LookupError(f"unknown service {name!r}: expected one of {', '.join(SERVICES)}")
    module_name = f"services.{name}.app"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise LookupError(f"unknown service {name!r}: expected one of {', '.join(SERVICES)}") from None
        raise
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ServiceSpec):
        raise LookupError(f"{module_name} defines no SPEC: ServiceSpec")
    return spec


async def serve(spec: ServiceSpec) -> None:
    """`run(spec)` until SIGTERM or SIGINT, which stop it cleanly (the consumer leaves its group, so a
    restart rejoins at once). Stopping uncleanly is safe too: everything is rebuilt from PostgreSQL."""
    from services.runtime.service import run

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run(spec)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine on uvloop (libuv's event loop in Cython), or on asyncio's own loop where
    uvloop is not installed (it has no Windows build) or `SN51_EVENT_LOOP=asyncio` asks for it. Why uvloop: a
    service is one thread that decides, stores and publishes on the same loop, and every socket read and
    write of asyncpg and aiokafka runs through it; measured on the billing bench (A/B, 4 rounds of 2 at one
    hour): 4,989 against 4,802 billing events/s (medians), 3 % less service CPU."""
    from services.runtime.settings import Settings

    if Settings().event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def register(app: typer.Typer) -> None:
    @app.command("service")
    def service(name: str = typer.Argument(..., help=f"one of {', '.join(SERVICES)}")) -> None:
        """Run one service: consume, fold, store, publish (settings from the environment, see the README)."""
        try:
            spec = load_spec(name)
        except LookupError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            run_loop(serve(spec))
        except Exception as exc:
            stopped(name, exc)
            raise typer.Exit(1) from None


def stopped(name: str, exc: Exception) -> None:
    """A service that failed: why, as a JSON log line with its traceback (redacted, as every line is), and one
    line on stderr; the process then exits 1 (a supervisor restarts it, and the restart rebuilds from
    PostgreSQL). Logging is set up again for the case the failure came before the service set it up."""
    import os

    from services.runtime import logging as rlog
    from services.runtime.redact import redact_text

    rlog.configure(os.environ.get("SN51_LOG_LEVEL", "INFO"))
    rlog.get_logger(name).error("service stopped", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
    typer.echo(redact_text(f"sn51 service {name}: stopped: {type(exc).__name__}: {exc}"), err=True)
