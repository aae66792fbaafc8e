"""The scoring service through a real broker and PostgreSQL: a simulated log in, the service (in process, the
shipped `SPEC`), its outputs equal to the core's over the same log, and its read API answering from the read
model with the core's state."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
from scoring_io import expected, simulated_log

from schemas.codec import decode
from schemas.envelope import Event
from schemas.topics import DEAD_LETTER, INPUT, SCORING
from schemas.values import fmt_decimal
from services.runtime.kafka import create_all_topics, produce
from services.runtime.service import run
from services.runtime.settings import Settings
from services.scoring.app import SPEC
from services.scoring.core import ScoringCore
from services.scoring.weights import weights
from sn51.localinfra.procs import free_port
from tests.integration.kit import eventually, read_topic

pytestmark = pytest.mark.integration


async def test_scoring_service_matches_the_core_and_serves_the_read_model(
    kafka_bootstrap: str, fresh_database_url: str
) -> None:
    tag = secrets.token_hex(4)
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, database_url=fresh_database_url, topic_prefix=f"sc{tag}.",
        consumer_group=f"sn51-scoring-{tag}", session_timeout_ms=2000, heartbeat_interval_ms=200,
        relay_idle_seconds=0.1, api_port=free_port(),
    )
    input_topic, out_topic, dlq_topic = (settings.topic(t) for t in (INPUT, SCORING, DEAD_LETTER))
    log = simulated_log(seed=11, providers=4, days=0.6)
    want = expected(log, input_topic)
    scored = [e for e in want.derived if e.type == "epoch.scored"]
    assert len(scored) >= 5 and any(n.alpha_rao > 0 for e in scored for n in e.data.nodes)
    assert want.dead  # the faults include refused lines

    await create_all_topics(kafka_bootstrap, settings.topic_prefix)
    await produce(kafka_bootstrap, log, topic=input_topic)
    service = asyncio.create_task(run(SPEC, settings))
    try:
        async def published() -> bool:
            assert not service.done(), service
            return len(await read_topic(kafka_bootstrap, out_topic)) >= len(want.derived)

        await eventually(published, "every derived event on the scoring topic")
        records = await read_topic(kafka_bootstrap, out_topic)
        assert [r.value for r in records] == [e.to_bytes() for e in want.derived]
        assert [r.key for r in records] == [e.key.encode() for e in want.derived]
        got_scored = [decode(r.value) for r in records if decode(r.value).type == "epoch.scored"]
        assert got_scored == scored

        dead = await read_topic(kafka_bootstrap, dlq_topic)
        assert [
            (int(h["source_offset"]), h["code"])
            for h in ({k: v.decode() for k, v in r.headers} for r in dead)
        ] == want.dead

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=10) as http:
            await check_read_api(http, want.core, scored)
    finally:
        service.cancel()
        with pytest.raises(asyncio.CancelledError):
            await service


async def check_read_api(http: httpx.AsyncClient, core: ScoringCore, scored: list[Event]) -> None:
    """Every route against the core's state after the same log."""
    async def get(path: str, **params: str) -> Any:
        response = await http.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    assert (await get("/health"))["status"] == "ok"

    assert core.last_split is not None
    last = core.last_split.model_dump(mode="json")
    assert await get("/epochs/latest") == {**last, "event_id": scored[-1].id}
    first = scored[0].data.model_dump(mode="json")
    assert await get(f"/epochs/{first['epoch']}") == {**first, "event_id": scored[0].id}
    assert (await http.get("/epochs/999999999")).status_code == 404

    assert (await get("/gpu-portions"))["portions"] == {m: fmt_decimal(p) for m, p in sorted(core.portions.items())}
    assert "NVIDIA L40S" in core.portions  # the simulated params update added a model

    body = await get("/weights/latest", burner_hotkey="burner")
    assert body["epoch"] == last["epoch"]
    assert [(w["hotkey"], w["weight"]) for w in body["weights"]] == weights(core.last_split, "burner")

    nodes = {n["executor_id"]: n for n in last["nodes"]}
    for eid, listing in core.book.listings.items():
        view = await get(f"/executors/{eid}")
        score, reasons = core.scores[eid]
        assert (view["hotkey"], view["listed"], view["score"], view["reasons"]) == (
            listing.hotkey, eid in core.book.listed, score, list(reasons))
        assert (view["gpu_model"], view["gpu_count"]) == (listing.gpu_model, listing.gpu_count)
        split = view["last_split"]
        assert (split["epoch"], split["taking_part"]) == (last["epoch"], eid in nodes)
        node = nodes.get(eid)
        if node is not None:
            assert (split["pool"], split["incentive"], split["alpha_rao"], split["reason"]) == (
                node["pool"], node["incentive"], node["alpha_rao"], node["reason"])
        else:
            assert (split["pool"], split["alpha_rao"]) == (None, 0)
    hotkey = next(iter(core.book.listings.values())).hotkey
    listed = await get("/executors", hotkey=hotkey)
    assert [v["executor_id"] for v in listed["executors"]] == sorted(
        eid for eid, lst in core.book.listings.items() if lst.hotkey == hotkey)
    assert (await http.get("/executors/no-such-executor")).status_code == 404
