"""`sn51 payouts [--day D] [--format table|json]`: settlement's runs, payouts, holds and the reconciliation
(planned vs landed vs ledger per billing day), read from PostgreSQL (DATABASE_URL, or the local stack).

`--day` is a billing day: the payouts that pay for it, its holds and carries, and its reconciliation row.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def _error(message: str) -> None:
    """One line on stderr, whatever the exception text held."""
    typer.echo("sn51 payouts: " + " ".join(message.split()), err=True)


async def fetch_report(database_url: str, schema: str, day: date | None) -> dict[str, Any]:
    import asyncpg

    from services.settlement.api import report

    conn = await asyncpg.connect(database_url, timeout=5, server_settings={"search_path": schema})
    try:
        if not await conn.fetchval("SELECT to_regclass('payout') IS NOT NULL"):
            raise LookupError(f"no settlement tables in schema {schema!r}: has `sn51 service settlement` run?")
        return await report(conn, day)
    finally:
        await conn.close()


def _short(text: Any, n: int = 14) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def render(out: Console, rep: dict[str, Any]) -> None:
    executor = rep.get("executor") or {}
    if executor.get("mode") == "dry_run":
        out.print("[yellow]dry run[/]: nothing is sent; not configured: " + ", ".join(executor.get("missing", [])))
    elif executor:
        out.print(f"chain: {executor.get('mode')}")
    runs = Table("run day", "planned", "planned rao", "confirmed", "confirmed rao", "pending", "held", "failed",
                 "deferred", "extrinsics", title="runs")
    for r in rep["runs"]:
        runs.add_row(r["run_day"], str(r["planned"]), str(r["planned_rao"]), str(r["confirmed"]),
                     str(r["confirmed_rao"]), str(r["pending"]), str(r["held"]), str(r["failed"]),
                     str(r["deferred"]), str(r["extrinsics"]))
    out.print(runs)
    payouts = Table("run day", "coldkey", "days", "amount rao", "state", "extrinsic", "block", "reason",
                    title="payouts")
    for p in rep["payouts"]:
        payouts.add_row(p["run_day"], _short(p["coldkey"], 16), ",".join(p["billing_days"]), str(p["amount_rao"]),
                        p["state"], _short(p["extrinsic_hash"], 18), str(p["block_number"] or ""),
                        _short(p["reason"], 40))
    out.print(payouts)
    if rep["held"]:
        held = Table("run day", "coldkey", "amount rao", "state", "reason", title="held / failed")
        for p in rep["held"]:
            held.add_row(p["run_day"], p["coldkey"], str(p["amount_rao"]), p["state"], p["reason"] or "")
        out.print(held)
    rec = Table("billing day", "ledger rao", "planned rao", "landed rao", "pending", "held", "failed", "carried",
                "outstanding", "paid in full",
                title="reconciliation (ledger = Σ payable_rao of the day.closed consumed)")
    for d in rep["reconciliation"]:
        rec.add_row(d["billing_day"], str(d["ledger_rao"]), str(d["planned_rao"]), str(d["landed_rao"]),
                    str(d["pending_rao"]), str(d["held_rao"]), str(d["failed_rao"]), str(d["carried_rao"]),
                    str(d["outstanding_rao"]), "yes" if d["paid_in_full"] else "no")
    out.print(rec)
    check = rep.get("chain_check")
    if check is not None:
        verdict = "[green]agree[/]" if not check["mismatches"] else f"[red]{len(check['mismatches'])} differ[/]"
        out.print(f"in-memory chain: {check['chain_rao']} rao received by {check['coldkeys']} coldkeys in "
                  f"{check['extrinsics']} extrinsics; confirmed payouts {check['confirmed_rao']} rao: {verdict}")
    if rep["plan_mismatches"]:
        out.print(f"[red]{len(rep['plan_mismatches'])} payouts do not match their statement lines[/]")


def register(app: typer.Typer) -> None:
    @app.command("payouts")
    def payouts_cmd(
        day: str | None = typer.Option(None, "--day", help="a billing day (YYYY-MM-DD)"),
        fmt: str = typer.Option("table", "--format", help="table or json"),
        database_url: str | None = typer.Option(None, "--database-url", help="default: DATABASE_URL or local"),
        schema: str = typer.Option("settlement", "--schema", help="the settlement service's schema"),
    ) -> None:
        """Payout runs, payouts and their states, held payouts, and planned vs landed vs ledger per day."""
        if fmt not in ("table", "json"):
            _error(f"--format must be table or json, not {fmt!r}")
            raise typer.Exit(2)
        try:
            the_day = date.fromisoformat(day) if day else None
        except ValueError:
            _error(f"--day must be YYYY-MM-DD, not {day!r}")
            raise typer.Exit(2) from None
        try:
            from sn51.infra import database_url as resolve

            url = resolve(database_url)
        except ValueError as exc:
            _error(str(exc))
            raise typer.Exit(2) from None
        if url is None:
            _error("no database: set DATABASE_URL, pass --database-url, or run `sn51 infra up`")
            raise typer.Exit(1)
        try:
            rep = asyncio.run(fetch_report(url, schema, the_day))
        except LookupError as exc:
            _error(f"{exc}")
            raise typer.Exit(1) from None
        except (OSError, ConnectionError, TimeoutError) as exc:
            _error(f"cannot reach the database: {exc or type(exc).__name__}")
            raise typer.Exit(1) from None
        except Exception as exc:  # asyncpg's errors (auth, unknown database) are not OSErrors
            if type(exc).__module__.startswith("asyncpg"):
                _error(f"cannot read the database: {exc}")
                raise typer.Exit(1) from None
            raise
        if fmt == "json":
            typer.echo(json.dumps(rep, sort_keys=True))
        else:
            render(Console(width=None if sys.stdout.isatty() else 200), rep)
