"""The event stream of a planned world: envelopes of SPEC section 2, in time order.

Planned events (listings, rentals, incidents) are few and sorted once; the periodic ones (benchmarks every
`benchmark_interval` seconds per executor, revenue reports every 10 minutes, epochs every tempo) are made one
hour at a time, merged with the planned ones of that hour and sorted, so memory stays flat for long runs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from schemas.topics import ROUTES, key_for
from schemas.values import fmt_decimal, format_time
from sn51.sim.keys import uuid4
from sn51.sim.world import HOUR, MODELS, PRICE_UNIT, Executor, World, plan

DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)
REVENUE_WINDOW = 600
TEMPO = 360
SECONDS_PER_BLOCK = 12
NETUID = 51
EPOCH_EMISSION_RAO = 147_600_000_000  # 0.41 × 360 blocks × 1 alpha per block
NEW_MODEL_UPDATE = {
    "models": {"NVIDIA L40S": {"price": "0.95", "caps": {"1": 8, "8": 32}, "vram_mib": 46068, "portion": "0.02"}}
}

# Order of types at the same second: a listing before what it enables, a stop before a new start on the
# same executor, a delisting after the stop it causes.
RANK = {
    "params.updated": 0,
    "executor.listed": 1,
    "rental.stopped": 2,
    "rental.started": 3,
    "rental.incident": 4,
    "benchmark.completed": 5,
    "revenue.reported": 6,
    "epoch.closed": 7,
    "executor.delisted": 8,
}

Item = tuple[int, int, int, str, dict[str, Any], str]  # (second, rank, tie, type, data, time)


def price_str(units: int) -> str:
    return fmt_decimal(Fraction(units, PRICE_UNIT), 4)


def _hundredths(n: int) -> str:
    return f"{n // 100}.{n % 100:02d}"


class _Clock:
    """Seconds after the start to RFC 3339 strings: `format_time`, with the date and time of day cached."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.fast = start.microsecond == 0
        midnight = start.replace(hour=0, minute=0, second=0)
        self.offset = int((start - midnight).total_seconds())
        self.midnight = midnight
        self.days: dict[int, str] = {}
        self.hms: list[str] = []

    def __call__(self, t: int) -> str:
        if not self.fast:
            return format_time(self.start + timedelta(seconds=t))
        if not self.hms:
            self.hms = [f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)]
        day, s = divmod(self.offset + t, 86400)
        date = self.days.get(day)
        if date is None:
            date = self.days[day] = (self.midnight + timedelta(days=day)).strftime("%Y-%m-%d")
        return date + self.hms[s]


