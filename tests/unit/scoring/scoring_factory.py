"""Events for the scoring unit tests: typed data, validated by the schemas, sequential ids and times."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.envelope import Event
from schemas.events import (
    BenchmarkCompleted,
    CollateralLog,
    EpochClosed,
    ExecutorDelisted,
    ExecutorListed,
    ParamsUpdated,
    RentalIncident,
    RentalStarted,
    RentalStopped,
    RevenueReported,
)
from services.params import DEFAULT_MODELS

H200 = "NVIDIA H200"
H100 = "NVIDIA H100 80GB HBM3"
B300 = "NVIDIA B300"
RTX4090 = "NVIDIA GeForce RTX 4090"
T0 = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
_ids = itertools.count(1)


def event(type_: str, data: Any, key: str, source: str = "platform") -> Event:
    n = next(_ids)
    return Event(id=f"in-{n}", type=type_, source=source, time=T0 + timedelta(seconds=n), key=key,
                 causation_id=None, data=data)


def listed(eid: str, model: str = H200, gpus: int = 1, price: str = "2", hotkey: str | None = None,
           sysbox: bool = True) -> Event:
    data = ExecutorListed(executor_id=eid, hotkey=hotkey or f"hk-{eid}", coldkey=f"ck-{eid}", gpu_model=model,
                          gpu_count=gpus, price_per_gpu_usd=price, sysbox=sysbox)
    return event("executor.listed", data, eid)


def delisted(eid: str) -> Event:
    return event("executor.delisted", ExecutorDelisted(executor_id=eid), eid)


def bench(eid: str, model: str = H200, gpus: int = 1, vram: int | None = None, matmul: bool = True,
          down: str = "500", sysbox: bool = True) -> Event:
    data = BenchmarkCompleted(
        executor_id=eid, hotkey=f"hk-{eid}", gpu_model=model, gpu_count=gpus,
        vram_mb_per_gpu=vram if vram is not None else DEFAULT_MODELS.get(model, DEFAULT_MODELS[H200]).vram_mib,
        matmul_passed=matmul, matmul_tflops="900.5" if matmul else None, download_mbps=down,
        upload_mbps="300", sysbox=sysbox, driver_version="550.54", measured_at=T0)
    return event("benchmark.completed", data, eid, source="validator")


def started(rid: str, eid: str, price: str = "2.5") -> Event:
    data = RentalStarted(rental_id=rid, executor_id=eid, renter_id="renter", price_per_gpu_usd=price,
                         started_at=T0)
    return event("rental.started", data, eid)


def stopped(rid: str, eid: str) -> Event:
    data = RentalStopped(rental_id=rid, executor_id=eid, stopped_at=T0 + timedelta(hours=1), reason="done")
    return event("rental.stopped", data, eid)


def incident(rid: str, eid: str) -> Event:
    return event("rental.incident", RentalIncident(rental_id=rid, executor_id=eid, kind="offline", at=T0), eid)


def revenue(amounts: dict[str, str]) -> Event:
    data = RevenueReported(window_start=T0, window_end=T0 + timedelta(hours=1), revenue_usd_by_model=amounts)
    return event("revenue.reported", data, "revenue")


def params(**fields: Any) -> Event:
    return event("params.updated", ParamsUpdated.model_validate(fields), "params", source="operator")


def epoch(n: int, emission: int = 100 * 10**9, tao_usd: str = "400", alpha_tao: str = "0.05",
          netuid: int = 51) -> Event:
    data = EpochClosed(netuid=netuid, epoch=n, start_block=n * 360, end_block=n * 360 + 359,
                       closed_at=T0 + timedelta(hours=n), miner_emission_rao=emission, tao_usd=tao_usd,
                       alpha_tao=alpha_tao)
    return event("epoch.closed", data, "netuid-51", source="chain")


def collateral(eid: str) -> Event:
    data = CollateralLog(executor_id=eid, miner_evm_address="0xabc", amount_wei=10**18, chain_id=1,
                         tx_hash="0x01", block_number=5, log_index=0)
    return event("collateral.deposited", data, eid, source="collateral")


def ready(eid: str, model: str = H200, gpus: int = 1, price: str = "2", hotkey: str | None = None) -> list[Event]:
    """A listing and a passing benchmark: the executor takes part (score 1)."""
    return [listed(eid, model, gpus, price, hotkey), bench(eid, model, gpus)]
