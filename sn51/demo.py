"""`sn51 demo`: the whole product on simulated days, end to end, in about a minute.

1. The local infrastructure (`sn51 infra up`: broker, PostgreSQL, anvil), a FRESH database and topic prefix for
   this run (so a second run starts clean), and, when anvil runs, a freshly deployed collateral contract with
   collateral deposited for every simulated executor.
2. The four services as subprocesses (`sn51 service NAME`), settlement on the in-memory chain (funded stake on
   a payout hotkey), collateral watching the contract and acting as trustee.
3. A simulated log (at least three days) published as fast as the services consume it.
4. Wait until the payouts of the first payable day have landed, and every service has caught up.
5. Print each provider's days and payouts, the platform totals, and the audit (export from PostgreSQL and
   `verify`); exit 1 if anything did not reconcile. Stop what was started (unless `--keep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sn51 import demo_report
from sn51.demo_stack import (
    SERVICES,
    DemoError,
    Run,
    demo_record_path,
    deploy_collateral,
    fresh_database,
    last_lines,
    start_infra,
    start_services,
    stop_services,
    wait_healthy,
)
from sn51.localinfra import procs

BENCHMARK_INTERVAL_MINUTES = 60.0
out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


# --- publishing and waiting -----------------------------------------------------------------------------------

@dataclass
class Expected:
    lines: list[tuple[bytes, bytes]]  # (key, value)
    reads: dict[str, int]  # service -> input events of the types it reads (it ignores the others)
    incidents: int  # rental.incident events: each is one slash request for the trustee
    executors: dict[str, str]  # executor_id -> hotkey
    providers: list[str]  # hotkeys in first-listing order
    days: list[str]  # billing days the log closes
    payouts: dict[str, int]  # payout_id -> amount_rao of every payout run (the first pays the first payable day)
    first_days: list[str]
    runs: int
    epochs: int


def simulate(seed: int, providers: int, days: float) -> Expected:
    from schemas.topics import READS
    from services.pipeline import Pipeline, Refusal
    from sn51.sim import lines

    raw = [(line.key.encode(), line.text.encode()) for line in
           lines(seed, providers, days, benchmark_interval_minutes=BENCHMARK_INTERVAL_MINUTES)]
    executors: dict[str, str] = {}
    hotkeys: list[str] = []
    reads = dict.fromkeys(SERVICES, 0)
    for _, value in raw:
        e = json.loads(value)
        for s in SERVICES:
            reads[s] += e["type"] in READS[s]
        if e["type"] == "executor.listed":
            executors[e["data"]["executor_id"]] = e["data"]["hotkey"]
            if e["data"]["hotkey"] not in hotkeys:
                hotkeys.append(e["data"]["hotkey"])
    closed: list[str] = []
    runs: dict[str, dict[str, int]] = {}
    run_days: dict[str, set[str]] = {}
    epochs = 0
    for item in Pipeline().run(value for _, value in raw):
        if isinstance(item, Refusal):
            continue
        d = item.data
        if item.type == "day.closed":
            closed.append(d.billing_day)  # type: ignore[attr-defined]
        elif item.type == "epoch.scored":
            epochs += 1
        elif item.type == "payout.planned":
            run = item.time.date().isoformat()
            runs.setdefault(run, {})[d.payout_id] = d.amount_rao  # type: ignore[attr-defined]
            run_days.setdefault(run, set()).update(d.billing_days)  # type: ignore[attr-defined]
    if not runs:
        raise DemoError(f"{days:g} simulated days close no payable day (a day is paid {2} days later at "
                        "17:00 UTC): use --days 3 or more")
    first = min(runs)
    every = {pid: amount for run in runs.values() for pid, amount in run.items()}
    incidents = sum(json.loads(v)["type"] == "rental.incident" for _, v in raw)
    return Expected(raw, reads, incidents, executors, hotkeys, closed, every, sorted(run_days[first]), len(runs),
                    epochs)


async def publish(run: Run, expected: Expected, progress: Progress) -> None:
    from aiokafka import AIOKafkaProducer

    from schemas.topics import INPUT
    from services.runtime.kafka import create_all_topics

    await create_all_topics(run.kafka, run.prefix)
    producer = AIOKafkaProducer(bootstrap_servers=run.kafka, acks="all", enable_idempotence=False, linger_ms=5,
                                max_batch_size=1 << 20)
    await producer.start()
    task = progress.add_task("published", total=len(expected.lines))
    try:
        pending = []
        for key, value in expected.lines:
            pending.append(await producer.send(run.prefix + INPUT, value, key=key))
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                progress.advance(task, len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        progress.advance(task, len(pending))
    finally:
        await producer.stop()


async def _count(conn: Any, sql: str, *args: Any) -> int:
    try:
        return int(await conn.fetchval(sql, *args) or 0)
    except Exception as exc:  # a table a service has not created yet
        if type(exc).__module__.startswith("asyncpg"):
            return 0
        raise


async def wait_for_payouts(run: Run, expected: Expected, progress: Progress, timeout: float) -> None:
    """Until the first run's payouts are final and every service has caught up; DemoError on timeout."""
    import asyncpg

    from schemas.topics import INPUT

    conn = await asyncpg.connect(run.database_url, timeout=10)
    services = tuple(s for s in SERVICES if s in run.ports and s != "settlement")
    consumed = {s: progress.add_task(f"{s} consumed", total=expected.reads[s]) for s in services}
    days_task = progress.add_task("days closed", total=len(expected.days))
    paid_task = progress.add_task("payouts landed", total=len(expected.payouts))
    slashing = run.collateral is not None and expected.incidents > 0
    slash_task = progress.add_task("slashes decided", total=expected.incidents, visible=slashing)
    deadline = time.monotonic() + timeout
    ids = list(expected.payouts)  # the first run's and any later run's: then nothing lands after the report
    try:
        while True:
            done = {}
            for s, task in consumed.items():
                n = await _count(conn, f"SELECT count(*) FROM {s}.inbox WHERE source_topic = $1", run.prefix + INPUT)
                n += await _count(conn, f"SELECT count(*) FROM {s}.dead_letter WHERE source_topic = $1",
                                  run.prefix + INPUT)
                progress.update(task, completed=min(n, expected.reads[s]))
                done[s] = n >= expected.reads[s]
            closed = await _count(conn, "SELECT count(*) FROM billing.day_statement")
            progress.update(days_task, completed=closed)
            final = await _count(conn, "SELECT count(*) FROM settlement.payout WHERE payout_id = ANY($1) "
                                       "AND state IN ('confirmed', 'held', 'failed')", ids)
            progress.update(paid_task, completed=final)
            slashed = expected.incidents
            if slashing:
                slashed = await _count(conn, "SELECT count(*) FROM collateral.collateral_slash_plans "
                                             "WHERE status NOT IN ('planned', 'sent')")
                landed = await _count(conn, "SELECT count(*) FROM collateral.collateral_slash_plans "
                                            "WHERE status = 'landed'")
                logs = await _count(conn, "SELECT count(*) FROM collateral.collateral_logs "
                                          "WHERE event_type = 'collateral.slashed' AND NOT retracted")
                slashed = slashed if logs >= landed else min(slashed, expected.incidents - 1)
                progress.update(slash_task, completed=slashed)
            backlog = 0
            for s in run.ports:
                backlog += await _count(conn, f"SELECT count(*) FROM {s}.outbox_pending")  # small at the end of a demo
            if final >= len(ids) and all(done.values()) and closed >= len(expected.days) and backlog == 0 \
                    and slashed >= expected.incidents:
                return
            if time.monotonic() > deadline:
                missing = [f"{s} consumed {progress.tasks[t].completed:.0f}/{expected.reads[s]} input events"
                           for s, t in consumed.items() if not done[s]]
                missing += [f"{closed}/{len(expected.days)} days closed"] if closed < len(expected.days) else []
                missing += [f"{final}/{len(ids)} payouts final"] if final < len(ids) else []
                missing += [f"{backlog} outbox rows unpublished"] if backlog else []
                missing += [f"{slashed}/{expected.incidents} slashes decided"] if slashed < expected.incidents else []
                dead = [s for s in SERVICES if procs.running_pid(f"demo-{s}") is None]
                raise DemoError(f"timed out after {timeout:.0f} s: {'; '.join(missing) or 'not settled'}"
                                + (f"; exited: {', '.join(dead)} ({last_lines(dead[0])})" if dead else ""))
            if run.collateral is not None:
                with contextlib.suppress(Exception):
                    from sn51.demo_chain import mine

                    await asyncio.to_thread(mine, run.collateral.rpc_url)
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


