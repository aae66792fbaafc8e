"""Benchmark of the scoring core; prints one JSON object.

- throughput: events/s through `ScoringCore.handle` on a synthetic mix dominated by benchmarks (decoded
  events, so the codec is not counted), with an epoch.closed every `epoch_every` events;
- split: the time of one `epoch.closed` (split and the epoch.scored data) with 10,000 executors taking part
  or not, median of a few runs.

Usage: .venv/bin/python bench/scoring.py [--executors 10000] [--events 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.envelope import Event
from schemas.events import (
    BenchmarkCompleted,
    EpochClosed,
    ExecutorDelisted,
    ExecutorListed,
    RentalStarted,
    RentalStopped,
    RevenueReported,
)
from schemas.values import fmt_decimal
from services.params import DEFAULT_MODELS
from services.scoring.core import ScoringCore

T0 = datetime(2026, 11, 21, tzinfo=UTC)
MODELS = list(DEFAULT_MODELS)
_LISTED_RATES = [Fraction(1), Fraction(1), Fraction(1), Fraction("1.05"), Fraction("1.2"), Fraction(4)]
_RENTED_RATES = [Fraction(1), Fraction("0.8"), Fraction("0.4")]


class Gen:
    def __init__(self, executors: int, seed: int = 51) -> None:
        self.rnd = random.Random(seed)
        self.n = 0
        self.epoch = 0
        self.executors = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(executors)]
        self.shape = {e: (self.rnd.choice(MODELS), self.rnd.choice([1, 1, 2, 4, 8, 8])) for e in self.executors}
        self.active: dict[str, str] = {}

    def event(self, type_: str, data: Any, key: str) -> Event:
        self.n += 1
        return Event(id=f"ev-{self.n}", type=type_, source="platform", time=T0 + timedelta(seconds=self.n),
                     key=key, causation_id=None, data=data)

    def listed(self, eid: str) -> Event:
        model, gpus = self.shape[eid]
        price = fmt_decimal(DEFAULT_MODELS[model].price * self.rnd.choice(_LISTED_RATES))
        return self.event("executor.listed", ExecutorListed(
            executor_id=eid, hotkey=f"hk-{eid[:8]}", coldkey=f"ck-{eid[:8]}", gpu_model=model, gpu_count=gpus,
            price_per_gpu_usd=price, sysbox=True), eid)

    def bench(self, eid: str) -> Event:
        model, gpus = self.shape[eid]
        r = self.rnd.random()
        return self.event("benchmark.completed", BenchmarkCompleted(
            executor_id=eid, hotkey=f"hk-{eid[:8]}", gpu_model=model, gpu_count=gpus if r > 0.02 else 1,
            vram_mb_per_gpu=DEFAULT_MODELS[model].vram_mib - self.rnd.randrange(0, 2000),
            matmul_passed=r > 0.01, matmul_tflops="812.25", download_mbps=f"{self.rnd.randrange(60, 2000)}.5",
            upload_mbps="400", sysbox=r < 0.97, driver_version="550.54.15", measured_at=T0), eid)

    def rental(self, eid: str) -> Event:
        rid = self.active.pop(eid, None)
        if rid is not None:
            return self.event("rental.stopped", RentalStopped(
                rental_id=rid, executor_id=eid, stopped_at=T0, reason="done"), eid)
        rid = f"r-{self.n}"
        self.active[eid] = rid
        price = fmt_decimal(DEFAULT_MODELS[self.shape[eid][0]].price * self.rnd.choice(_RENTED_RATES))
        return self.event("rental.started", RentalStarted(
            rental_id=rid, executor_id=eid, renter_id="renter", price_per_gpu_usd=price, started_at=T0), eid)

    def revenue(self) -> Event:
        amounts = {m: f"{self.rnd.randrange(0, 5000)}.25" for m in self.rnd.sample(MODELS, 4)}
        return self.event("revenue.reported", RevenueReported(
            window_start=T0, window_end=T0, revenue_usd_by_model=amounts), "revenue")

    def epoch_closed(self) -> Event:
        self.epoch += 1
        return self.event("epoch.closed", EpochClosed(
            netuid=51, epoch=self.epoch, start_block=self.epoch * 360, end_block=self.epoch * 360 + 359,
            closed_at=T0 + timedelta(minutes=72 * self.epoch), miner_emission_rao=148_000_000_000,
            tao_usd="412.5", alpha_tao="0.0123"), "netuid-51")

    def setup(self) -> list[Event]:
        out = []
        for eid in self.executors:
            out += [self.listed(eid), self.bench(eid)]
        for eid in self.rnd.sample(self.executors, len(self.executors) // 3):
            out.append(self.rental(eid))
        return out

    def mix(self, count: int, epoch_every: int) -> list[Event]:
        out = []
        for i in range(1, count + 1):
            if epoch_every and i % epoch_every == 0:
                out.append(self.epoch_closed())
                continue
            r = self.rnd.random()
            eid = self.rnd.choice(self.executors)
            if r < 0.80:
                out.append(self.bench(eid))
            elif r < 0.94:
                out.append(self.rental(eid))
            elif r < 0.98:
                out.append(self.listed(eid))
            elif r < 0.995:
                out.append(self.event("executor.delisted", ExecutorDelisted(executor_id=eid), eid))
            else:
                out.append(self.revenue())
        return out


def throughput(executors: int, events: int, epoch_every: int) -> dict[str, Any]:
    gen = Gen(executors)
    core = ScoringCore()
    for ev in gen.setup():
        core.handle(ev)
    mix = gen.mix(events, epoch_every)
    derived = 0
    start, cpu = time.perf_counter(), time.process_time()
    for ev in mix:
        derived += len(core.handle(ev))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"executors": executors, "events": len(mix), "epoch_every": epoch_every,
            "mix": dict(Counter(e.type for e in mix)), "derived": derived,
            "seconds": round(elapsed, 3), "events_per_s": round(len(mix) / elapsed),
            "cpu_seconds": round(cpu, 3), "events_per_cpu_s": round(len(mix) / cpu)}


def split_time(executors: int, runs: int) -> dict[str, Any]:
    gen = Gen(executors, seed=7)
    core = ScoringCore()
    for ev in gen.setup():
        core.handle(ev)
    times, cpu_times = [], []
    nodes = 0
    for _ in range(runs):
        ev = gen.epoch_closed()
        start, cpu = time.perf_counter(), time.process_time()
        out = core.handle(ev)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
        nodes = len(out[0].data.nodes)  # type: ignore[attr-defined]
    return {"executors": executors, "taking_part": nodes, "runs": runs,
            "median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4),
            "median_cpu_s": round(statistics.median(cpu_times), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--executors", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    result: dict[str, Any] = {
        "throughput": throughput(args.executors, args.events, epoch_every=0),
        "throughput_with_epochs": throughput(args.executors, args.events // 4, epoch_every=10_000),
        "split": split_time(args.executors, args.runs),
    }
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
