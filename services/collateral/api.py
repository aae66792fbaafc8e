"""Read API of the collateral service: collateral per executor, its logs, and the trustee's slashes."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException

from services.runtime.api import pool_of

router = APIRouter(prefix="/collateral", tags=["collateral"])

_AMOUNTS = ("deposited_wei", "reclaimed_wei", "slashed_wei", "pending_reclaim_wei", "amount_wei",
            "reclaim_request_id")


def _row(record: asyncpg.Record) -> dict[str, Any]:
    out = dict(record)
    for key in _AMOUNTS:
        if out.get(key) is not None:
            out[key] = int(out[key])
    if "deposited_wei" in out:
        out["balance_wei"] = out["deposited_wei"] - out["reclaimed_wei"] - out["slashed_wei"]
    for key in ("time", "retracted_at", "created_at", "updated_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


@router.get("/executors")
async def executors(pool: asyncpg.Pool = Depends(pool_of)) -> list[dict[str, Any]]:
    """Collateral per executor from the live (not retracted) logs, in wei."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM collateral_executors ORDER BY executor_id")
    return [_row(r) for r in rows]


@router.get("/executors/{executor_id}")
async def executor(executor_id: str, pool: asyncpg.Pool = Depends(pool_of)) -> dict[str, Any]:
    """One executor's collateral and every log read for it, retracted ones flagged."""
    async with pool.acquire() as conn:
        summary = await conn.fetchrow("SELECT * FROM collateral_executors WHERE executor_id = $1", executor_id)
        logs = await conn.fetch(
            """SELECT event_id, event_type, miner_evm_address, amount_wei, url, reclaim_request_id, tx_hash,
                      block_number, log_index, time, retracted, retracted_at
               FROM collateral_logs WHERE executor_id = $1 ORDER BY block_number, log_index""", executor_id)
    if summary is None and not logs:
        raise HTTPException(404, f"no collateral log for executor {executor_id}")
    body: dict[str, Any] = _row(summary) if summary is not None else {"executor_id": executor_id}
    body["logs"] = [_row(r) for r in logs]
    return body


@router.get("/slashes")
async def slashes(pool: asyncpg.Pool = Depends(pool_of)) -> list[dict[str, Any]]:
    """Every slash the trustee planned, with where it stands (planned, sent, landed, nothing_to_slash,
    failed)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT request_id, executor_id, amount_wei, reason, rental_id, incident_id, status, tx_hash,
                      slashed_wei, landed_tx_hash, attempts, detail, created_at, updated_at
               FROM collateral_slash_plans ORDER BY created_at, request_id""")
    out = [_row(r) for r in rows]
    for r in out:
        if r.get("slashed_wei") is not None:
            r["slashed_wei"] = int(r["slashed_wei"])
    return out
