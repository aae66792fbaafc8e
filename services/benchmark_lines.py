"""The benchmark lines of an input log, decoded in a second process while `sn51 replay` folds the log.

A replay's input is nearly all `benchmark.completed` lines (97 % of a simulated log), and whether one is well
formed (JSON, schema, time: `schemas.codec.decode`) depends on the line alone, not on what came before. So a
second process reads the same file, decodes every line `is_benchmark` picks, and sends back, in line order, what
the pipeline needs of each: its id, content digest and time and the facts scoring folds (`BenchmarkLine`), or
the codec's refusal, or None (not a benchmark after all). The replay folds every line in log order as before
(duplicates, conflicts, the cores), only without decoding those lines itself (`Pipeline.benchmark`). Both
processes number the lines alike, so results and lines are matched by number. The output is that of the
sequential replay, byte for byte (`tests/unit/test_benchmark_lines.py`).
"""

from __future__ import annotations

import marshal
import multiprocessing
import traceback
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from schemas.codec import Refused, content_digest, decode
from schemas.events import BenchmarkCompleted
from services.pipeline import Refusal

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
MARK = b'"type":"benchmark.completed"'
CHUNK = 2_000  # results per message between the processes

Facts = tuple[str, bytes, int, str, int, int, bool, bool, str]
Result = Facts | tuple[str, str] | None  # facts, (code, reason) of a refusal, or None


def is_benchmark(raw: bytes) -> bool:
    """Whether the worker takes this line (the canonical spelling of the type; anything else is decoded by the
    replay itself, and a line that only looks like one comes back as None)."""
    return MARK in raw


class BenchmarkLine(NamedTuple):
    """A well-formed `benchmark.completed`, as scoring folds it: the event's id, digest and time (a `Cause`)
    and its facts (`BenchmarkFacts`)."""

    id: str
    digest: bytes
    time_us: int  # microseconds since 1970-01-01 UTC
    executor_id: str
    gpu_count: int
    vram_mb_per_gpu: int
    matmul_passed: bool
    sysbox: bool
    download_mbps: str

    @property
    def time(self) -> datetime:
        return EPOCH + self.time_us * ONE_MICROSECOND


def examine(raw: bytes) -> Result:
    """What the worker sends for one line it takes."""
    try:
        event = decode(raw)
    except Refused as r:
        return (r.code, r.reason)
    d = event.data
    if not isinstance(d, BenchmarkCompleted):
        return None
    return (event.id, content_digest(raw), (event.time - EPOCH) // ONE_MICROSECOND, d.executor_id, d.gpu_count,
            d.vram_mb_per_gpu, d.matmul_passed, d.sysbox, d.download_mbps)


def _work(path: str, out: Connection) -> None:
    try:
        chunk: list[tuple[int, Result]] = []
        with open(path, "rb") as src:
            for number, raw in enumerate(src, start=1):
                if raw.isspace() or not is_benchmark(raw):
                    continue
                chunk.append((number, examine(raw)))
                if len(chunk) == CHUNK:
                    out.send_bytes(marshal.dumps(chunk))  # plain tuples: marshal writes them 2.5x faster than pickle
                    chunk = []
        out.send_bytes(marshal.dumps(chunk))
        out.send_bytes(marshal.dumps(None))
    except BaseException:
        out.send_bytes(marshal.dumps(traceback.format_exc()))
    finally:
        out.close()


class BenchmarkLines:
    """The worker on `path`, as a context manager; `take(number)` is what it found on line `number`, a line
    `is_benchmark` picked, asked for in increasing order."""

    def __init__(self, path: Path) -> None:
        context = multiprocessing.get_context("fork")
        self._in, child = context.Pipe(duplex=False)
        self._process = context.Process(target=_work, args=(str(path), child), name="sn51-benchmark-lines",
                                        daemon=True)
        self._process.start()
        child.close()
        self._chunk: list[tuple[int, Result]] = []
        self._at = 0

    def take(self, number: int) -> BenchmarkLine | Refusal | None:
        if self._at == len(self._chunk):
            self._chunk, self._at = self._receive(), 0
        found, result = self._chunk[self._at]
        self._at += 1
        if found != number:
            raise RuntimeError(f"the benchmark worker answered for line {found}, not {number}")
        if result is None:
            return None
        if len(result) == 2:
            return Refusal(number, None, result[0], result[1])
        return BenchmarkLine._make(result)

    def _receive(self) -> list[tuple[int, Result]]:
        try:
            message = marshal.loads(self._in.recv_bytes())
        except EOFError:
            raise RuntimeError("the benchmark worker stopped without a word") from None
        if isinstance(message, str):
            raise RuntimeError(f"the benchmark worker failed:\n{message}")
        if not message:
            raise RuntimeError("the benchmark worker has no more lines")
        chunk: list[tuple[int, Result]] = message
        return chunk

    def __enter__(self) -> BenchmarkLines:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(5)
        self._in.close()
