"""Benchmark: plan and execute one payout run for N coldkeys on the in-memory chain; prints JSON.

Planning goes through the settlement planning core (`services.settlement.core.SettlementCore`) over a
`day.closed` with N providers and the `epoch.closed` that starts the run; execution through the executor, with
the in-memory chain and store. Target: under 30 s for 10,000 coldkeys, ceil(N / max_batch) extrinsics.

    .venv/bin/python bench/settlement_run.py [--coldkeys 10000] [--max-batch 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import time
from typing import Any

import structlog

from schemas.codec import decode_obj
from schemas.envelope import Event
from schemas.topics import key_for
from services.settlement.chain_memory import MemoryChain
from services.settlement.core import SettlementCore
from services.settlement.execution import PlannedPayout
from services.settlement.execution_store import MemoryExecutionStore
from services.settlement.executor import Executor, ExecutorConfig


def _event(type_: str, time_: str, data: dict[str, Any], id_: str, source: str) -> Event:
    return decode_obj({"id": id_, "type": type_, "schema_version": 1, "source": source, "time": time_,
                       "key": key_for(type_, data), "causation_id": None, "data": data})


def _day_closed(day: str, providers: list[tuple[str, str, int]]) -> Event:
    rows = [{"hotkey": hk, "coldkey": ck, "emission_rao": rao, "rental_fee_usd_micros": 0, "forfeited_rao": 0,
             "forfeited_usd_micros": 0, "adjustment_rao": 0, "adjustment_usd_micros": 0, "payable_rao": rao,
             "carried_rao": 0, "slashed_wei": 0} for hk, ck, rao in providers]
    data = {"billing_day": day, "prices": {"tao_usd": "400", "alpha_tao": "0.05"}, "ledger_hash": "0" * 64,
            "providers": rows}
    return _event("day.closed", f"{day}T02:00:00Z", data, f"day-{day}", "billing")


def _epoch(n: int, at: str) -> Event:
    data = {"netuid": 51, "epoch": n, "start_block": n * 360, "end_block": n * 360 + 359, "closed_at": at,
            "miner_emission_rao": 0, "tao_usd": "400", "alpha_tao": "0.05"}
    return _event("epoch.closed", at, data, f"epoch-{n}", "chain")


async def main(coldkeys: int, max_batch: int) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    providers = [(f"hk{i:06d}", f"ck{i:06d}", 20_000_000 + i) for i in range(coldkeys)]
    inputs = [
        _event("params.updated", "2026-11-01T00:00:00Z", {"max_batch": max_batch}, "params-1", "operator"),
        _day_closed("2026-11-01", providers),
        _epoch(1, "2026-11-03T17:00:00Z"),
    ]

    t0 = time.perf_counter()
    core = SettlementCore()
    derived = [d for e in inputs for d in core.handle(e)]
    planned = [PlannedPayout.from_event(e) for e in derived if e.type == "payout.planned"]
    t_plan = time.perf_counter() - t0

    chain = MemoryChain()
    chain.fund(sum(p.amount_rao for p in planned) + 10**9)
    for hk, ck, _ in providers:
        chain.set_owner(hk, ck)
    store = MemoryExecutionStore()
    t1 = time.perf_counter()
    report = await Executor(chain, store, ExecutorConfig(max_batch=max_batch)).run(planned)
    t_exec = time.perf_counter() - t1

    paid_ok = all(chain.stake_of(ck) == rao for _, ck, rao in providers)
    return {
        "benchmark": "settlement_run",
        "coldkeys": coldkeys,
        "max_batch": max_batch,
        "planned": len(planned),
        "confirmed": report.confirmed,
        "extrinsics": chain.included,
        "expected_extrinsics": math.ceil(coldkeys / max_batch),
        "plan_seconds": round(t_plan, 3),
        "execute_seconds": round(t_exec, 3),
        "total_seconds": round(t_plan + t_exec, 3),
        "target_seconds": 30,
        "events_emitted": len(store.events),
        "paid_exactly_to_the_rao": paid_ok,
        "fees_paid_rao": chain.fees_paid_rao,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--coldkeys", type=int, default=10_000)
    parser.add_argument("--max-batch", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.coldkeys, args.max_batch)), indent=2))
