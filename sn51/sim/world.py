"""The simulated world, planned up front: providers, executors, listings, rentals and incidents.

Everything here is drawn from one seeded `random.Random`; times are whole seconds after the simulation start.
Prices are integers in units of 1e-4 USD (the table prices are exact in those units). Benchmarks, revenue
reports and epochs are not planned here: they are periodic and generated while streaming (`stream.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from services.params import DEFAULT_MODELS
from sn51.sim.keys import ss58, uuid4

PRICE_UNIT = 10_000  # prices in 1e-4 USD per GPU-hour
HOUR = 3600
DAY = 86400


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What the simulator needs to know of a GPU model: table price (if known), nominal VRAM, typical speed."""

    price_units: int | None
    vram_mib: int
    tflops: int  # typical dense matmul TFLOPS
    weight: int  # how common it is among executors


def _table_price(name: str) -> int:
    units = DEFAULT_MODELS[name].price * PRICE_UNIT
    assert units.denominator == 1
    return int(units)


_KNOWN_SPEED = {
    "NVIDIA H200": (700, 25),
    "NVIDIA H100 80GB HBM3": (650, 25),
    "NVIDIA B200": (1500, 8),
    "NVIDIA B300": (2100, 4),
    "NVIDIA A100-SXM4-80GB": (250, 10),
    "NVIDIA GeForce RTX 5090": (210, 12),
    "NVIDIA GeForce RTX 4090": (160, 12),
}

MODELS: dict[str, ModelProfile] = {
    name: ModelProfile(_table_price(name), DEFAULT_MODELS[name].vram_mib, tflops, weight)
    for name, (tflops, weight) in _KNOWN_SPEED.items()
}
# Models the default table does not know (scored `unknown_gpu_model` unless a params update adds them).
MODELS |= {
    "NVIDIA L40S": ModelProfile(None, 46068, 300, 2),
    "NVIDIA RTX A6000": ModelProfile(None, 49140, 120, 1),
    "Tesla V100-SXM2-32GB": ModelProfile(None, 32768, 100, 1),
}
UNKNOWN_PRICE_UNITS = {"NVIDIA L40S": 8_500, "NVIDIA RTX A6000": 4_500, "Tesla V100-SXM2-32GB": 2_200}
DATACENTER = frozenset({
    "NVIDIA H200", "NVIDIA H100 80GB HBM3", "NVIDIA B200", "NVIDIA B300", "NVIDIA A100-SXM4-80GB",
    "NVIDIA L40S",
})
DRIVERS = ("550.127.05", "550.144.03", "560.35.03", "565.57.01", "570.86.15", "570.124.06")

# Persistent benchmark faults of an executor, and how often each occurs.
FAULTS: tuple[tuple[str, float], ...] = (
    ("matmul_failed", 0.02),
    ("vram_mismatch", 0.02),
    ("gpu_count_mismatch", 0.02),
    ("network_too_slow", 0.02),
    ("sysbox_missing", 0.02),
    ("never_benchmarked", 0.02),
)
INCIDENT_KINDS = ("ssh_refused", "container_crash", "offline")
STOP_REASONS = ("renter_stopped", "expired", "payment_failed")
STOP_WEIGHTS = (14, 5, 1)


@dataclass(frozen=True, slots=True)
class Provider:
    hotkey: str
    coldkey: str


@dataclass(frozen=True, slots=True)
class Listing:
    start: int
    end: int | None  # delisted at, or None when still listed at the horizon
    price_units: int
    sysbox: bool


@dataclass(frozen=True, slots=True)
class Incident:
    at: int
    kind: str


@dataclass(frozen=True, slots=True)
class Rental:
    rental_id: str
    renter_id: str
    start: int
    stop: int | None  # None: still running at the horizon
    reason: str
    price_units: int
    incidents: tuple[Incident, ...]


@dataclass(slots=True)
class Executor:
    index: int
    executor_id: str
    provider: Provider
    gpu_model: str
    gpu_count: int
    fault: str | None
    bench_phase: int  # seconds in [0, interval): benchmarks at phase + k × interval
    download_mbps: int  # typical, in hundredths
    upload_mbps: int
    driver: str
    price_band: str | None = None  # forces the band of the first listing price
    listings: list[Listing] = field(default_factory=list)
    rentals: list[Rental] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class World:
    providers: tuple[Provider, ...]
    executors: tuple[Executor, ...]
    horizon: int  # seconds after start; nothing happens at or after it


def _reference_price(model: str) -> int:
    return MODELS[model].price_units or UNKNOWN_PRICE_UNITS[model]


