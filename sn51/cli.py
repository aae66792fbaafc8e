"""The `sn51` command: one Typer app, each command group registered by the module that owns it."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
    help="Lium (SN51) billing and settlement.",
)

COMMAND_MODULES = (
    "sn51.infra",
    "sn51.simulate",
    "sn51.replay",
    "sn51.audit.cli",
    "sn51.service",
    "sn51.payouts",
    "sn51.demo",
    "sn51.status",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main() -> None:
    _register()
    app()