# --- the report -----------------------------------------------------------------------------------------------

async def collect(run: Run) -> tuple[list[str], dict[tuple[str, str], int], dict[str, int]]:
    import asyncpg

    from services.settlement.chain_memory_pg import MemoryChainSettings, stakes_on, stored_state
    from sn51.audit.export import export_records

    records = [line async for line in export_records(run.database_url)]
    conn = await asyncpg.connect(run.database_url, timeout=10)
    try:
        rows = await conn.fetch("SELECT debit, credit, unit, sum(amount) AS amount FROM billing.ledger_entry "
                                "GROUP BY debit, credit, unit")
        ledger: dict[tuple[str, str], int] = {}
        for r in rows:
            ledger[(r["credit"], r["unit"])] = ledger.get((r["credit"], r["unit"]), 0) + int(r["amount"])
            ledger[(r["debit"], r["unit"])] = ledger.get((r["debit"], r["unit"]), 0) - int(r["amount"])
        await conn.execute("SET search_path TO settlement")
        state = await stored_state(conn)
    finally:
        await conn.close()
    landed: dict[str, int] = {}
    if state is not None:
        chain = MemoryChainSettings()
        landed = {ck: a for ck, a in stakes_on(state, chain.payout_hotkey).items() if ck != chain.payout_coldkey}
    return records, ledger, landed


