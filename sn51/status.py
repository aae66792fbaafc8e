"""`sn51 status [--format table|json] [--demo]`: is each service healthy, where is it, and is it keeping up?

Per service: HTTP `/health` on its port; its position (the inbox's last `seq`, the last event's type and event
time, when it was processed); consumer lag per consumed topic from the group's committed offsets (a consumer's
`committed()`: Tansu answers OffsetFetch, while the admin client's list_consumer_group_offsets fails on it);
dead letters; and its last milestone (scoring: the last epoch scored, billing: the last day closed,
settlement: the last payout run, collateral: the last block watched).

The topic end: Tansu's `end_offsets` gives the start of the last stored batch + 1 (INFRA.md), so the end is
found by reading that last batch to its end (a plain consumer, no group); the lag is labelled "exact" then,
or "≥" (a lower bound from end_offsets) when that read fails.

`--demo` reads the ports, database, topic prefix and groups that `sn51 demo --keep` recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

SERVICES = ("scoring", "billing", "settlement", "collateral")
DEFAULT_PORTS = {"scoring": 8151, "billing": 8152, "settlement": 8153, "collateral": 8154}
MILESTONES = {
    "scoring": """SELECT 'epoch ' || (convert_from(value, 'UTF8')::jsonb #>> '{data,epoch}') || ' closed '
                  || (convert_from(value, 'UTF8')::jsonb #>> '{data,closed_at}')
                  FROM scoring.outbox WHERE event_type = 'epoch.scored' ORDER BY seq DESC LIMIT 1""",
    "billing": """SELECT 'day ' || billing_day::text || ' (' || jsonb_array_length(statement -> 'providers')
                  || ' providers)' FROM billing.day_statement ORDER BY billing_day DESC LIMIT 1""",
    "settlement": """SELECT 'run ' || r.run_day::text || ': ' || r.planned || ' planned, '
                     || (SELECT count(*) FROM settlement.payout p WHERE p.run_id = r.run_id
                         AND p.state = 'confirmed') || ' confirmed'
                     FROM settlement.payout_run r ORDER BY r.run_day DESC LIMIT 1""",
    "collateral": """SELECT 'block ' || max(block_number) || ' (' || count(*) || ' logs)'
                     FROM collateral.collateral_logs WHERE NOT retracted HAVING count(*) > 0""",
}
MILESTONE_NAMES = {"scoring": "last epoch scored", "billing": "last day closed",
                   "settlement": "last payout run", "collateral": "last block watched"}


@dataclass
class Lag:
    topic: str
    committed: int | None
    end: int | None
    lag: int | None
    exact: bool


@dataclass
class ServiceStatus:
    service: str
    port: int
    health: str  # ok | unavailable | down
    seq: int | None = None
    last_event: str | None = None
    last_event_time: str | None = None
    processed_at: str | None = None
    dead_letters: int | None = None
    milestone: str | None = None
    lags: list[Lag] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    database_url: str | None
    kafka: str | None
    prefix: str
    ports: dict[str, int]
    groups: dict[str, str]


def health(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return "ok" if r.status == 200 else "unavailable"
    except urllib.error.HTTPError as exc:
        return "unavailable" if exc.code == 503 else f"http {exc.code}"
    except (OSError, ValueError):
        return "down"


def consumed_topics(service: str) -> list[str]:
    from schemas.topics import ROUTES
    from services.billing.core import BillingCore
    from services.collateral.core import CollateralCore
    from services.scoring.core import ScoringCore
    from services.settlement.core import SettlementCore

    reads = {"scoring": ScoringCore.reads, "billing": BillingCore.reads, "settlement": SettlementCore.reads,
             "collateral": CollateralCore.reads}[service]
    return sorted({ROUTES[t].topic for t in reads})


async def read_database(url: str, st: ServiceStatus) -> None:
    import asyncpg

    from services.runtime.db import check_database_url

    conn = await asyncpg.connect(check_database_url(url), timeout=5)
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{st.service}.inbox"):
            st.errors.append(f"no schema {st.service!r} in this database (has the service run?)")
            return
        row = await conn.fetchrow(f"SELECT seq, event_type, raw, processed_at FROM {st.service}.inbox "
                                  "ORDER BY seq DESC LIMIT 1")
        if row is not None:
            st.seq, st.last_event = int(row["seq"]), row["event_type"]
            with contextlib.suppress(ValueError, AttributeError):
                st.last_event_time = json.loads(bytes(row["raw"])).get("time")
            st.processed_at = row["processed_at"].isoformat(timespec="seconds")
        st.dead_letters = int(await conn.fetchval(f"SELECT count(*) FROM {st.service}.dead_letter"))
        try:
            st.milestone = await conn.fetchval(MILESTONES[st.service])
        except asyncpg.PostgresError as exc:  # the service's own tables not there (yet)
            st.errors.append(f"milestone: {exc}")
    finally:
        await conn.close()


async def true_end(bootstrap: str, tp: Any, reported: int) -> int | None:
    """The offset after the last record of tp: read from the start of the last stored batch to its end."""
    from aiokafka import AIOKafkaConsumer

    if reported <= 0:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, reported - 1)
        end = reported
        for _ in range(50):
            batch = await consumer.getmany(tp, timeout_ms=300, max_records=10_000)
            records = batch.get(tp, [])
            if not records:
                break
            end = max(end, records[-1].offset + 1)
        return end
    finally:
        await consumer.stop()


async def read_lags(bootstrap: str, group: str, topics: list[str]) -> list[Lag]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    lags: list[Lag] = []
    try:
        existing = await consumer.topics()
        tps = [TopicPartition(t, p) for t in topics if t in existing
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(tps) if tps else {}
        for tp in tps:
            committed = await consumer.committed(tp)
            end: int | None = ends.get(tp)
            exact = False
            with contextlib.suppress(Exception):
                found = await asyncio.wait_for(true_end(bootstrap, tp, int(end or 0)), 10)
                if found is not None:
                    end, exact = found, True
            name = tp.topic if tp.partition == 0 else f"{tp.topic}[{tp.partition}]"
            lag = None if end is None else max(end - (committed or 0), 0)
            lags.append(Lag(name, committed, end, lag, exact))
    finally:
        await consumer.stop()
    return lags


async def collect(target: Target) -> list[ServiceStatus]:
    out: list[ServiceStatus] = []
    for service in SERVICES:
        port = target.ports[service]
        st = ServiceStatus(service, port, await asyncio.to_thread(health, port))
        if target.database_url:
            try:
                await read_database(target.database_url, st)
            except Exception as exc:  # an unreachable or foreign database: say so, go on
                st.errors.append(f"database: {type(exc).__name__}: {exc}")
        if target.kafka:
            topics = [target.prefix + t for t in consumed_topics(service)]
            try:
                st.lags = await asyncio.wait_for(read_lags(target.kafka, target.groups[service], topics), 30)
            except Exception as exc:
                st.errors.append(f"broker: {type(exc).__name__}: {exc}")
        out.append(st)
    return out


def resolve(demo: bool, database_url: str | None, bootstrap: str | None, prefix: str) -> Target:
    ports = dict(DEFAULT_PORTS)
    groups = {s: f"sn51-{s}" for s in SERVICES}
    if demo:
        from sn51.demo_stack import demo_record_path
        from sn51.localinfra.procs import read_json

        record = read_json(demo_record_path())
        if not record:
            raise LookupError(f"no demo is kept running ({demo_record_path()} is missing): run `sn51 demo --keep`")
        ports.update({k: int(v) for k, v in dict(record.get("ports", {})).items()})  # type: ignore[call-overload]
        groups.update(dict(record.get("groups", {})))  # type: ignore[call-overload]
        return Target(str(record["database_url"]), str(record["kafka_bootstrap"]), str(record["topic_prefix"]),
                      ports, groups)
    if database_url is None or bootstrap is None:
        from sn51.localinfra import local_endpoints

        endpoints = local_endpoints()
        database_url = database_url or os.environ.get("DATABASE_URL") or endpoints.database_url
        bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP") or endpoints.kafka_bootstrap
    return Target(database_url, bootstrap, prefix, ports, groups)


def _lag_text(lags: list[Lag]) -> str:
    parts = []
    for lag in lags:
        topic = lag.topic.rsplit(".", 1)[-1]
        if lag.lag is None:
            parts.append(f"{topic}: ?")
        else:
            parts.append(f"{topic}: {'' if lag.exact else '≥'}{lag.lag} ({lag.committed or 0}/{lag.end})")
    return "\n".join(parts) or "-"


def render(console: Console, statuses: list[ServiceStatus]) -> None:
    t = Table(title="sn51 services", title_justify="left")
    for col in ("service", "health", "position", "last event", "lag (committed/end)", "dead letters",
                "milestone"):
        t.add_column(col, overflow="fold")
    colour = {"ok": "green", "unavailable": "yellow"}
    for st in statuses:
        t.add_row(
            f"{st.service}\n:{st.port}",
            f"[{colour.get(st.health, 'red')}]{st.health}[/]",
            "-" if st.seq is None else f"seq {st.seq}",
            "-" if st.last_event is None else f"{st.last_event}\n@ {st.last_event_time}\nprocessed {st.processed_at}",
            _lag_text(st.lags),
            "-" if st.dead_letters is None else str(st.dead_letters),
            f"{MILESTONE_NAMES[st.service]}:\n{st.milestone or '-'}",
        )
    console.print(t)
    for st in statuses:
        for e in st.errors:
            console.print(f"[yellow]{st.service}[/]: {e}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
        demo: Annotated[bool, typer.Option("--demo", help="The services a `sn51 demo --keep` left running.")]
        = False,
        database_url: Annotated[str | None, typer.Option(help="default: DATABASE_URL or the local stack")] = None,
        bootstrap: Annotated[str | None, typer.Option(help="default: KAFKA_BOOTSTRAP or the local stack")] = None,
        topic_prefix: Annotated[str, typer.Option(help="the services' SN51_TOPIC_PREFIX")] = "",
    ) -> None:
        """Health, position, consumer lag, dead letters and last epoch/day/payout run of each service;
        exit code 1 when a service is not healthy."""
        if fmt not in ("table", "json"):
            typer.echo(f"sn51 status: --format must be table or json, not {fmt!r}", err=True)
            raise typer.Exit(2)
        try:
            target = resolve(demo, database_url, bootstrap, topic_prefix)
        except (LookupError, KeyError, ValueError, OSError) as exc:
            typer.echo(f"sn51 status: {exc}", err=True)
            raise typer.Exit(2) from None
        statuses = asyncio.run(collect(target))
        if fmt == "json":
            typer.echo(json.dumps([asdict(s) for s in statuses], sort_keys=True))
        else:
            render(Console(width=None if sys.stdout.isatty() else 160), statuses)
        if any(s.health != "ok" for s in statuses):
            raise typer.Exit(1)
