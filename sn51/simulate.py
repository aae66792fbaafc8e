"""`sn51 simulate`: write a simulated input log as JSON lines, and/or publish it to the broker.

The log itself comes from `sn51.sim` (deterministic in its arguments); this module is the shell: arguments,
the file (written whole or not at all) and the broker (topic created with one partition when missing, acks=all,
no idempotent producer since Tansu refuses it, paced at `--rate` with a progress bar on stderr).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, TextIO

import typer

from schemas import topics
from schemas.values import LATEST, parse_time
from sn51.output import OutputError, whole_file
from sn51.sim import DEFAULT_START, Faults, Line, lines


class Stop(Exception):
    """A one-line error for the operator."""


MAX_DAYS = 3660  # ten years of events
MAX_PROVIDERS = 100_000  # ten times the largest network the benches plan for


def _start(value: str | None) -> datetime:
    if value is None:
        return DEFAULT_START
    try:
        return parse_time(value)
    except Exception:
        raise Stop(f"--start {value!r} is not an RFC 3339 time with a UTC offset, in 2000..2099") from None


def _write(out: TextIO, produce: Callable[[], Iterator[Line]]) -> int:
    n = 0
    for line in produce():
        out.write(line.text)
        out.write("\n")
        n += 1
    return n


async def _ensure_topic(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _publish(bootstrap: str, topic: str, rate: float, produce: Callable[[], Iterator[Line]]) -> int:
    from aiokafka import AIOKafkaProducer
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    total = sum(1 for _ in produce())  # deterministic: a counting pass gives the bar its total
    await _ensure_topic(bootstrap, topic)
    # acks=all; no idempotent producer (Tansu refuses InitProducerId v0, see INFRA.md).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=10, max_batch_size=1 << 20
    )
    await producer.start()
    sent = 0
    try:
        with Progress(
            TextColumn(f"publishing to {topic}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} ev/s"), TimeRemainingColumn(), console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("publish", total=total, rate="-")
            began = time.monotonic()
            pending = []
            for line in produce():
                if rate > 0:
                    ahead = began + sent / rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                pending.append(await producer.send(topic, line.text.encode(), key=line.key.encode()))
                sent += 1
                if len(pending) >= 1000:
                    await asyncio.gather(*pending)
                    pending.clear()
                if sent % 100 == 0:
                    elapsed = time.monotonic() - began
                    bar.update(task, completed=sent, rate=f"{sent / elapsed:,.0f}" if elapsed else "-")
            await asyncio.gather(*pending)
            bar.update(task, completed=sent)
    finally:
        await producer.stop()
    return sent


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 0,
        providers: Annotated[int, typer.Option(min=1, help="Number of providers (hotkeys).")] = 10,
        days: Annotated[float, typer.Option(help="Days to simulate (> 0).")] = 1.0,
        output: Annotated[
            Path | None, typer.Option(help="JSON lines file to write ('-' for stdout).")
        ] = None,
        start: Annotated[str | None, typer.Option(help="Start time, RFC 3339 (default 2026-11-01T00:00:00Z).")]
        = None,
        benchmark_interval_minutes: Annotated[
            float, typer.Option(min=1.0, help="Minutes between benchmarks of one executor.")
        ] = 15.0,
        params_update: Annotated[
            bool, typer.Option(help="Add one params.updated (a new model) six hours in.")
        ] = False,
        duplicates: Annotated[float, typer.Option(min=0.0, max=1.0, help="Rate of lines re-sent later.")] = 0.0,
        out_of_order: Annotated[
            float, typer.Option(min=0.0, max=1.0, help="Rate of lines delivered after a later one of their key.")
        ] = 0.0,
        malformed: Annotated[
            float, typer.Option(min=0.0, max=1.0, help="Rate of broken lines added.")
        ] = 0.0,
        publish: Annotated[bool, typer.Option(help="Publish to the broker's input topic.")] = False,
        bootstrap: Annotated[
            str | None, typer.Option(help="Broker bootstrap (default: env KAFKA_BOOTSTRAP).")
        ] = None,
        topic: Annotated[str, typer.Option(help="Topic to publish to.")] = topics.INPUT,
        rate: Annotated[float, typer.Option(min=0.0, help="Events per second when publishing (0: no limit).")]
        = 1000.0,
    ) -> None:
        """Write a deterministic, realistic input log (SPEC section 2) as JSON lines."""
        try:
            if output is None and not publish:
                raise Stop("nothing to do: give --output FILE and/or --publish")
            if not 0 < days <= MAX_DAYS:  # also refuses nan and inf
                raise Stop(f"--days {days} must be positive and at most {MAX_DAYS}")
            if providers > MAX_PROVIDERS:
                raise Stop(f"--providers {providers} is more than {MAX_PROVIDERS}")
            if not benchmark_interval_minutes <= MAX_DAYS * 1440:  # also refuses nan and inf
                raise Stop(f"--benchmark-interval-minutes {benchmark_interval_minutes} is more than {MAX_DAYS} days")
            server = bootstrap or os.environ.get("KAFKA_BOOTSTRAP")
            if publish and not server:
                raise Stop("--publish needs --bootstrap HOST:PORT or the KAFKA_BOOTSTRAP environment variable")
            begin = _start(start)
            if begin + timedelta(days=days + 1) >= LATEST:  # days is at most MAX_DAYS: no overflow
                raise Stop(f"--start {begin.isoformat()} plus --days {days} runs past 2099, the contract's last year")
            faults = Faults(duplicates, out_of_order, malformed)

            def produce() -> Iterator[Line]:
                return lines(
                    seed, providers, days, faults=faults, start=begin,
                    benchmark_interval_minutes=benchmark_interval_minutes, params_update=params_update,
                )

            produce()  # checks the arguments before anything is written

            if output is not None:
                began = time.monotonic()
                if str(output) == "-":
                    n = _write(sys.stdout, produce)
                else:
                    try:
                        with whole_file(output) as out:  # a whole log or none
                            text = io.TextIOWrapper(out, encoding="utf-8", newline="\n")
                            n = _write(text, produce)
                            text.flush()
                            text.detach()
                    except OutputError as exc:
                        raise Stop(str(exc)) from None
                    except OSError as exc:
                        raise Stop(f"cannot write {output}: {exc.strerror or exc}") from None
                    typer.echo(f"wrote {n} events to {output} in {time.monotonic() - began:.1f} s", err=True)
            if publish and server:
                try:
                    n = asyncio.run(_publish(server, topic, rate, produce))
                except Stop:
                    raise
                except Exception as exc:
                    raise Stop(f"publishing to {server} failed: {type(exc).__name__}: {exc}") from None
                typer.echo(f"published {n} events to {topic} at {server}", err=True)
        except (Stop, ValueError, OverflowError) as exc:
            typer.echo(f"sn51 simulate: {exc}", err=True)
            raise typer.Exit(2) from None
