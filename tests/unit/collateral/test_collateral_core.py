"""The collateral core with hand-worked numbers: one day of fee in wei, repeats, waiting, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.codec import Refused
from schemas.envelope import Event, derived_id
from schemas.events import (
    CollateralLog,
    CollateralSlashRequested,
    EpochClosed,
    ExecutorListed,
    RentalIncident,
    RentalStarted,
)
from services.collateral.core import CollateralCore

T0 = datetime(2026, 11, 21, 12, tzinfo=UTC)
EX = "6339ba4f-60f9-45c2-9d95-2b755bb57ca6"
MINER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def ev(id_: str, type_: str, data: Any) -> Event:
    return Event(id=id_, type=type_, source="platform", time=T0, key=EX, causation_id=None, data=data)


def listed(gpu_count: int = 8, price: str = "1.494") -> Event:
    return ev("l1", "executor.listed", ExecutorListed(
        executor_id=EX, hotkey="hk", coldkey="ck", gpu_model="NVIDIA H100 80GB HBM3", gpu_count=gpu_count,
        price_per_gpu_usd=price, sysbox=True))


def started(rental_id: str = "r1", price: str = "1.494") -> Event:
    return ev(f"start-{rental_id}", "rental.started", RentalStarted(
        rental_id=rental_id, executor_id=EX, renter_id="renter", price_per_gpu_usd=price, started_at=T0))


def epoch(n: int, tao_usd: str) -> Event:
    return ev(f"epoch-{n}", "epoch.closed", EpochClosed(
        netuid=51, epoch=n, start_block=n * 360, end_block=n * 360 + 359, closed_at=T0,
        miner_emission_rao=10**9, tao_usd=tao_usd, alpha_tao="0.01"))


def incident(id_: str, rental_id: str = "r1") -> Event:
    return ev(id_, "rental.incident", RentalIncident(rental_id=rental_id, executor_id=EX, kind="ssh_refused", at=T0))


def log(type_: str, amount: int, index: int, reclaim: int | None = None) -> Event:
    data = CollateralLog(executor_id=EX, miner_evm_address=MINER, amount_wei=amount, chain_id=945,
                         tx_hash=f"0x{index:064x}", block_number=100 + index, log_index=0,
                         reclaim_request_id=reclaim)
    return Event(id=f"945:0x{index:064x}:0", type=type_, source="collateral", time=T0, key=EX,
                 causation_id=None, data=data)


def run(core: CollateralCore, *events: Event) -> list[Event]:
    out: list[Event] = []
    for e in events:
        out.extend(core.handle(e))
    return out


def only_request(out: list[Event]) -> CollateralSlashRequested:
    assert len(out) == 1 and out[0].type == "collateral.slash_requested"
    assert isinstance(out[0].data, CollateralSlashRequested)
    return out[0].data


def test_first_incident_slashes_one_day_of_fee_in_wei() -> None:
    core = CollateralCore(chain_id=945)
    run(core, listed(), started(), epoch(1, "300"), epoch(2, "400"),
        log("collateral.deposited", 5 * 10**18, 1))
    out = core.handle(incident("i1"))
    req = only_request(out)
    # 1.494 USD/GPU-h × 8 GPUs × 24 h = 286.848 USD; at 400 USD/TAO: 0.71712 TAO = 717120000000000000 wei
    assert req.amount_wei == 717_120_000_000_000_000
    assert (req.executor_id, req.miner_evm_address, req.rental_id, req.incident_id, req.reason, req.chain_id) == (
        EX, MINER, "r1", "i1", "first_incident", 945)
    assert out[0].id == derived_id("collateral.slash_requested", "i1", "")
    assert (out[0].causation_id, out[0].time, out[0].key, out[0].source) == ("i1", T0, EX, "collateral")


def test_fee_uses_the_rental_price_and_floors() -> None:
    core = CollateralCore(chain_id=945)
    # the listing says 1 GPU at 3.00, the rental was taken at 2.85: 2.85 × 1 × 24 = 68.4 USD
    run(core, listed(gpu_count=1, price="3.00"), started(price="2.85"), epoch(1, "333.33"))
    # 68.4 / 333.33 = 0.205202052020520205202... TAO, floored to the wei
    assert only_request(core.handle(incident("i1"))).amount_wei == 205_202_052_020_520_205


def test_repeat_incident_slashes_the_whole_remaining_collateral() -> None:
    core = CollateralCore(chain_id=945)
    run(core, listed(), started(), epoch(1, "400"), log("collateral.deposited", 3 * 10**18, 1))
    first = only_request(core.handle(incident("i1")))
    run(core, log("collateral.slashed", first.amount_wei, 2))
    second = only_request(core.handle(incident("i2")))
    assert (second.reason, second.amount_wei) == ("repeat_incident", 3 * 10**18 - 717_120_000_000_000_000)
    assert only_request(core.handle(incident("i3"))).reason == "repeat_incident"


def test_an_incident_delivered_twice_slashes_once() -> None:
    core = CollateralCore(chain_id=945)
    run(core, listed(), started(), epoch(1, "400"))
    assert len(core.handle(incident("i1"))) == 1
    assert core.handle(incident("i1")) == []
    # and the duplicate did not count as a repeat
    assert only_request(core.handle(incident("i2"))).reason == "repeat_incident"


def test_incident_waits_for_its_rental_and_a_price() -> None:
    core = CollateralCore(chain_id=945)
    run(core, listed())
    assert core.handle(incident("i1")) == []  # rental not started yet, no price yet
    assert core.handle(started()) == []  # still no price
    req = only_request(core.handle(epoch(1, "400")))
    assert (req.incident_id, req.amount_wei) == ("i1", 717_120_000_000_000_000)
    assert core.handle(epoch(2, "500")) == []


def test_latest_price_and_repeat_count_are_per_rental() -> None:
    core = CollateralCore(chain_id=945)
    run(core, listed(), started("r1"), started("r2", price="1"), epoch(1, "400"))
    only_request(core.handle(incident("i1", "r1")))
    run(core, epoch(2, "480"))
    req = only_request(core.handle(incident("i2", "r2")))
    # a first incident of r2: 1 × 8 × 24 = 192 USD at 480 = 0.4 TAO
    assert (req.reason, req.amount_wei) == ("first_incident", 4 * 10**17)


def test_a_rental_of_an_unknown_executor_is_refused_and_its_incident_waits() -> None:
    core = CollateralCore(chain_id=945)
    with pytest.raises(Refused) as info:
        core.handle(started())
    assert info.value.code == "unknown_executor"
    assert core.handle(incident("i1")) == []  # taken (SPEC refuses "a rental (or stop)"); no rental to slash yet
    assert list(core.waiting) == ["i1"]
    out = run(core, listed(), epoch(1, "400"), started())
    assert [e.type for e in out] == ["collateral.slash_requested"]  # decided once its rental is known


def test_collateral_fold() -> None:
    core = CollateralCore(chain_id=945)
    run(core,
        log("collateral.deposited", 10, 1), log("collateral.deposited", 5, 2),
        log("collateral.reclaim_started", 15, 3, reclaim=0), log("collateral.reclaim_denied", 15, 4, reclaim=0),
        log("collateral.reclaim_started", 15, 5, reclaim=1), log("collateral.slashed", 4, 6),
        log("collateral.reclaimed", 11, 7, reclaim=1))
    c = core.collateral[EX]
    assert (c.miner, c.deposited_wei, c.reclaimed_wei, c.slashed_wei, c.balance_wei, c.pending_reclaim_wei) == (
        MINER, 15, 11, 4, 0, 0)
    run(core, log("collateral.deposited", 7, 8), log("collateral.reclaim_started", 7, 9, reclaim=2))
    assert (c.balance_wei, c.pending_reclaim_wei) == (7, 7)
