"""Small adversarial input logs for the differential test against the oracle (`test_against_replay.py`).

Few executors and hotkeys, and many of the corners the SPEC words carefully: stops before their starts, late
and corrected stops, incidents on closed days and of executors not listed yet, re-listings under another
hotkey, delistings, rentals below the price floor, epoch pauses of a day or more, repeated epochs, a first
event days before the first listing, and parameter updates of every kind in the middle of the log.
Deterministic in the seed. `python -m tests.reference.scenarios SEED > LOG` writes one.
"""

from __future__ import annotations

import json
import math
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# gpu model -> (table price, nominal VRAM MiB), from SPEC section 3
MODELS = {
    "NVIDIA H200": (2.85, 143771),
    "NVIDIA H100 80GB HBM3": (1.494, 81559),
    "NVIDIA GeForce RTX 4090": (0.30, 24564),
    "NVIDIA B300": (5.10, 275040),
    "NVIDIA A100-SXM4-80GB": (0.6923, 81920),
}


def rfc3339(dt: datetime) -> str:
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{dt.microsecond:06d}Z" if dt.microsecond else text + "Z"


class Log:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: list[str] = []

    def emit(self, type_: str, at: datetime, key: str, data: dict[str, Any]) -> None:
        envelope = {"id": str(uuid.UUID(int=self.rng.getrandbits(128))), "type": type_, "schema_version": 1,
                    "source": "platform", "time": rfc3339(at), "key": key, "causation_id": None, "data": data}
        self.lines.append(json.dumps(envelope, sort_keys=True))


