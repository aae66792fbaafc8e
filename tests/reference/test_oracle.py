"""Hand-worked examples for the reference oracle (tests/reference/oracle.py).

Every expected number below is worked out by hand in the comments, from the words of SPEC.md, not by
running the oracle.  Defaults used throughout: total_burn_emission 0.91 (so R = 0.09), rental_fees_rate
0.9, tempo 360, seconds_per_block 12, day_close_grace_seconds 7200, payout_delay_days 2,
payout_hour_utc 17, min_payout_rao 10_000_000.  H200: portion 0.56, price 2.85, caps {1: 10, 8: 64},
VRAM 143771 MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from tests.reference.oracle import AMBIGUITIES, run, split_lines

_ids = count(1)


def ev(type_: str, time: str, data: dict[str, Any], *, id_: str | None = None, key: str = "k") -> dict[str, Any]:
    return {
        "id": id_ or f"ev-{next(_ids)}",
        "type": type_,
        "schema_version": 1,
        "source": "test",
        "time": time,
        "key": key,
        "causation_id": None,
        "data": data,
    }


def lines(*events: dict[str, Any]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def listed(ex: str, hotkey: str, coldkey: str, model: str, gpus: int, price: str, time: str) -> dict[str, Any]:
    return ev("executor.listed", time, {
        "executor_id": ex, "hotkey": hotkey, "coldkey": coldkey, "gpu_model": model,
        "gpu_count": gpus, "price_per_gpu_usd": price, "sysbox": True,
    })


def bench(ex: str, hotkey: str, model: str, gpus: int, vram: int, time: str) -> dict[str, Any]:
    return ev("benchmark.completed", time, {
        "executor_id": ex, "hotkey": hotkey, "gpu_model": model, "gpu_count": gpus,
        "vram_mb_per_gpu": vram, "matmul_passed": True, "matmul_tflops": "600.5",
        "download_mbps": "1000", "upload_mbps": "1000", "sysbox": True,
        "driver_version": "570.0", "measured_at": time,
    })


def started(rid: str, ex: str, price: str, at: str, time: str | None = None) -> dict[str, Any]:
    return ev("rental.started", time or at, {
        "rental_id": rid, "executor_id": ex, "renter_id": "renter", "price_per_gpu_usd": price, "started_at": at,
    })


def stopped(rid: str, ex: str, at: str, time: str | None = None) -> dict[str, Any]:
    return ev("rental.stopped", time or at, {
        "rental_id": rid, "executor_id": ex, "stopped_at": at, "reason": "renter_stopped",
    })


def incident(rid: str, ex: str, at: str, time: str | None = None) -> dict[str, Any]:
    return ev("rental.incident", time or at, {"rental_id": rid, "executor_id": ex, "kind": "offline", "at": at})


def epoch(n: int, closed_at: str, emission: int, tao: str = "400", alpha: str = "0.05") -> dict[str, Any]:
    return ev("epoch.closed", closed_at, {
        "netuid": 51, "epoch": n, "start_block": n * 360, "end_block": n * 360 + 359, "closed_at": closed_at,
        "miner_emission_rao": emission, "tao_usd": tao, "alpha_tao": alpha,
    }, key="netuid-51")


def zero_provider(**over: Any) -> dict[str, Any]:
    row = {
        "emission_rao": 0, "rental_fee_usd_micros": 0, "forfeited_rao": 0, "forfeited_usd_micros": 0,
        "adjustment_rao": 0, "adjustment_usd_micros": 0, "payable_rao": 0, "carried_rao": 0,
    }
    row.update(over)
    return row


H200 = "NVIDIA H200"


# ----------------------------------------------------------------------------------------------------
def test_one_gpu_h200_rental_across_midnight() -> None:
    out = run(lines(
        listed("ex1", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"),            # 1 (day origin 11-01)
        started("r1", "ex1", "2.85", "2026-11-01T22:30:00.250000Z"),                     # 2
        stopped("r1", "ex1", "2026-11-02T01:15:00Z"),                                    # 3
        # 11-02 02:00:00 = 11-02 00:00 + 7200 s -> closes 11-01 (">=")
        epoch(100, "2026-11-02T02:00:00Z", 1_000_000_000, "400", "0.05"),               # 4
        epoch(101, "2026-11-02T23:00:00Z", 1_000_000_000, "250", "0.04"),               # 5
        epoch(102, "2026-11-03T03:00:00Z", 1_000_000_000, "500", "0.04"),               # 6 closes 11-02
        epoch(103, "2026-11-03T17:30:00Z", 1_000_000_000, "500", "0.04"),               # 7 payout run T=11-03
    ))
    assert out["refused"] == {}
    # Never benchmarked -> score 0 (not_benchmarked), takes no part: no nodes, everything burns.
    assert out["scores"] == [[1, "ex1", 0, ["not_benchmarked"]]]
    assert out["epochs"]["100"] == {
        "burn_rao": 1_000_000_000,
        "shares": {"rented": "0", "unrented": "0", "burn": "1"},
        "nodes": {},
    }
    # Day 11-01: 22:30:00.25 -> 24:00 = 5399.75 s; charge = 5399.75 × 2.85 × 1 / 3600 USD
    #   = 4.2748020833.. USD = 4274802.083 micro -> half-even 4274802; part = floor(4274802 × 0.9) = 3847321.
    # Prices: no epoch.closed before 11-02 00:00 -> the closing one: 400 × 0.05 = 20.
    # rao = floor(3847321 × 1000 / 20) = floor(192366050) = 192366050.
    d1 = out["days"]["2026-11-01"]
    assert d1["closed_by_line"] == 4
    assert d1["prices"] == {"tao_usd": "400", "alpha_tao": "1/20"}
    assert d1["providers"] == {"hk1": {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=3847321, payable_rao=192366050)}}
    # Day 11-02: 00:00 -> 01:15 = 4500 s; 4500 × 2.85 / 3600 = 3.5625 USD = 3562500 micro;
    #   part = floor(3206250.0) = 3206250.
    # Prices: greatest closed_at before 11-03 00:00 is line 5 (250 × 0.04 = 10).
    # rao = 3206250 × 1000 / 10 = 320625000.
    d2 = out["days"]["2026-11-02"]
    assert d2["closed_by_line"] == 6
    assert d2["prices"] == {"tao_usd": "250", "alpha_tao": "1/25"}
    assert d2["providers"] == {"hk1": {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=3206250, payable_rao=320625000)}}
    # Payout runs: line 4 (>= 11-01 17:00) runs T=11-01 (pays D <= 10-30: nothing); line 5 runs T=11-02
    # (D <= 10-31: nothing); line 7 runs T=11-03: D <= 11-01 -> day 11-01, 192366050 >= 10_000_000: paid.
    assert out["payouts"] == {
        "2026-11-03": {"billing_days": ["2026-11-01"], "paid": {"ck1": 192366050}, "deferred": {}},
    }


# ----------------------------------------------------------------------------------------------------
def test_epoch_split_one_rented_two_unrented() -> None:
    H100, RTX4090 = "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"
    out = run(lines(
        listed("a", "hkA", "ckA", H200, 1, "2.85", "2026-11-01T00:00:00Z"),
        listed("b", "hkB", "ckB", H100, 8, "1.494", "2026-11-01T00:00:01Z"),
        listed("c", "hkC", "ckC", RTX4090, 1, "0.30", "2026-11-01T00:00:02Z"),
        bench("a", "hkA", H200, 1, 143771, "2026-11-01T00:01:00Z"),
        bench("b", "hkB", H100, 8, 81559, "2026-11-01T00:01:00Z"),
        bench("c", "hkC", RTX4090, 1, 24564, "2026-11-01T00:01:00Z"),
        started("ra", "a", "2.85", "2026-11-01T00:02:00Z"),  # 2.85 >= 0.5 × 2.85: rented
        epoch(7, "2026-11-01T01:00:00Z", 100_000_000_000, "400", "0.05"),
    ))
    assert out["refused"] == {}
    # Rented: m_a = 0.56 × 1 / 1 = 0.56; N = Σm = 0.56; incentive = 0.09 × 0.56 / 0.56 = 0.09.
    #   alpha = floor(0.09 × 1e11) = 9_000_000_000.
    # Unrented buckets: (H100, 8): count 8, weighted 8 × 1.494 = 11.952, cap 64 -> cap_mult 1;
    #   (4090, 1): count 1, weighted 0.30, cap 10 -> cap_mult 1.  C = 12.252 USD/h.
    # raw = 1 × 12.252 × 360 × 12 / 3600 / (1e11 / 1e9 × 400 × 0.05) = 14.7024 / 2000 = 0.0073512;
    #   U = min(0.0073512, 0.91) = 0.0073512 = 9189/1250000.
    # incentive_b = U × 8 × 1.494 × 1 / 12.252 = 0.0006 × 11.952 = 0.0071712 -> alpha 717_120_000;
    # incentive_c = 0.0006 × 0.30 = 0.00018 -> alpha 18_000_000.
    # burn_rao = 1e11 − 9e9 − 717_120_000 − 18_000_000 = 90_264_880_000; burn share 1 − 0.09 − 0.0073512.
    assert out["epochs"]["7"] == {
        "burn_rao": 90_264_880_000,
        "shares": {
            "rented": str(Fraction("0.09")),
            "unrented": str(Fraction("0.0073512")),
            "burn": str(Fraction("0.9026488")),
        },
        "nodes": {
            "a": {"hotkey": "hkA", "pool": "rented", "incentive": str(Fraction("0.09")),
                  "alpha_rao": 9_000_000_000, "reason": None},
            "b": {"hotkey": "hkB", "pool": "unrented", "incentive": str(Fraction("0.0071712")),
                  "alpha_rao": 717_120_000, "reason": None},
            "c": {"hotkey": "hkC", "pool": "unrented", "incentive": str(Fraction("0.00018")),
                  "alpha_rao": 18_000_000, "reason": None},
        },
    }
    # All three score 1 once benchmarked (lines 4-6).
    assert [s[:3] for s in out["scores"]] == [
        [1, "a", 0], [2, "b", 0], [3, "c", 0], [4, "a", 1], [5, "b", 1], [6, "c", 1],
    ]


def test_epoch_split_reasons_for_zero_incentive() -> None:
    out = run(lines(
        listed("a", "hkA", "ckA", H200, 1, "2.85", "2026-11-01T00:00:00Z"),
        listed("b", "hkB", "ckB", H200, 1, "3.20", "2026-11-01T00:00:00Z"),  # 3.20 > 1.1 × 2.85 = 3.135
        listed("c", "hkC", "ckC", H200, 2, "2.85", "2026-11-01T00:00:00Z"),  # 2 is not a cap key
        listed("d", "hkD", "ckD", H200, 1, "2.85", "2026-11-01T00:00:00Z"),
        bench("a", "hkA", H200, 1, 143771, "2026-11-01T00:01:00Z"),
        bench("b", "hkB", H200, 1, 143771, "2026-11-01T00:01:00Z"),
        bench("c", "hkC", H200, 2, 143771, "2026-11-01T00:01:00Z"),
        bench("d", "hkD", H200, 1, 143771, "2026-11-01T00:01:00Z"),
        # 1.40 < 0.5 × 2.85 = 1.425: does not make d rented
        started("rd", "d", "1.40", "2026-11-01T00:02:00Z"),
        epoch(8, "2026-11-01T01:00:00Z", 0),  # E = 0 -> U = 0
    ))
    nodes = out["epochs"]["8"]["nodes"]
    # a, d: eligible unrented but U = 0 (E = 0) -> no_unrented_share; no rented node, N = 0 -> all burns.
    assert {k: (v["pool"], v["reason"]) for k, v in nodes.items()} == {
        "a": ("unrented", "no_unrented_share"),
        "b": ("unrented", "price_above_unrented_limit"),
        "c": ("unrented", "gpu_count_not_priced"),
        "d": ("unrented", "no_unrented_share"),
    }
    assert out["epochs"]["8"]["shares"] == {"rented": "0", "unrented": "0", "burn": "1"}


# ----------------------------------------------------------------------------------------------------
def test_late_stop_after_day_closed_books_adjustment() -> None:
    out = run(lines(
        listed("ex1", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"),   # 1
        listed("ex2", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"),   # 2
        started("r1", "ex1", "3.60", "2026-11-01T12:00:00Z"),                   # 3
        epoch(1, "2026-11-02T02:00:00Z", 0),                                    # 4 closes 11-01
        started("r2", "ex2", "3.60", "2026-11-02T00:00:00Z", time="2026-11-02T02:10:00Z"),  # 5 (late start, 11-02 open)
        stopped("r2", "ex2", "2026-11-02T10:00:00Z"),                           # 6
        stopped("r1", "ex1", "2026-11-01T18:00:00Z", time="2026-11-02T11:00:00Z"),  # 7 late stop
        epoch(2, "2026-11-03T02:00:00Z", 0),                                    # 8 closes 11-02
    ))
    assert out["refused"] == {}
    # 11-01 closes with r1 open: 12 h × 3.60 = 43.2 USD = 43_200_000 micro; part 38_880_000;
    # prices: none before 11-02 00:00 -> closing epoch, 400 × 0.05 = 20; rao = 38_880_000 × 1000 / 20.
    assert out["days"]["2026-11-01"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=38_880_000, payable_rao=1_944_000_000)}
    # Late stop: 11-01 now has 6 h × 3.60 = 21.6 USD -> part 19_440_000; change −19_440_000, booked on 11-02.
    # 11-02: r2 10 h × 3.60 = 36 USD -> part 32_400_000. usd = 32_400_000 − 19_440_000 = 12_960_000;
    # prices: greatest closed_at before 11-03 00:00 = line 4 (20); rao = 12_960_000 × 1000 / 20 = 648_000_000.
    assert out["days"]["2026-11-02"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=32_400_000, adjustment_usd_micros=-19_440_000, payable_rao=648_000_000)}


# ----------------------------------------------------------------------------------------------------
def _incident_setup() -> list[dict[str, Any]]:
    return [
        listed("ex1", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"),   # 1
        bench("ex1", "hk1", H200, 1, 143771, "2026-11-01T00:01:00Z"),           # 2
        started("r1", "ex1", "2.85", "2026-11-01T06:00:00Z"),                   # 3
        # rented alone: incentive 0.09 -> alpha = 0.09 × 1e10 = 900_000_000 on 11-01
        epoch(1, "2026-11-01T08:00:00Z", 10_000_000_000),                       # 4
    ]


def test_incident_forfeits_the_executor_day() -> None:
    out = run(lines(
        *_incident_setup(),
        incident("r1", "ex1", "2026-11-01T09:00:00Z"),                          # 5
        stopped("r1", "ex1", "2026-11-01T10:00:00Z"),                           # 6
        epoch(2, "2026-11-02T02:00:00Z", 10_000_000_000),                       # 7 closes 11-01
    ))
    assert out["epochs"]["1"]["nodes"]["ex1"]["alpha_rao"] == 900_000_000
    # Fee 11-01: 06:00-10:00 = 4 h × 2.85 = 11.4 USD = 11_400_000 micro -> part 10_260_000.
    # Incident at 09:00 falls in 11-01: emission and fee part of 11-01 are forfeited; rao = 0.
    assert out["days"]["2026-11-01"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        emission_rao=900_000_000, rental_fee_usd_micros=10_260_000,
        forfeited_rao=900_000_000, forfeited_usd_micros=10_260_000)}
    # Epoch 2: ex1 no longer rented -> unrented, alone: C = 2.85;
    # raw = 2.85 × 360 × 12 / 3600 / (10 × 400 × 0.05) = 3.42 / 200 = 0.0171 -> alpha 171_000_000 (day 11-02).
    assert out["epochs"]["2"]["nodes"]["ex1"] == {
        "hotkey": "hk1", "pool": "unrented", "incentive": str(Fraction("0.0171")),
        "alpha_rao": 171_000_000, "reason": None,
    }


def test_late_incident_books_negative_adjustments_and_carries() -> None:
    out = run(lines(
        *_incident_setup(),
        stopped("r1", "ex1", "2026-11-01T10:00:00Z"),                           # 5
        epoch(2, "2026-11-02T02:00:00Z", 10_000_000_000),                       # 6 closes 11-01
        incident("r1", "ex1", "2026-11-01T09:00:00Z", time="2026-11-02T03:00:00Z"),  # 7 late incident
        epoch(3, "2026-11-03T02:00:00Z", 10_000_000_000),                       # 8 closes 11-02
    ))
    # 11-01 closed before the incident: rao = 900_000_000 + 10_260_000 × 1000 / 20 = 1_413_000_000.
    assert out["days"]["2026-11-01"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        emission_rao=900_000_000, rental_fee_usd_micros=10_260_000, payable_rao=1_413_000_000)}
    # Late incident: what 11-01 pays after forfeits drops by 900_000_000 rao and 10_260_000 micro-USD,
    # booked on 11-02.  11-02: emission 171_000_000 (epoch 2), usd = −10_260_000 ->
    # floor(−10_260_000 × 1000 / 20) = −513_000_000; rao = 171_000_000 − 900_000_000 − 513_000_000
    # = −1_242_000_000 -> payable 0, carried −1_242_000_000.
    assert out["days"]["2026-11-02"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        emission_rao=171_000_000, adjustment_rao=-900_000_000, adjustment_usd_micros=-10_260_000,
        carried_rao=-1_242_000_000)}


# ----------------------------------------------------------------------------------------------------
def test_negative_carry_nets_against_next_day_and_payouts() -> None:
    out = run(lines(
        listed("ex1", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"),   # 1 (never benchmarked)
        started("r1", "ex1", "10", "2026-11-01T00:00:00Z"),                     # 2
        epoch(1, "2026-11-02T02:00:00Z", 0),                                    # 3 closes 11-01
        stopped("r1", "ex1", "2026-11-01T00:00:00Z", time="2026-11-02T03:00:00Z"),  # 4 late stop: 0 s
        started("r2", "ex1", "10", "2026-11-02T04:00:00Z"),                     # 5
        stopped("r2", "ex1", "2026-11-02T10:00:00Z"),                           # 6
        epoch(2, "2026-11-03T02:00:00Z", 0),                                    # 7 closes 11-02
        started("r3", "ex1", "10", "2026-11-03T00:00:00Z", time="2026-11-03T02:30:00Z"),  # 8
        stopped("r3", "ex1", "2026-11-03T20:00:00Z"),                           # 9
        epoch(3, "2026-11-04T02:00:00Z", 0),                                    # 10 closes 11-03
        ev("params.updated", "2026-11-04T03:00:00Z", {"min_payout_rao": 1_000_000_000}, key="params"),  # 11
        epoch(4, "2026-11-05T17:00:00Z", 0),                                    # 12 closes 11-04
    ))
    assert out["refused"] == {}
    # 11-01: r1 open all day: 24 h × 10 = 240 USD -> part 216_000_000; rao = 216_000_000 × 1000 / 20.
    assert out["days"]["2026-11-01"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=216_000_000, payable_rao=10_800_000_000)}
    # Late stop at 11-01 00:00: 11-01 should pay 0 -> adjustment −216_000_000 on 11-02.
    # 11-02: r2 6 h × 10 = 60 USD -> part 54_000_000; usd = 54_000_000 − 216_000_000 = −162_000_000;
    # rao = floor(−162_000_000 × 1000 / 20) = −8_100_000_000 -> payable 0, carried −8_100_000_000.
    assert out["days"]["2026-11-02"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=54_000_000, adjustment_usd_micros=-216_000_000, carried_rao=-8_100_000_000)}
    # 11-03: r3 20 h × 10 = 200 USD -> part 180_000_000 -> 9_000_000_000 rao; + carried_in −8_100_000_000
    # = 900_000_000 payable, nothing carried.
    assert out["days"]["2026-11-03"]["providers"]["hk1"] == {"coldkey": "ck1", **zero_provider(
        rental_fee_usd_micros=180_000_000, payable_rao=900_000_000)}
    # 11-04: nothing, nothing carried -> no provider listed.
    assert out["days"]["2026-11-04"] == {
        "closed_by_line": 12, "prices": {"tao_usd": "400", "alpha_tao": "1/20"}, "providers": {}}
    # Runs: line 3 -> T=11-01 (nothing); line 7 -> T=11-02 (nothing); line 10 -> T=11-03 pays 11-01;
    # line 12 (11-05 17:00) -> T=11-04 pays 11-02 (sum 0: nothing), T=11-05 pays 11-03:
    # 900_000_000 < min_payout_rao 1_000_000_000 (line 11) -> deferred.
    assert out["payouts"] == {
        "2026-11-03": {"billing_days": ["2026-11-01"], "paid": {"ck1": 10_800_000_000}, "deferred": {}},
        "2026-11-04": {"billing_days": ["2026-11-02"], "paid": {}, "deferred": {}},
        "2026-11-05": {"billing_days": ["2026-11-03"], "paid": {}, "deferred": {"ck1": 900_000_000}},
    }


# ----------------------------------------------------------------------------------------------------
def test_refusals_and_duplicates() -> None:
    lst = listed("ex1", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z")
    conflicting = dict(lst, data=dict(lst["data"], price_per_gpu_usd="3"))
    bad_time = listed("ex2", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00")
    unknown_field = dict(listed("ex3", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"), extra=1)
    e1 = epoch(5, "2026-11-01T01:00:00Z", 10)
    other_netuid = epoch(7, "2026-11-01T04:00:00Z", 10)
    other_netuid["data"]["netuid"] = 52
    out = run([
        *lines(lst, lst, conflicting, bad_time, unknown_field),                   # 1-5
        b"{not json",                                                             # 6
        *lines(
            listed("ex4", "hk1", "ck1", H200, 0, "2.85", "2026-11-01T00:00:00Z"),  # 7 bad_listing
            started("r1", "nope", "1", "2026-11-01T00:00:00Z"),                   # 8 unknown_executor
            ev("revenue.reported", "2026-11-01T00:10:00Z", {                      # 9 bad_revenue
                "window_start": "2026-11-01T00:00:00Z", "window_end": "2026-11-01T00:10:00Z",
                "revenue_usd_by_model": {H200: "-1"}}),
            ev("params.updated", "2026-11-01T00:10:00Z", {"models": {H200: {"portion": "0.5"}}}),  # 10
            ev("params.updated", "2026-11-01T00:10:00Z", {"tempo": "360"}),       # 11 bad_params (type)
            ev("params.updated", "2026-11-01T00:10:00Z", {"max_price_rate": 3}),  # 12 number for decimal
            ev("params.updated", "2026-11-01T00:10:00Z", {"rented_normalization": "x"}),  # 13
            ev("params.updated", "2026-11-01T00:10:00Z", {"models": {"New": {"price": "1"}}}),  # 14
            e1,                                                                    # 15
            epoch(5, "2026-11-01T02:00:00Z", 10),                                  # 16 duplicate_epoch
            epoch(6, "2026-11-01T03:00:00Z", 10, tao="0"),                          # 17 bad_prices
            other_netuid,                                                           # 18 bad_netuid
            epoch(6, "2026-11-01T05:00:00Z", 10),                                   # 19 ok (17 was refused)
        ),
    ])
    assert out["refused"] == {
        "3": "id_conflict", "4": "bad_time", "5": "malformed", "6": "malformed", "7": "bad_listing",
        "8": "unknown_executor", "9": "bad_revenue", "10": "bad_params", "11": "bad_params",
        "12": "bad_params", "13": "bad_params", "14": "bad_params", "16": "duplicate_epoch",
        "17": "bad_prices", "18": "bad_netuid",
    }
    assert set(out["epochs"]) == {"5", "6"}


def test_gpu_portion_ema_and_half_even_rounding() -> None:
    out = run(lines(
        ev("params.updated", "2026-11-01T00:00:00Z", {
            "gpu_portion_alpha": "0.5",
            "models": {
                "X1": {"price": "1", "caps": {"1": 1}, "vram_mib": 1, "portion": "0.000000000000000001"},
                "X3": {"price": "1", "caps": {"1": 1}, "vram_mib": 1, "portion": "0.000000000000000003"},
            },
        }),
        ev("revenue.reported", "2026-11-01T00:10:00Z", {
            "window_start": "2026-11-01T00:00:00Z", "window_end": "2026-11-01T00:10:00Z",
            "revenue_usd_by_model": {H200: "3", "Other": "1"}}),
    ))
    assert out["refused"] == {}
    # T = 4. H200: 0.56 + 0.5 × (0.75 − 0.56) = 0.655; Other (new): 0 + 0.5 × 0.25 = 0.125;
    # H100: 0.10 / 2 = 0.05; X1: 1e-18 / 2 = 0.5e-18 -> half to even -> 0; X3: 1.5e-18 -> 2e-18.
    assert out["portions"] == [[2, {
        "NVIDIA A100-SXM4-80GB": "0.025", "NVIDIA B200": "0.025", "NVIDIA B300": "0.025",
        "NVIDIA GeForce RTX 4090": "0.025", "NVIDIA GeForce RTX 5090": "0.0125",
        "NVIDIA H100 80GB HBM3": "0.05", H200: "0.655", "Other": "0.125",
        "X1": "0", "X3": "0.000000000000000002",
    }]]


def test_held_stop_applies_when_start_arrives() -> None:
    out = run(lines(
        listed("ex1", "hk1", "ck1", H200, 1, "2.85", "2026-11-01T00:00:00Z"),
        stopped("r1", "ex1", "2026-11-01T02:00:00Z"),
        started("r1", "ex1", "1.8", "2026-11-01T01:00:00Z", time="2026-11-01T02:00:01Z"),
        epoch(1, "2026-11-02T02:00:00Z", 0),
    ))
    # 1 h × 1.8 = 1.8 USD = 1_800_000 -> part 1_620_000 -> rao 81_000_000 at 20.
    assert out["days"]["2026-11-01"]["providers"]["hk1"]["payable_rao"] == 81_000_000


def test_cli_and_simulated_log(tmp_path: Path) -> None:
    sn51 = Path(sys.executable).parent / "sn51"
    if not sn51.exists():
        pytest.skip("sn51 CLI not available")
    log = tmp_path / "sim.jsonl"
    subprocess.run([str(sn51), "simulate", "--seed", "1", "--providers", "5", "--days", "3",
                    "--output", str(log)], check=True, capture_output=True)
    out_file = tmp_path / "out.json"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "tests.reference.oracle", "--input", str(log), "--output",
                    str(out_file)], check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    out = json.loads(out_file.read_text())
    direct = run(split_lines(log.read_bytes()))
    assert out == json.loads(json.dumps(direct))
    assert out["refused"] == {}
    assert len(out["days"]) >= 2
    for e in out["epochs"].values():
        s = e["shares"]
        assert Fraction(s["rented"]) + Fraction(s["unrented"]) + Fraction(s["burn"]) == 1
        assert e["burn_rao"] + sum(n["alpha_rao"] for n in e["nodes"].values()) >= 0


def test_ambiguities_are_documented() -> None:
    assert len(AMBIGUITIES) > 20
    assert all(isinstance(a, str) and "->" in a for a in AMBIGUITIES)
