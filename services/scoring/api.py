"""The scoring read API (served by the runtime beside /health and /metrics, port 8151 by default).

- `GET /executors/{executor_id}`: listing, score, reasons, and its node in the latest split (pool, incentive,
  alpha_rao, reason): why a node earns nothing.
- `GET /executors?hotkey=&limit=&offset=`: the same for a hotkey's executors (or all), by executor_id.
- `GET /gpu-portions`: the current portion of every kept model.
- `GET /epochs/latest`, `GET /epochs/{epoch}`: a split as the `epoch.scored` data (plus `event_id`).
- `GET /weights/latest?burner_hotkey=`: the validator's u16 weight vector of the latest split, the burn share
  on `burner_hotkey` (`services.scoring.weights`).
Everything is read from the service's read model (`services.scoring.store`), never from the live core.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query

from services.runtime.api import pool_of
from services.scoring import store
from services.scoring.weights import weights

router = APIRouter(tags=["scoring"])

Pool = Annotated[asyncpg.Pool, Depends(pool_of)]


@router.get("/executors/{executor_id}")
async def executor(executor_id: str, pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        found = await store.executors(conn, executor_id=executor_id)
    if not found:
        raise HTTPException(404, f"unknown executor {executor_id}")
    return found[0]


@router.get("/executors")
async def executors(
    pool: Pool,
    hotkey: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        found = await store.executors(conn, hotkey=hotkey, limit=limit, offset=offset)
    return {"executors": found}


@router.get("/gpu-portions")
async def gpu_portions(pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"portions": await store.portions(conn)}


async def _split(pool: asyncpg.Pool, epoch: int | None) -> dict[str, Any]:
    async with pool.acquire() as conn:
        found = await store.split(conn, epoch)
    if found is None:
        raise HTTPException(404, "no epoch scored yet" if epoch is None else f"epoch {epoch} not scored")
    return found


@router.get("/epochs/latest")
async def latest_epoch(pool: Pool) -> dict[str, Any]:
    return await _split(pool, None)


@router.get("/epochs/{epoch}")
async def epoch(epoch: int, pool: Pool) -> dict[str, Any]:
    return await _split(pool, epoch)


@router.get("/weights/latest")
async def latest_weights(pool: Pool, burner_hotkey: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
    found = await _split(pool, None)
    vector = weights(store.scored(found), burner_hotkey)
    return {
        "netuid": found["netuid"],
        "epoch": found["epoch"],
        "burner_hotkey": burner_hotkey,
        "weights": [{"hotkey": hotkey, "weight": weight} for hotkey, weight in vector],
    }
