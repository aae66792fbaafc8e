"""Input events for tests, built through the real codec (so every one is a valid envelope)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from schemas.codec import decode_obj
from schemas.envelope import Event
from schemas.topics import ROUTES, key_for

_ids = itertools.count(1)


def envelope(type_: str, time: str, data: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    return {
        "id": id or f"{type_}-{next(_ids)}",
        "type": type_,
        "schema_version": 1,
        "source": ROUTES[type_].sources[0],
        "time": time,
        "key": key_for(type_, data),
        "causation_id": None,
        "data": data,
    }


def ev(type_: str, time: str, data: dict[str, Any], id: str | None = None) -> Event:
    return decode_obj(envelope(type_, time, data, id))


def listed(ex: str, hk: str, ck: str, time: str, model: str = "NVIDIA H200", count: int = 1,
           price: str = "2.85", sysbox: bool = True) -> Event:
    return ev("executor.listed", time, {"executor_id": ex, "hotkey": hk, "coldkey": ck, "gpu_model": model,
                                        "gpu_count": count, "price_per_gpu_usd": price, "sysbox": sysbox})


def delisted(ex: str, time: str) -> Event:
    return ev("executor.delisted", time, {"executor_id": ex})


def started(rental: str, ex: str, time: str, price: str = "2.85", at: str | None = None) -> Event:
    return ev("rental.started", time, {"rental_id": rental, "executor_id": ex, "renter_id": "renter",
                                       "price_per_gpu_usd": price, "started_at": at or time})


def stopped(rental: str, ex: str, time: str, at: str | None = None) -> Event:
    return ev("rental.stopped", time, {"rental_id": rental, "executor_id": ex, "stopped_at": at or time,
                                       "reason": "user"})


def incident(rental: str, ex: str, time: str, at: str | None = None, kind: str = "ssh_refused") -> Event:
    return ev("rental.incident", time, {"rental_id": rental, "executor_id": ex, "kind": kind, "at": at or time})


def epoch(n: int, time: str, emission: int = 0, tao_usd: str = "400", alpha_tao: str = "0.05") -> Event:
    return ev("epoch.closed", time, {"netuid": 51, "epoch": n, "start_block": n * 360, "end_block": n * 360 + 359,
                                     "closed_at": time, "miner_emission_rao": emission, "tao_usd": tao_usd,
                                     "alpha_tao": alpha_tao})


def params(time: str, **values: Any) -> Event:
    return ev("params.updated", time, values)


def day_closed(day: str, rows: Sequence[tuple[str, str, int]], closed_at: str | None = None) -> Event:
    """A billing statement: each (hotkey, coldkey, rao) row earns and is payable `rao`, nothing else."""
    return ev("day.closed", closed_at or f"{day}T00:00:00Z", {
        "billing_day": day, "prices": {"tao_usd": "400", "alpha_tao": "0.05"}, "ledger_hash": "0" * 64,
        "providers": [{"hotkey": hk, "coldkey": ck, "emission_rao": rao, "rental_fee_usd_micros": 0,
                       "forfeited_rao": 0, "forfeited_usd_micros": 0, "adjustment_rao": 0,
                       "adjustment_usd_micros": 0, "payable_rao": rao, "carried_rao": 0, "slashed_wei": 0}
                      for hk, ck, rao in rows],
    })


def benchmark(ex: str, hk: str, time: str, model: str = "NVIDIA H200", count: int = 1, vram: int = 143771,
              matmul: bool = True, download: str = "500", sysbox: bool = True) -> Event:
    return ev("benchmark.completed", time, {
        "executor_id": ex, "hotkey": hk, "gpu_model": model, "gpu_count": count, "vram_mb_per_gpu": vram,
        "matmul_passed": matmul, "matmul_tflops": "700.5", "download_mbps": download, "upload_mbps": "300",
        "sysbox": sysbox, "driver_version": "570.1", "measured_at": time})


def revenue(time: str, by_model: dict[str, str]) -> Event:
    return ev("revenue.reported", time, {"window_start": time, "window_end": time, "revenue_usd_by_model": by_model})