def scenario(seed: int) -> list[bytes]:
    """The log of `seed`, as JSON lines."""
    r = random.Random(seed)
    log = Log(r)
    hotkeys = [f"hk{i}" for i in range(r.randint(1, 3))]
    coldkey = {hk: f"ck{r.randint(0, 1)}" for hk in hotkeys}
    crowded = r.random() < 0.25  # enough single-GPU executors of few models to pass the unrented caps
    executors = [f"ex-{i}" for i in range(r.randint(12, 24) if crowded else r.randint(2, 6))]
    models = ["NVIDIA H200", "NVIDIA GeForce RTX 4090"] if crowded else list(MODELS)
    model = {ex: r.choice(models) for ex in executors}
    gpus = {ex: r.choice([1, 1, 1, 1, 8] if crowded else [1, 1, 2, 8]) for ex in executors}
    rentals: dict[str, str] = {}  # rental id -> executor
    serial = iter(range(1_000_000))

    now = datetime(2026, 11, 1, r.choice([0, 5, 23]), r.randint(0, 59), tzinfo=UTC)
    if r.random() < 0.4:  # the first event of the log, hours or days before everything else
        ex = r.choice(executors)
        log.emit("benchmark.completed", now - timedelta(hours=r.choice([1, 10, 30])), ex,
                 benchmark(r, ex, model[ex], gpus[ex], now))
    if r.random() < 0.3:
        log.emit("params.updated", now, "params", params(r))

    if crowded:  # everyone listed at the table price and benchmarked well, from the start
        for ex in executors:
            hk = r.choice(hotkeys)
            log.emit("executor.listed", now, ex, {
                "executor_id": ex, "hotkey": hk, "coldkey": coldkey[hk], "gpu_model": model[ex], "gpu_count": gpus[ex],
                "price_per_gpu_usd": str(MODELS[model[ex]][0]), "sysbox": True})
            log.emit("benchmark.completed", now, ex, benchmark(r, ex, model[ex], gpus[ex], now, good=True))
    end = now + timedelta(days=r.randint(3, 6))
    epoch, next_epoch = 1000, now + timedelta(minutes=r.randint(5, 72))
    while now < end:
        now += timedelta(minutes=r.randint(3, 50), microseconds=r.choice([0, 0, r.randint(1, 999_999)]))
        while next_epoch <= now:
            if r.random() < 0.03:  # a pause of a day or more
                next_epoch += timedelta(hours=r.randint(20, 40))
                continue
            closed = epoch_closed(r, epoch, next_epoch)
            log.emit("epoch.closed", next_epoch, "netuid-51", closed)
            if r.random() < 0.02:  # the same epoch again, under another id
                log.emit("epoch.closed", next_epoch, "netuid-51", closed)
            epoch += 1
            next_epoch += timedelta(minutes=72)
        ex = r.choice(executors)
        roll = r.random()
        if roll < 0.10:
            hk = r.choice(hotkeys)
            price = round(MODELS[model[ex]][0] * r.choice([0.9, 1.0, 1.05, 3, 3.5]), 4)  # 3: the limit exactly
            log.emit("executor.listed", now, ex, {
                "executor_id": ex, "hotkey": hk, "coldkey": coldkey[hk], "gpu_model": model[ex],
                "gpu_count": gpus[ex] if r.random() < 0.95 else 0, "price_per_gpu_usd": str(price), "sysbox": True})
        elif roll < 0.13:
            log.emit("executor.delisted", now, ex, {"executor_id": ex})
        elif roll < 0.40:
            log.emit("benchmark.completed", now, ex, benchmark(r, ex, model[ex], gpus[ex], now, good=crowded))
        elif roll < 0.55:  # a start, sometimes reported late
            rental = f"r{next(serial)}"
            rentals[rental] = ex
            price = round(MODELS[model[ex]][0] * r.choice([0.4, 0.5, 1.0, 1.0, 1.2]), 5)  # 0.5: the floor exactly
            started = now - timedelta(minutes=r.choice([0, 0, 0, 30, 600, 2000]))
            log.emit("rental.started", now, ex, started_data(rental, ex, str(price), started))
        elif roll < 0.70 and rentals:  # a stop (or a correction of one), sometimes reported late
            rental = r.choice(list(rentals))
            stopped = now - timedelta(minutes=r.choice([0, 0, 10, 900, 3000]))
            log.emit("rental.stopped", now, rentals[rental], stopped_data(rental, rentals[rental], stopped))
        elif roll < 0.74:  # a stop that arrives before its start
            rental = f"r{next(serial)}"
            started = now - timedelta(minutes=r.randint(60, 1500))
            log.emit("rental.stopped", now, ex, stopped_data(rental, ex, now - timedelta(minutes=r.randint(0, 50))))
            now += timedelta(minutes=r.randint(1, 100))
            log.emit("rental.started", now, ex, started_data(rental, ex, str(MODELS[model[ex]][0]), started))
            rentals[rental] = ex
        elif roll < 0.80:
            at = now - timedelta(minutes=r.choice([0, 0, 200, 1500, 2900]))
            log.emit("rental.incident", now, ex, {
                "rental_id": r.choice(list(rentals)) if rentals else "none", "executor_id": ex,
                "kind": r.choice(["ssh_refused", "offline", "container_crash"]), "at": rfc3339(at)})
        elif roll < 0.86:
            zero = r.random() < 0.15  # a report whose total is 0 (it names models, and moves nothing)
            revenue = {m: "0" if zero else str(round(r.uniform(0, 500), 2))
                       for m in r.sample(list(MODELS), r.randint(0, 3))}
            if r.random() < 0.1:
                revenue["NVIDIA Z9"] = "12.5"
            log.emit("revenue.reported", now, "revenue", {
                "window_start": rfc3339(now - timedelta(minutes=10)), "window_end": rfc3339(now),
                "revenue_usd_by_model": revenue})
        elif roll < 0.89:
            log.emit("params.updated", now, "params", params(r))
        elif roll < 0.92 and log.lines:
            log.lines.append(r.choice(log.lines))  # a redelivery
    return [line.encode() for line in log.lines]


def epoch_closed(r: random.Random, epoch: int, at: datetime) -> dict[str, Any]:
    emission = r.choice([302_580_000_000, 148_000_000_000, 0 if r.random() < 0.05 else 7_380_000_000])
    return {"netuid": 51, "epoch": epoch, "start_block": epoch * 360, "end_block": epoch * 360 + 359,
            "closed_at": rfc3339(at), "miner_emission_rao": emission,
            "tao_usd": r.choice(["350.5", "410", "399.99"]), "alpha_tao": r.choice(["0.012", "0.0095", "0.01"])}