def report(run: Run, expected: Expected) -> bool:
    from sn51.audit.records import iter_published, read_export
    from sn51.audit.verify import verify

    records, ledger, landed = asyncio.run(collect(run))
    logs = read_export(records)
    summary = demo_report.summarize(iter_published(logs), expected.executors)
    out.rule("statements")
    demo_report.render(out, summary, ledger, landed)
    problems = demo_report.reconcile(summary, landed)
    out.rule("reconciliation")
    if problems:
        for p in problems:
            out.print(f"[red]✗[/] {p}")
    else:
        paid = sum(p.amount_rao for p in summary.payouts.values() if p.state == "confirmed")
        out.print(f"[green]✓[/] payouts landed = payables of the paid days for every coldkey "
                  f"({demo_report.alpha(paid)} α to {len(landed)} coldkeys)")
    out.rule("audit: export from PostgreSQL + verify")
    result = verify(logs)
    dead = sum(len(log.dead_letters) for log in logs.values())
    out.print(f"exported {len(records)} records ({dead} dead letters)")
    for service, n in sorted(result.checked.items()):
        out.print(f"{service}: {n} derived events recomputed")
    for service in result.unverified:
        out.print(f"{service}: not recomputed (its decisions come from the chain, not from a core fold)")
    if result.ok:
        out.print("[green]verify: pass[/green] — every published figure is what the rules give")
    else:
        out.print(f"[red]verify: {len(result.differences)} difference(s)[/red]; the first:")
        for d in result.differences[:20]:
            out.print(f"  {d}")
    return result.ok and not problems


# --- the command ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def phase(what: str) -> Iterator[None]:
    began = time.monotonic()
    with out.status(what + " …"):
        yield
    out.print(f"[green]✓[/] {what} ({time.monotonic() - began:.1f} s)")


def cleanup(run: Run | None, keep: bool) -> None:
    if run is None:  # nothing of this run was started (the infra is left as it was)
        return
    if keep:
        demo_record_path().write_text(json.dumps(run.record(), indent=2))
        out.print(f"kept running (--keep): services {', '.join(f'{s}:{p}' for s, p in run.ports.items())}, "
                  f"database {run.database}, topic prefix {run.prefix!r}; `sn51 status --demo` shows them; "
                  "stop with `sn51 demo --stop`", highlight=False)
        return
    from sn51.localinfra import infra_down, postgres

    stopped = stop_services()
    with contextlib.suppress(Exception):
        postgres.drop_database(run.admin_url, run.database)
    if run.started_infra:
        with contextlib.suppress(Exception):
            stopped += infra_down()
    demo_record_path().unlink(missing_ok=True)
    if stopped:
        out.print(f"stopped: {', '.join(stopped)}", highlight=False)


def stop_kept() -> None:
    record = procs.read_json(demo_record_path())
    stopped = stop_services()
    url = record.get("database_url")
    if isinstance(url, str):
        from sn51.localinfra import postgres

        with contextlib.suppress(Exception):
            postgres.drop_database(postgres.with_database(url, "postgres"), url.rsplit("/", 1)[-1])
    if record.get("started_infra"):
        from sn51.localinfra import infra_down

        with contextlib.suppress(Exception):
            stopped += infra_down()
    demo_record_path().unlink(missing_ok=True)
    out.print(f"stopped: {', '.join(stopped) or 'nothing was running'}", highlight=False)


