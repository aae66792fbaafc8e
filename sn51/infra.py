"""`sn51 infra up|down|status|env`, `sn51 up` and `sn51 down`: the local stack from one command."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sn51.localinfra import (
    SERVICES,
    Endpoints,
    InfraError,
    ensure_up,
    infra_down,
    infra_status,
    infra_up,
    local_endpoints,
    log_file,
    services_down,
    services_up,
)

__all__ = ["command_paths", "database_url", "ensure_up", "local_endpoints", "register"]

T = TypeVar("T")
console = Console()
infra_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Local broker, PostgreSQL and anvil.")


def database_url(given: str | None) -> str | None:
    """The database a command reads: `--database-url`, else DATABASE_URL, else the local stack's (None: none
    known). Checked to parse first (`services.runtime.db.check_database_url`): a `ValueError` that does not
    quote it."""
    from services.runtime.db import check_database_url

    url = given or os.environ.get("DATABASE_URL") or local_endpoints().database_url
    return check_database_url(url) if url is not None else None


def _guard(action: Callable[[], T]) -> T:
    """Run action; a problem becomes one line on stderr and exit code 1 (SN51_DEBUG=1: the traceback)."""
    try:
        return action()
    except (InfraError, OSError, subprocess.SubprocessError) as exc:
        typer.echo(f"sn51: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        if os.environ.get("SN51_DEBUG"):
            raise
        typer.echo(f"sn51: {type(exc).__name__}: {exc} (SN51_DEBUG=1 shows the traceback)", err=True)
        raise typer.Exit(1) from None


def _print_endpoints(endpoints: Endpoints, *, shown: bool = False) -> None:
    """The endpoints as KEY=value lines, passwords masked (`mask_password`) unless `shown` (`sn51 infra env`,
    whose output is meant for `eval`)."""
    from services.runtime.redact import mask_password

    for key, value in endpoints.as_env().items():
        typer.echo(f"{key}={value if shown else mask_password(value)}")


@infra_app.command("up")
def up_infra() -> None:
    """Start the broker, PostgreSQL and anvil (idempotent)."""
    started = time.monotonic()
    endpoints = _guard(infra_up)
    _print_endpoints(endpoints)
    console.print(f"[green]infra up[/] in {time.monotonic() - started:.2f} s", highlight=False)


@infra_app.command("down")
def down_infra() -> None:
    """Stop what `sn51 infra up` started (never a PostgreSQL server it did not start)."""
    stopped = _guard(infra_down)
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"), highlight=False)


@infra_app.command("status")
def status_infra(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per component instead of a table."),
) -> None:
    """Each component, its URL and whether it answers; exit code 1 when a required one is down."""
    rows = _guard(infra_status)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(asdict(row), sort_keys=True))
    else:
        table = Table("component", "url", "state", "detail")
        for column in table.columns:
            column.overflow = "fold"
        for row in rows:
            state = "[green]up[/]" if row.up else ("[red]down[/]" if row.required else "[yellow]absent[/]")
            table.add_row(row.name, row.url, state, row.detail)
        console.print(table)
    if any(row.required and not row.up for row in rows):
        raise typer.Exit(1)


@infra_app.command("env")
def env_infra() -> None:
    """KEY=value lines (KAFKA_BOOTSTRAP, DATABASE_URL, ANVIL_URL) for the shell or other tools."""
    _print_endpoints(_guard(local_endpoints), shown=True)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return escape(lines[-1][:200]) if lines else "no output"


def command_paths(app: typer.Typer, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command path the app answers to, e.g. ("infra", "up"), ("demo",)."""
    paths: set[tuple[str, ...]] = set()
    for command in app.registered_commands:
        callback_name = command.callback.__name__ if command.callback else ""
        paths.add((*prefix, command.name or callback_name.lower().replace("_", "-")))
    for group in app.registered_groups:
        sub = group.typer_instance
        name = group.name or (sub.info.name if sub is not None else None)
        if sub is None or not isinstance(name, str):
            continue
        paths.add((*prefix, name))
        paths |= command_paths(sub, (*prefix, name))
    return paths


def register(app: typer.Typer) -> None:
    app.add_typer(infra_app, name="infra")

    @app.command("up")
    def up_all() -> None:
        """Start the infrastructure and the four services (scoring, billing, settlement, collateral)."""
        started = time.monotonic()
        endpoints = _guard(infra_up)
        _print_endpoints(endpoints)
        if ("service",) not in command_paths(app):
            typer.echo("sn51: this build has no `service` command; infrastructure is up, services are not", err=True)
            raise typer.Exit(1)
        pids = _guard(lambda: services_up(endpoints))
        for name in SERVICES:
            pid = pids[name]
            state = f"pid {pid}" if pid else f"[red]exited[/]: {_last_line(log_file(name))} (log: {log_file(name)})"
            console.print(f"service {name}: {state}", highlight=False, markup=True)
        console.print(f"up in {time.monotonic() - started:.2f} s", highlight=False)
        if not all(pids.values()):
            raise typer.Exit(1)

    @app.command("down")
    def down_all() -> None:
        """Stop the services and the infrastructure that `sn51 up` started."""
        stopped = _guard(services_down) + _guard(infra_down)
        console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"), highlight=False)