def _planned(world: World, at: _Clock, params_update: bool) -> list[Item]:
    items: list[Item] = []
    tie = 0

    def add(t: int, type_: str, data: dict[str, Any]) -> None:
        nonlocal tie
        if t < world.horizon:
            items.append((t, RANK[type_], tie, type_, data, at(t)))
            tie += 1

    if params_update:
        add(min(6 * HOUR, world.horizon // 4), "params.updated", NEW_MODEL_UPDATE)
    for ex in world.executors:
        for listing in ex.listings:
            add(listing.start, "executor.listed", {
                "executor_id": ex.executor_id,
                "hotkey": ex.provider.hotkey,
                "coldkey": ex.provider.coldkey,
                "gpu_model": ex.gpu_model,
                "gpu_count": ex.gpu_count,
                "price_per_gpu_usd": price_str(listing.price_units),
                "sysbox": listing.sysbox,
            })
            if listing.end is not None:
                add(listing.end, "executor.delisted", {"executor_id": ex.executor_id})
        for r in ex.rentals:
            add(r.start, "rental.started", {
                "rental_id": r.rental_id,
                "executor_id": ex.executor_id,
                "renter_id": r.renter_id,
                "price_per_gpu_usd": price_str(r.price_units),
                "started_at": at(r.start),
            })
            for inc in r.incidents:
                add(inc.at, "rental.incident", {
                    "rental_id": r.rental_id,
                    "executor_id": ex.executor_id,
                    "kind": inc.kind,
                    "at": at(inc.at),
                })
            if r.stop is not None:
                add(r.stop, "rental.stopped", {
                    "rental_id": r.rental_id,
                    "executor_id": ex.executor_id,
                    "stopped_at": at(r.stop),
                    "reason": r.reason,
                })
    items.sort(key=lambda i: (i[0], i[1], i[2]))
    return items


def _revenue(world: World) -> dict[int, dict[str, int]]:
    """Per report time, per model: Σ seconds × price units × gpu_count of the rentals inside its window."""
    out: dict[int, dict[str, int]] = {}
    for ex in world.executors:
        for r in ex.rentals:
            stop = r.stop if r.stop is not None else world.horizon
            w = r.start // REVENUE_WINDOW * REVENUE_WINDOW
            while w < stop:
                seconds = min(stop, w + REVENUE_WINDOW) - max(r.start, w)
                by_model = out.setdefault(w + REVENUE_WINDOW, {})
                by_model[ex.gpu_model] = by_model.get(ex.gpu_model, 0) + seconds * r.price_units * ex.gpu_count
                w += REVENUE_WINDOW
    return out


class _Chain:
    """Epoch closes at 12 s per block, with emission and a slow random walk of the prices."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"sn51-sim:{seed}:chain")
        # The block produced at the start of the simulation: a mainnet-like height, anywhere in an epoch.
        self.first_block = 6_900_000 + self.rng.randrange(TEMPO * 100)
        self.tao_cents = 40_025
        self.alpha_micro = 45_000
        epoch = self.first_block // TEMPO
        self.next_epoch = epoch

    def close_time(self, epoch: int) -> int:
        end_block = (epoch + 1) * TEMPO - 1
        return (end_block - self.first_block) * SECONDS_PER_BLOCK

    def closes_before(self, t1: int) -> Iterator[tuple[int, dict[str, Any]]]:
        while (t := self.close_time(self.next_epoch)) < t1:
            epoch = self.next_epoch
            self.next_epoch += 1
            if t < 0:
                continue
            self.tao_cents = max(5_000, self.tao_cents + self.rng.randint(-150, 150))
            self.alpha_micro = min(200_000, max(5_000, self.alpha_micro + self.rng.randint(-300, 300)))
            emission = EPOCH_EMISSION_RAO * self.rng.randint(9_700, 10_300) // 10_000
            yield t, {
                "netuid": NETUID,
                "epoch": epoch,
                "start_block": epoch * TEMPO,
                "end_block": (epoch + 1) * TEMPO - 1,
                "miner_emission_rao": emission,
                "tao_usd": _hundredths(self.tao_cents),
                "alpha_tao": fmt_decimal(Fraction(self.alpha_micro, 1_000_000), 6),
            }


def _benchmark(rng: random.Random, ex: Executor, sysbox: bool) -> dict[str, Any]:
    profile = MODELS[ex.gpu_model]
    fault = ex.fault
    noise = rng.random
    vram = profile.vram_mib - int(profile.vram_mib * 0.004 * noise())
    if fault == "vram_mismatch":
        vram = int(profile.vram_mib * (0.45 + 0.35 * noise()))
    matmul = fault != "matmul_failed" and noise() > 0.002
    count = ex.gpu_count
    if fault == "gpu_count_mismatch":
        count = count - 1 if count > 1 else 2
    return {
        "executor_id": ex.executor_id,
        "hotkey": ex.provider.hotkey,
        "gpu_model": ex.gpu_model,
        "gpu_count": count,
        "vram_mb_per_gpu": vram,
        "matmul_passed": matmul,
        "matmul_tflops": _hundredths(int(profile.tflops * (94 + 10 * noise()))) if matmul else None,
        "download_mbps": _hundredths(int(ex.download_mbps * (0.8 + 0.35 * noise()))),
        "upload_mbps": _hundredths(int(ex.upload_mbps * (0.8 + 0.35 * noise()))),
        "sysbox": sysbox,
        "driver_version": ex.driver,
    }


def generate(
    seed: int,
    providers: int,
    days: float,
    *,
    start: datetime = DEFAULT_START,
    benchmark_interval_minutes: float = 15,
    params_update: bool = False,
) -> Iterator[dict[str, Any]]:
    """The input log of a simulated platform and chain, as envelope dicts in time order.

    Deterministic: the same arguments give the same envelopes (ids included). `params_update` adds one
    `params.updated` (a new model, NVIDIA L40S) six hours in.
    """
    if providers < 1:
        raise ValueError("providers must be at least 1")
    if days * 86400 < 60:
        raise ValueError("days must be at least one minute (0.0007)")
    interval = int(benchmark_interval_minutes * 60)
    if interval < 60:
        raise ValueError("the benchmark interval must be at least 1 minute")
    if start.tzinfo is None:
        raise ValueError("the start time needs a UTC offset")
    return _stream(seed, providers, int(days * 86400), start.astimezone(UTC), interval, params_update)


def _stream(
    seed: int, providers: int, horizon: int, start: datetime, interval: int, params_update: bool
) -> Iterator[dict[str, Any]]:
    world = plan(seed, providers, horizon, interval)
    at = _Clock(start)
    ids = random.Random(f"sn51-sim:{seed}:ids")
    bench_rng = random.Random(f"sn51-sim:{seed}:benchmarks")
    planned = _planned(world, at, params_update)
    revenue = _revenue(world)
    chain = _Chain(seed)
    table_models = [m for m, p in MODELS.items() if p.price_units is not None]
    # Benchmark windows: (executor, listed from, listed until) for executors that get benchmarked.
    windows = [
        (ex, listing.start, listing.end if listing.end is not None else horizon, listing.sysbox)
        for ex in world.executors
        if ex.fault != "never_benchmarked"
        for listing in ex.listings
    ]
    p = 0
    for c0 in range(0, horizon, HOUR):
        c1 = min(c0 + HOUR, horizon)
        chunk: list[Item] = []
        while p < len(planned) and planned[p][0] < c1:
            chunk.append(planned[p])
            p += 1
        tie = len(planned)
        for t, data in chain.closes_before(c1):
            data["closed_at"] = time = at(t)
            chunk.append((t, RANK["epoch.closed"], tie, "epoch.closed", data, time))
            tie += 1
        for t in range(max(-(-c0 // REVENUE_WINDOW), 1) * REVENUE_WINDOW, c1, REVENUE_WINDOW):
            by_model = revenue.get(t, {})
            amounts = {m: by_model.get(m, 0) for m in table_models} | by_model
            time = at(t)
            chunk.append((t, RANK["revenue.reported"], tie, "revenue.reported", {
                "window_start": at(t - REVENUE_WINDOW),
                "window_end": time,
                "revenue_usd_by_model": {
                    m: fmt_decimal(Fraction(v, HOUR * PRICE_UNIT), 6) for m, v in sorted(amounts.items())
                },
            }, time))
            tie += 1
        for ex, w0, w1, sysbox in windows:
            lo, hi = max(c0, w0 + 1), min(c1, w1)
            if lo >= hi:
                continue
            k = -((ex.bench_phase - lo) // interval)  # first k with phase + k × interval ≥ lo
            for t in range(ex.bench_phase + k * interval, hi, interval):
                data = _benchmark(bench_rng, ex, sysbox)
                data["measured_at"] = time = at(t)
                chunk.append((t, RANK["benchmark.completed"], tie, "benchmark.completed", data, time))
                tie += 1
        chunk.sort(key=lambda i: (i[0], i[1], i[2]))
        for _, _, _, type_, data, time in chunk:
            yield {
                "causation_id": None,
                "data": data,
                "id": uuid4(ids),
                "key": key_for(type_, data),
                "schema_version": 1,
                "source": ROUTES[type_].sources[0],
                "time": time,
                "type": type_,
            }