def run_demo(providers: int, days: float, seed: int, keep: bool, timeout: float) -> bool:
    began = time.monotonic()
    run: Run | None = None
    try:
        kept = [s for s in SERVICES if procs.running_pid(f"demo-{s}") is not None]
        if kept:
            raise DemoError(f"a kept demo is still running ({', '.join(kept)}): `sn51 demo --stop` first")
        with phase(f"simulated {days:g} days of {providers} providers (seed {seed}) and replayed them offline"):
            expected = simulate(seed, providers, days)
        out.print(f"  {len(expected.lines)} input events, {len(expected.executors)} executors, "
                  f"{len(expected.days)} days to close, first payout run pays {', '.join(expected.first_days)}, "
                  f"{len(expected.payouts)} payouts in {expected.runs} run(s)")
        with phase("local infrastructure up (broker, PostgreSQL, anvil)"):
            endpoints, started = start_infra()
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"{os.getpid() % 1000:03d}"
            try:
                url, admin, name = fresh_database(stamp)
            except DemoError:
                if started:
                    from sn51.localinfra import infra_down

                    infra_down()
                raise
            run = Run(stamp, f"demo{stamp}.", endpoints.kafka_bootstrap, url, admin, name, started_infra=started)
        out.print(f"  broker {run.kafka}, database {name}, topic prefix {run.prefix}")
        index = {hk: i for i, hk in enumerate(expected.providers)}
        with out.status("collateral contract …"):
            run.collateral, note = deploy_collateral(
                endpoints.anvil_url, [(ex, index[hk]) for ex, hk in expected.executors.items()])
        out.print(("[green]✓[/] " if run.collateral is not None else "[yellow]![/] ") + note)
        names = SERVICES if run.collateral is not None else SERVICES[:3]
        with phase(f"services started: {', '.join(names)}"):
            start_services(run, names)
            wait_healthy(run, names)
        from services.settlement.chain_memory_pg import MemoryChainSettings

        chain = MemoryChainSettings()
        out.print("  " + ", ".join(f"{s} :{run.ports[s]}" for s in names) + f"; logs in {procs.state_dir() / 'logs'}")
        out.print(f"  settlement pays on the in-memory chain from payout hotkey {chain.payout_hotkey} "
                  f"({demo_report.alpha(chain.stake_rao)} α staked)")
        flowing = time.monotonic()
        with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out) as progress:
            asyncio.run(publish(run, expected, progress))
            asyncio.run(wait_for_payouts(run, expected, progress, timeout))
        out.print(f"[green]✓[/] published, processed and paid in {time.monotonic() - flowing:.1f} s")
        ok = report(run, expected)
        out.print(f"demo {'[green]reconciled[/]' if ok else '[red]did NOT reconcile[/]'} in "
                  f"{time.monotonic() - began:.1f} s")
        return ok
    except DemoError as exc:
        out.print(f"[red]sn51 demo: {exc}[/]")
        return False
    except (procs.InfraError, OSError) as exc:
        out.print(f"[red]sn51 demo: {type(exc).__name__}: {exc}[/]")
        return False
    except KeyboardInterrupt:
        out.print("[yellow]sn51 demo: interrupted[/]")
        return False
    except Exception as exc:  # a broker, database or chain failure mid-run: one line (SN51_DEBUG=1: traceback)
        if os.environ.get("SN51_DEBUG"):
            raise
        out.print(f"[red]sn51 demo: {type(exc).__name__}: {exc}[/] (SN51_DEBUG=1 shows the traceback)")
        return False
    finally:
        cleanup(run, keep)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        providers: Annotated[int, typer.Option(min=1, max=50, help="Simulated providers.")] = 3,
        days: Annotated[float, typer.Option(min=3.0, help="Simulated days (3 or more: a day is paid 2 days "
                                                          "later).")] = 3.0,
        seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 0,
        keep: Annotated[bool, typer.Option("--keep", help="Leave the services, database and infra running.")]
        = False,
        timeout: Annotated[float, typer.Option(min=5.0, help="Seconds to wait for the payouts.")] = 150.0,
        stop: Annotated[bool, typer.Option("--stop", help="Stop what a `--keep` run left running.")] = False,
    ) -> None:
        """The whole product on simulated days: statements, payouts on the chain, and a passing verify."""
        if stop:
            stop_kept()
            return
        if not run_demo(providers, days, seed, keep, timeout):
            raise typer.Exit(1)