def started_data(rental: str, ex: str, price: str, at: datetime) -> dict[str, Any]:
    return {"rental_id": rental, "executor_id": ex, "renter_id": "renter", "price_per_gpu_usd": price,
            "started_at": rfc3339(at)}


def stopped_data(rental: str, ex: str, at: datetime) -> dict[str, Any]:
    return {"rental_id": rental, "executor_id": ex, "stopped_at": rfc3339(at), "reason": "user"}


def benchmark(r: random.Random, ex: str, gpu_model: str, count: int, at: datetime, good: bool = False
              ) -> dict[str, Any]:
    nominal = MODELS[gpu_model][1]
    if good and r.random() < 0.95:
        return {"executor_id": ex, "hotkey": "x", "gpu_model": gpu_model, "gpu_count": count,
                "vram_mb_per_gpu": nominal, "matmul_passed": True, "matmul_tflops": "812.5", "download_mbps": "950",
                "upload_mbps": "500", "sysbox": True, "driver_version": "550.54", "measured_at": rfc3339(at)}
    return {"executor_id": ex, "hotkey": "x", "gpu_model": gpu_model,
            "gpu_count": count if r.random() < 0.9 else count + 1,
            "vram_mb_per_gpu": r.choice([nominal, nominal, int(nominal * 0.85), int(nominal * 1.06),
                                         math.ceil(nominal * 0.9), math.floor(nominal * 1.05),  # the edges
                                         math.ceil(nominal * 0.9) - 1, math.floor(nominal * 1.05) + 1]),
            "matmul_passed": r.random() < 0.93, "matmul_tflops": r.choice([None, "812.5"]),
            "download_mbps": r.choice(["950", "120", "40", "99.9", "100", "100.0", "150", "50"]), "upload_mbps": "500",
            "sysbox": r.random() < 0.95, "driver_version": "550.54", "measured_at": rfc3339(at)}


def params(r: random.Random) -> dict[str, Any]:
    new_model: dict[str, Any] = {"price": "1.5", "caps": {"1": 2}, "vram_mib": 50000}
    if r.random() < 0.5:
        new_model["portion"] = "0.1"
    choices: list[dict[str, Any]] = [
        {"total_burn_emission": r.choice(["0.91", "0.8", "0.5"])},
        {"rental_fees_rate": r.choice(["0.9", "0.85", "1"])},
        {"rented_normalization": r.choice(["rented", "table"])},
        {"min_payout_rao": r.choice([10_000_000, 10**12, 1])},
        {"payout_delay_days": r.choice([0, 1, 2, 3])},
        {"payout_hour_utc": r.choice([0, 17, 23])},
        {"day_close_grace_seconds": r.choice([0, 7200, 40000])},
        {"unrented_pay_ratio": r.choice(["1", "0.5"])},
        {"max_unrented_price_rate": r.choice(["1.1", "1.5"])},
        {"min_rented_price_rate": r.choice(["0.5", "0.9"])},
        {"gpu_portion_alpha": r.choice(["0.01", "0.5"])},
        {"min_download_mbps": r.choice(["100", "50"])},
        {"vram_window": r.choice([["0.90", "1.05"], ["0.80", "1.10"]])},
        {"models": {"NVIDIA H200": {"price": r.choice(["2.85", "3.5"])}}},
        {"models": {"NVIDIA GeForce RTX 4090": {"caps": {"1": 1, "8": 8}}}},
        {"models": {"NVIDIA Z9": new_model}},
        {"models": {"NVIDIA H200": {"portion": "0.2"}}},  # refused: a portion for an existing model
        # taken as they are by the spec's own rules ("a model price > 0", "a cap key ... with cap > 0")
        {"models": {"NVIDIA GeForce RTX 4090": {"caps": {"0": 5, "1": -1, "8": 8}}}},
        {"models": {"NVIDIA B200": {"price": "-1"}}},
        {"vram_window": ["1.05", "0.90"]},
        {"payout_delay_days": -1},
    ]
    out: dict[str, Any] = {}
    for choice in r.sample(choices, r.randint(1, 2)):
        out.update(choice)
    return out


if __name__ == "__main__":
    sys.stdout.write("".join(line.decode() + "\n" for line in scenario(int(sys.argv[1]))))
