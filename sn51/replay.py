"""`sn51 replay --input FILE --output FILE`: the cores over an input log, offline, byte for byte."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from services.benchmark_lines import BenchmarkLines, is_benchmark
from services.pipeline import Pipeline, Refusal
from services.runtime.collector import REPLAY_YOUNG, quiet_collector
from sn51.output import OutputError, check_output, whole_file

err = Console(stderr=True, soft_wrap=True)  # one line per message, whatever the width


def replay_file(input_path: Path, output_path: Path, *, progress: bool = True,
                parallel: bool = True) -> tuple[int, int, int]:
    """Replay `input_path` into `output_path`; returns (input lines, derived events, refused lines).

    With `parallel`, a second process decodes the benchmark lines (`services.benchmark_lines`) while this one
    folds the log; the output is the same, byte for byte."""
    quiet_collector(REPLAY_YOUNG)
    size = input_path.stat().st_size
    lines = derived = refused = 0
    pipeline = Pipeline()
    with contextlib.ExitStack() as stack:
        # The worker first: forked before the progress bar starts its refresh thread.
        benchmarks = stack.enter_context(BenchmarkLines(input_path)) if parallel and pipeline.benchmark_path else None
        src = stack.enter_context(input_path.open("rb"))
        out = stack.enter_context(whole_file(output_path, [input_path]))  # whole or not at all
        bar = stack.enter_context(Progress(
            TextColumn("replay"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
            console=err, disable=not progress, transient=True,
        ))
        task = bar.add_task("replay", total=size)
        write, line = out.write, pipeline.line
        for raw in src:  # the hot loop of a replay: one call per line, no generator in between
            lines += 1
            if raw.isspace():
                continue
            if benchmarks is not None and is_benchmark(raw):
                result = pipeline.benchmark(lines, raw, benchmarks.take(lines))
            else:
                result = line(lines, raw)
            if isinstance(result, Refusal):
                refused += 1
                print(f"line {result.line}: {result.code}: {result.reason}", file=sys.stderr)
            elif result:
                derived += len(result)
                write(b"".join([e.to_bytes() + b"\n" for e in result]))
            if lines % 20000 == 0:
                bar.update(task, completed=src.tell())
    return lines, derived, refused


def replay(
    input: Path = typer.Option(..., "--input", help="input log, JSON lines, in file order"),
    output: Path = typer.Option(..., "--output", help="where to write every derived event, JSON lines"),
    summary: bool = typer.Option(True, help="print a JSON summary to stderr at the end"),
    sequential: bool = typer.Option(False, "--sequential",
                                    help="one process: no second process decoding the benchmark lines"),
) -> None:
    """Run scoring, billing and settlement planning over an input log, offline."""
    if not input.is_file():
        what = "is a directory" if input.is_dir() else "no such input file"
        err.print(f"sn51 replay: {what}: {input}")
        raise typer.Exit(2)
    try:
        check_output(output, [input])
    except OutputError as exc:
        err.print(f"sn51 replay: {exc}")
        raise typer.Exit(2) from None
    try:
        lines, derived, refused = replay_file(input, output, parallel=not sequential,
                                              progress=sys.stderr.isatty() and not os.environ.get("CI"))
    except OSError as exc:  # a full disk, a vanished folder: the earlier output is as it was
        err.print(f"sn51 replay: cannot write {output}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    if summary:
        print(json.dumps({"input_lines": lines, "derived_events": derived, "refused_lines": refused}),
              file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