def _listing_price(rng: random.Random, model: str, band: str | None = None) -> int:
    """Near the model price; some above 1.1× (unrented limit), a few above 3× (price limit)."""
    r = {"above_price_limit": 0.0, "above_unrented_limit": 0.1}.get(band or "", rng.random())
    if r < 0.05:
        permille = rng.randint(3050, 4000)
    elif r < 0.20:
        permille = rng.randint(1120, 2500)
    elif r < 0.30:
        permille = rng.randint(600, 850)
    else:
        permille = rng.randint(850, 1100)
    units = _reference_price(model) * permille // 1000
    return max(units // 10 * 10, 100)  # at most three decimals of a dollar


def _rental_price(rng: random.Random, model: str, listing: int) -> int:
    """At the listing price mostly, sometimes discounted, a few below 0.5× the model price."""
    r = rng.random()
    if r < 0.05:
        return max(_reference_price(model) * rng.randint(250, 480) // 1000 // 10 * 10, 10)
    if r < 0.25:
        return max(listing * rng.randint(850, 990) // 1000 // 10 * 10, 10)
    return listing


def _mean_idle(model: str, listing: int) -> float:
    """Mean seconds between rentals: cheap executors are rented more often."""
    ratio = listing / _reference_price(model)
    if ratio <= 1.1:
        return 6 * HOUR
    if ratio <= 3:
        return 30 * HOUR
    return 120 * HOUR


def _gpu_count(rng: random.Random, model: str) -> int:
    r = rng.random()
    if r < 0.03:
        return 4  # not a cap bucket of any model: `gpu_count_not_priced` when unrented
    eight = 0.45 if model in DATACENTER else 0.15
    return 8 if r < 0.03 + eight else 1


def _fault(rng: random.Random) -> str | None:
    r = rng.random()
    for name, p in FAULTS:
        if r < p:
            return name
        r -= p
    return None


def _listings(
    rng: random.Random, model: str, fault: str | None, band: str | None, horizon: int
) -> list[Listing]:
    late = rng.random() < 0.1 and horizon >= 4 * HOUR
    t = rng.randint(HOUR, horizon // 2) if late else min(rng.randint(0, 600), horizon - 1)
    price = _listing_price(rng, model, band)
    sysbox = fault != "sysbox_missing"
    out: list[Listing] = []
    while t < horizon:
        life = max(int(rng.expovariate(1 / (30 * DAY))), 2 * HOUR)
        end = t + life
        if end >= horizon:
            out.append(Listing(t, None, price, sysbox))
            break
        out.append(Listing(t, end, price, sysbox))
        if rng.random() < 0.15:
            break  # gone for good
        t = end + rng.randint(HOUR, 12 * HOUR)
        if rng.random() < 0.5:
            price = _listing_price(rng, model)
    return out


def _rentals(
    rng: random.Random, ex: Executor, listing: Listing, horizon: int, renters: tuple[str, ...]
) -> list[Rental]:
    end = listing.end if listing.end is not None else horizon
    out: list[Rental] = []
    t = listing.start
    mean_idle = _mean_idle(ex.gpu_model, listing.price_units)
    while True:
        start = t + 60 + int(rng.expovariate(1 / mean_idle))
        if start >= end - 60:
            return out
        planned = start + HOUR + int(29 * HOUR * rng.random() ** 2)  # 1-30 h, mostly short
        stop: int | None = planned
        reason = rng.choices(STOP_REASONS, weights=STOP_WEIGHTS)[0]
        if planned >= end:
            stop, reason = (end, "executor_delisted") if listing.end is not None else (None, "")
        incidents: list[Incident] = []
        last = stop if stop is not None else horizon
        if rng.random() < 0.04 and last - start > 240:
            at = rng.randint(start + 60, last - 120)
            kind = rng.choice(INCIDENT_KINDS)
            incidents.append(Incident(at, kind))
            if rng.random() < 0.3 and at + 600 < last:
                incidents.append(Incident(rng.randint(at + 60, at + 600), rng.choice(INCIDENT_KINDS)))
            if kind == "offline" and rng.random() < 0.5:
                stop = min(last, incidents[-1].at + rng.randint(60, 1800))
                reason = "executor_offline"
                if stop >= horizon:
                    stop, reason = None, ""
        price = _rental_price(rng, ex.gpu_model, listing.price_units)
        out.append(Rental(uuid4(rng), rng.choice(renters), start, stop, reason, price, tuple(incidents)))
        if stop is None:
            return out
        t = stop


def plan(seed: int, providers: int, horizon: int, benchmark_interval: int) -> World:
    """The whole world of a run, deterministic in its arguments."""
    rng = random.Random(f"sn51-sim:{seed}:world")
    names = list(MODELS)
    weights = [MODELS[n].weight for n in names]
    renters = tuple(uuid4(rng) for _ in range(max(4, providers * 2)))
    provs: list[Provider] = []
    executors: list[Executor] = []
    for _ in range(providers):
        provider = Provider(ss58(rng), ss58(rng))
        provs.append(provider)
        for _ in range(rng.choices((1, 2, 3, 4), weights=(1, 2, 3, 4))[0]):
            model = rng.choices(names, weights=weights)[0]
            executors.append(Executor(
                index=len(executors),
                executor_id=uuid4(rng),
                provider=provider,
                gpu_model=model,
                gpu_count=_gpu_count(rng, model),
                fault=_fault(rng),
                bench_phase=rng.randrange(benchmark_interval),
                download_mbps=rng.randint(30_000, 1_000_000),
                upload_mbps=rng.randint(20_000, 800_000),
                driver=rng.choice(DRIVERS),
            ))
    _ensure_cases(rng, executors)
    for ex in executors:
        if ex.fault == "network_too_slow":
            ex.download_mbps, ex.upload_mbps = rng.randint(2_000, 8_000), rng.randint(1_000, 6_000)
        ex.listings = _listings(rng, ex.gpu_model, ex.fault, ex.price_band, horizon)
        for listing in ex.listings:
            ex.rentals.extend(_rentals(rng, ex, listing, horizon, renters))
    return World(tuple(provs), tuple(executors), horizon)


def _ensure_cases(rng: random.Random, executors: list[Executor]) -> None:
    """In a world big enough, every benchmark fault, an unknown GPU model, and listings above 3× and above 1.1×
    the model price occur at least once."""
    if len(executors) < 4 * len(FAULTS):
        return
    healthy = [ex for ex in executors if ex.fault is None and MODELS[ex.gpu_model].price_units is not None]
    rng.shuffle(healthy)
    for name, _ in FAULTS:
        if not any(ex.fault == name for ex in executors):
            healthy.pop().fault = name
    if all(MODELS[ex.gpu_model].price_units is not None for ex in executors):
        healthy.pop().gpu_model = rng.choice(sorted(UNKNOWN_PRICE_UNITS))
    healthy.pop().price_band = "above_price_limit"
    healthy.pop().price_band = "above_unrented_limit"
