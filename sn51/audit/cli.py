"""`sn51 audit export|verify` and `sn51 statement`."""

from __future__ import annotations

import asyncio
import errno
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from services.pipeline import Pipeline, Refusal
from sn51.audit import statement as st
from sn51.audit.export import export_records
from sn51.audit.records import iter_published, read_export
from sn51.audit.verify import verify
from sn51.output import OutputError, check_output, whole_file

audit_app = typer.Typer(no_args_is_help=True, help="Export, recompute and verify every figure.")
err = Console(stderr=True, soft_wrap=True)  # one line per message, whatever the width
out = Console()


def _fail(msg: str) -> typer.Exit:
    err.print(msg)
    return typer.Exit(2)


def _database_url(given: str | None) -> str:
    from sn51.infra import database_url

    try:
        url = database_url(given)
    except ValueError as exc:
        raise _fail(f"sn51 audit: {exc}") from None
    if url is None:
        raise _fail("no database: set DATABASE_URL, pass --database-url, or run `sn51 infra up`")
    return url


@audit_app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "--output", help="JSON lines file to write"),
    database_url: str | None = typer.Option(None, "--database-url", help="default: DATABASE_URL or local"),
) -> None:
    """Each service's consumed log, published events and dead letters, from PostgreSQL."""
    url = _database_url(database_url)

    async def run() -> int:
        n = 0
        with whole_file(output) as f, Progress(SpinnerColumn(), TextColumn("{task.completed} records"),
                                               console=err, transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("export")
            async for line in export_records(url, lambda: bar.advance(task)):
                f.write(line.encode() + b"\n")
                n += 1
        return n

    try:
        check_output(output)
    except OutputError as exc:
        raise _fail(f"sn51 audit export: {exc}") from None
    try:  # an earlier export at the same path stays as it was unless this one completes (`whole_file`)
        n = asyncio.run(run())
    except OSError as exc:  # connection errors are OSErrors too; a file's carry its errno from the disk
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO):
            raise _fail(f"sn51 audit export: cannot write {output}: {exc.strerror}") from None
        raise _fail(f"sn51 audit export: cannot reach the database: {exc or type(exc).__name__}") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # a missing database or role, a foreign one
        raise _fail(f"sn51 audit export: cannot read the database: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _fail(f"sn51 audit export: a stored event is not UTF-8 JSON: {exc}") from None
    err.print(json.dumps({"records": n, "output": str(output)}))


@audit_app.command("verify")
def verify_cmd(input: Path = typer.Option(..., "--input", help="an audit export")) -> None:
    """Recompute from an export and compare with what the services published; non-zero on any difference."""
    if not input.is_file():
        raise _fail(f"sn51 audit verify: no such file: {input}")
    try:
        with input.open("rb") as f:
            logs = read_export(f)
    except ValueError as exc:
        raise _fail(f"sn51 audit verify: {exc}") from None
    if not logs:
        raise _fail(f"sn51 audit verify: {input} holds no records: nothing to verify")
    with err.status("recomputing"):
        report = verify(logs)
    for service, n in sorted(report.checked.items()):
        out.print(f"{service}: {n} derived events recomputed")
    for service in report.unverified:
        out.print(f"{service}: not recomputed here (its decisions come from the chain, not from a core fold)")
    if report.ok:
        out.print("[green]verify: pass[/green] — every published figure is what the rules give")
        return
    out.print(f"[red]verify: {len(report.differences)} difference(s)[/red]; the first:")
    for d in report.differences[:20]:
        out.print(f"  {d}")
    raise typer.Exit(1)


def _derived_from(input_log: Path | None, export: Path | None) -> Iterator[dict[str, Any]]:
    if export is not None:
        with export.open("rb") as f:
            yield from iter_published(read_export(f))
        return
    assert input_log is not None
    with input_log.open("rb") as f:
        for item in Pipeline().run(f):
            if not isinstance(item, Refusal):
                yield item.to_dict()


def statement(
    hotkey: str = typer.Option(..., "--hotkey"),
    day: str | None = typer.Option(None, "--day", help="YYYY-MM-DD"),
    from_: str | None = typer.Option(None, "--from", help="first day, YYYY-MM-DD"),
    to: str | None = typer.Option(None, "--to", help="last day, YYYY-MM-DD"),
    fmt: str = typer.Option("table", "--format", help="table, json or csv"),
    input_log: Path | None = typer.Option(None, "--input", help="an input log to replay"),
    export: Path | None = typer.Option(None, "--export", help="an audit export (what was published)"),
) -> None:
    """What a provider earned, why, and what was paid."""
    if fmt not in ("table", "json", "csv"):
        raise _fail(f"sn51 statement: --format must be table, json or csv, not {fmt!r}")
    if day and (from_ or to):
        raise _fail("sn51 statement: give --day or --from/--to, not both")
    if (input_log is None) == (export is None):
        raise _fail("sn51 statement: give exactly one of --input (a log to replay) or --export")
    source = input_log or export
    assert source is not None
    if not source.is_file():
        raise _fail(f"sn51 statement: no such file: {source}")
    for name, value in (("--day", day), ("--from", from_), ("--to", to)):
        try:
            if value is not None:
                date.fromisoformat(value)
        except ValueError:
            raise _fail(f"sn51 statement: {name} must be a day, YYYY-MM-DD, not {value!r}") from None
    first, last = (day, day) if day else (from_, to)
    if first and last and first > last:
        raise _fail(f"sn51 statement: --from {first} is after --to {last}")
    try:
        views = st.build(_derived_from(input_log, export), hotkey, first, last)
    except ValueError as exc:  # an export line that is not an audit record (`read_export`)
        raise _fail(f"sn51 statement: {exc}") from None
    if fmt == "json":
        print(st.to_json(views))
    elif fmt == "csv":
        print(st.to_csv(views), end="")
    else:
        _table(hotkey, views)


def _table(hotkey: str, views: list[st.DayView]) -> None:
    t = Table(title=f"statement of {hotkey}")
    for col in ("day", "emission", "rental fee µUSD", "forfeited", "adjustments", "payable rao", "carried",
                "paid in"):
        t.add_column(col, justify="right" if col != "day" else "left")
    for v in views:
        f = v.figures or {}
        t.add_row(v.day, str(f.get("emission_rao", "")), str(f.get("rental_fee_usd_micros", "")),
                  f"{f.get('forfeited_rao', '')} rao / {f.get('forfeited_usd_micros', '')} µUSD" if f else "",
                  f"{f.get('adjustment_rao', '')} rao / {f.get('adjustment_usd_micros', '')} µUSD" if f else "",
                  str(f.get("payable_rao", "")), str(f.get("carried_rao", "")),
                  ", ".join(sorted({f"{p['payout_id'][:8]} {p['state']}" for p in v.payouts})))
    out.print(t)
    for v in views:
        for e in v.earnings:
            amount = f"{e['amount_rao']} rao" if e.get("amount_rao") is not None else f"{e['amount_usd_micros']} µUSD"
            out.print(f"  {v.day} {e['kind']:<11} {amount:>22}  executor {e['executor_id']}  cause {e['cause_id']}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command("statement")(statement)
