"""The scoring read model against a real PostgreSQL: the runtime's processor with the scoring core and the
projection hook, batch by batch; after each batch the read API (in process, over ASGI) says what the core's
state says. Covers what the simulator rarely makes: a revenue report naming a new model with total 0, a params
update adding models with and without a portion, a delisting, a zero score, no split yet."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from schemas.envelope import Event
from schemas.values import fmt_decimal
from services.runtime.api import create_app
from services.runtime.outbox import Message
from services.runtime.processor import Accepted, Processor
from services.scoring.api import router
from services.scoring.core import ScoringCore
from services.scoring.store import MIGRATIONS, project
from services.scoring.weights import weights
from tests import factories as f
from tests.integration.kit import migrated_pool

pytestmark = pytest.mark.integration

T0 = "2026-11-01T00:00:00Z"
L40S = {"price": "0.95", "caps": {"1": 8, "8": 32}, "vram_mib": 46068, "portion": "0.02"}
Q1 = {"price": "0.5", "caps": {"1": 4}, "vram_mib": 16000}


def at(minute: int) -> str:
    return f"2026-11-01T{minute // 60:02d}:{minute % 60:02d}:00Z"


BATCHES: list[list[Event]] = [
    [
        f.listed("ex-1", "hk-1", "ck-1", at(1)),
        f.benchmark("ex-1", "hk-1", at(2)),
        f.listed("ex-2", "hk-1", "ck-1", at(3), model="NVIDIA H100 80GB HBM3", count=8, price="1.494"),
        f.benchmark("ex-2", "hk-1", at(4), model="NVIDIA H100 80GB HBM3", count=8, vram=40000),
        f.listed("ex-3", "hk-2", "ck-2", at(5), model="NVIDIA GeForce RTX 4090", price="0.30"),
        f.benchmark("ex-3", "hk-2", at(6), model="NVIDIA GeForce RTX 4090", vram=24564),
        f.revenue(at(7), {"NVIDIA Z9": "0"}),
    ],
    [
        f.params(at(8), models={"NVIDIA L40S": L40S, "NVIDIA Q1": Q1}),
        f.started("r-1", "ex-1", at(10)),
        f.epoch(1, at(11), emission=100_000_000_000),
    ],
    [
        f.revenue(at(12), {"NVIDIA H200": "100", "NVIDIA Z9": "10"}),
        f.delisted("ex-3", at(12)),
        f.benchmark("ex-1", "hk-1", at(13), download="10"),  # the EMA stays above 100 once: still 1
        f.benchmark("ex-1", "hk-1", at(14), download="10"),
        f.epoch(2, at(15), emission=100_000_000_000),
    ],
]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[tuple[Processor, httpx.AsyncClient, Any]]:
    service = f"scoring_store_{secrets.token_hex(4)}"
    async with migrated_pool(database_url, service, MIGRATIONS) as pool:
        app = create_app(service, router, pool)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring") as http:
            yield Processor(service, ScoringCore(), project), http, pool


async def get(http: httpx.AsyncClient, path: str, status: int = 200, **params: str) -> Any:
    response = await http.get(path, params=params)
    assert response.status_code == status, (path, response.text)
    return response.json()


async def test_the_read_model_follows_the_core_batch_by_batch(
    api: tuple[Processor, httpx.AsyncClient, Any],
) -> None:
    processor, http, pool = api
    core = processor.core
    assert isinstance(core, ScoringCore)
    await get(http, "/epochs/latest", 404)
    await get(http, "/weights/latest", 404, burner_hotkey="burner")
    await get(http, "/weights/latest", 422)
    assert (await get(http, "/gpu-portions"))["portions"] == rendered(core)

    offset = 0
    scored: list[Event] = []
    for events in BATCHES:
        messages = [Message("sn51.input", 0, offset + i, None, e.to_bytes()) for i, e in enumerate(events)]
        offset += len(events)
        async with pool.acquire() as conn:
            outcomes = await processor.process(conn, messages)
        assert all(isinstance(o, Accepted) for o in outcomes), outcomes
        scored += [d for o in outcomes if isinstance(o, Accepted) for d in o.derived if d.type == "epoch.scored"]
        await check(http, core, scored)

    ex1, ex2, ex3 = [await get(http, f"/executors/{e}") for e in ("ex-1", "ex-2", "ex-3")]
    assert (ex1["score"], ex1["last_split"]["pool"], ex1["last_split"]["taking_part"]) == (1, "rented", True)
    assert ex1["last_split"]["alpha_rao"] > 0
    assert (ex2["score"], ex2["reasons"], ex2["last_split"]["taking_part"]) == (0, ["vram_mismatch"], False)
    assert (ex3["listed"], ex3["score"], ex3["last_split"]["taking_part"]) == (False, 1, False)
    portions = (await get(http, "/gpu-portions"))["portions"]
    assert {"NVIDIA Z9", "NVIDIA L40S", "NVIDIA Q1"} <= set(portions)


def rendered(core: ScoringCore) -> dict[str, str]:
    return {m: fmt_decimal(p) for m, p in sorted(core.portions.items())}


async def check(http: httpx.AsyncClient, core: ScoringCore, scored: list[Event]) -> None:
    assert (await get(http, "/gpu-portions"))["portions"] == rendered(core)
    for eid, listing in core.book.listings.items():
        view = await get(http, f"/executors/{eid}")
        score, reasons = core.scores[eid]
        assert (view["hotkey"], view["listed"], view["score"], view["reasons"]) == (
            listing.hotkey, eid in core.book.listed, score, list(reasons))
        if not scored:
            assert view["last_split"] is None
    for hotkey in {lst.hotkey for lst in core.book.listings.values()}:
        body = await get(http, "/executors", hotkey=hotkey)
        assert [v["executor_id"] for v in body["executors"]] == sorted(
            e for e, lst in core.book.listings.items() if lst.hotkey == hotkey)
    if not scored:
        return
    assert core.last_split is not None
    assert await get(http, "/epochs/latest") == {**core.last_split.model_dump(mode="json"), "event_id": scored[-1].id}
    for event in scored:
        body = await get(http, f"/epochs/{event.data.model_dump()['epoch']}")
        assert body == {**event.data.model_dump(mode="json"), "event_id": event.id}
    body = await get(http, "/weights/latest", burner_hotkey="burner")
    assert [(w["hotkey"], w["weight"]) for w in body["weights"]] == weights(core.last_split, "burner")
