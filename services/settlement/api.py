"""Settlement's read API (served by the runtime beside /health and /metrics) and the queries `sn51 payouts`
shares with it. Amounts are integer alpha rao; days are ISO dates.

- `GET /runs`: each payout run (run day T, trigger) with its payouts counted and summed per state.
- `GET /payouts?day=&state=&coldkey=`: payouts and their states, extrinsic hashes, blocks, reasons
  (`day` = a billing day the payout pays for).
- `GET /payouts/held`: held and failed payouts with their reasons.
- `GET /payouts/{payout_id}`: one payout and the batch attempts (hashes, nonce) that carried it.
- `GET /deferred?day=`: carries under min_payout_rao, per run.
- `GET /reconciliation?day=`: per billing day, ledger (Σ payable_rao of the consumed `day.closed`) vs planned
  vs landed (confirmed on chain), what is pending, held, failed or still carried, and payouts whose amount is
  not the sum of the statement lines they pay (must be none).
- with the in-memory chain (demo), `chain_check`: the chain's stakes against the confirmed payouts per coldkey.
- `GET /report?day=`: all of the above at once, with the executor's mode (live, memory or dry_run) (what
  `sn51 payouts --format json` prints).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query

from services.runtime.api import pool_of
from services.runtime.db import get_state
from services.settlement.chain_memory_pg import stakes_on, stored_state

router = APIRouter(tags=["settlement"])
# service_state key the executor writes at start: {"mode": "live" | "memory" | "dry_run", "missing": [settings
# a live run lacks], "announced": payouts logged as a dry run}
EXECUTOR_STATE = "payout_executor"

Pool = Annotated[asyncpg.Pool, Depends(pool_of)]
Day = Annotated[date | None, Query(description="a billing day (ISO date)")]

PAYOUT_FIELDS = (
    "payout_id, coldkey, run_id, run_day, billing_days, amount_rao, hotkeys, batch, state, batch_id, failures, "
    "extrinsic_hash, block_hash, block_number, reason"
)


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in records]


async def runs(conn: asyncpg.Connection, day: date | None = None) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        """SELECT r.run_id, r.run_day, r.triggered_at, r.planned, r.planned_rao, r.deferred, r.deferred_rao,
                  count(*) FILTER (WHERE p.state = 'confirmed') AS confirmed,
                  coalesce(sum(p.amount_rao) FILTER (WHERE p.state = 'confirmed'), 0)::bigint AS confirmed_rao,
                  count(*) FILTER (WHERE p.state IN ('planned', 'submitting')) AS pending,
                  count(*) FILTER (WHERE p.state = 'held') AS held,
                  count(*) FILTER (WHERE p.state = 'failed') AS failed,
                  count(DISTINCT p.batch_id) FILTER (WHERE p.state = 'confirmed') AS extrinsics
           FROM payout_run r LEFT JOIN payout p ON p.run_id = r.run_id
           WHERE $1::date IS NULL OR EXISTS (SELECT 1 FROM payout q WHERE q.run_id = r.run_id
                                                AND $1::date = ANY(q.billing_days))
           GROUP BY r.run_id ORDER BY r.run_day""",
        day,
    ))


async def payouts(conn: asyncpg.Connection, day: date | None = None, state: str | None = None,
                  coldkey: str | None = None) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        f"""SELECT {PAYOUT_FIELDS} FROM payout
            WHERE ($1::date IS NULL OR $1::date = ANY(billing_days)) AND ($2::text IS NULL OR state = $2)
              AND ($3::text IS NULL OR coldkey = $3)
            ORDER BY run_day, coldkey""",
        day, state, coldkey,
    ))


async def held(conn: asyncpg.Connection, day: date | None = None) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        f"""SELECT {PAYOUT_FIELDS} FROM payout WHERE state IN ('held', 'failed')
              AND ($1::date IS NULL OR $1::date = ANY(billing_days)) ORDER BY run_day, coldkey""",
        day,
    ))


async def deferred(conn: asyncpg.Connection, day: date | None = None) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        """SELECT payout_id, coldkey, run_id, run_day, billing_days, amount_rao, reason FROM deferred_carry
           WHERE $1::date IS NULL OR $1::date = ANY(billing_days) ORDER BY run_day, coldkey""",
        day,
    ))


async def reconciliation(conn: asyncpg.Connection, day: date | None = None) -> list[dict[str, Any]]:
    """Per billing day: what billing made payable (ledger), what settlement planned, what landed."""
    rows = _rows(await conn.fetch(
        """SELECT s.billing_day, s.event_id AS statement_id, s.payable_rao AS ledger_rao,
                  coalesce(sum(l.payable_rao) FILTER (WHERE p.payout_id IS NOT NULL), 0)::bigint AS planned_rao,
                  coalesce(sum(l.payable_rao) FILTER (WHERE p.state = 'confirmed'), 0)::bigint AS landed_rao,
                  coalesce(sum(l.payable_rao) FILTER (WHERE p.state IN ('planned', 'submitting')), 0)::bigint
                      AS pending_rao,
                  coalesce(sum(l.payable_rao) FILTER (WHERE p.state = 'held'), 0)::bigint AS held_rao,
                  coalesce(sum(l.payable_rao) FILTER (WHERE p.state = 'failed'), 0)::bigint AS failed_rao,
                  count(DISTINCT l.coldkey) FILTER (WHERE l.payable_rao > 0) AS coldkeys,
                  count(DISTINCT p.payout_id) AS payouts
           FROM statement s
           LEFT JOIN statement_line l ON l.billing_day = s.billing_day
           LEFT JOIN payout_day d ON d.coldkey = l.coldkey AND d.billing_day = l.billing_day
           LEFT JOIN payout p ON p.payout_id = d.payout_id
           WHERE $1::date IS NULL OR s.billing_day = $1::date
           GROUP BY s.billing_day, s.event_id, s.payable_rao ORDER BY s.billing_day""",
        day,
    ))
    for r in rows:
        r["carried_rao"] = r["ledger_rao"] - r["planned_rao"]  # under the minimum, or its run has not come
        r["outstanding_rao"] = r["ledger_rao"] - r["landed_rao"]  # = carried + pending + held + failed
        r["paid_in_full"] = r["outstanding_rao"] == 0
    return rows


async def plan_mismatches(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Payouts whose amount is not the sum of the statement lines of the (coldkey, days) they pay."""
    return _rows(await conn.fetch(
        """SELECT p.payout_id, p.coldkey, p.amount_rao, coalesce(sum(l.payable_rao), 0)::bigint AS lines_rao
           FROM payout p JOIN payout_day d ON d.payout_id = p.payout_id
           LEFT JOIN statement_line l ON l.coldkey = d.coldkey AND l.billing_day = d.billing_day
           GROUP BY p.payout_id, p.coldkey, p.amount_rao
           HAVING p.amount_rao <> coalesce(sum(l.payable_rao), 0)
           ORDER BY p.payout_id"""
    ))


async def chain_check(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """With the in-memory chain (demo, tests): each coldkey's stake received on the payout hotkey against the
    sum of its confirmed payouts, to the rao. None with a live chain (read it with the chain's own tools)."""
    state = await stored_state(conn)
    if state is None:
        return None
    on_chain = {ck: v for ck, v in stakes_on(state, state["payout_hotkey"]).items() if ck != state["payout_coldkey"]}
    confirmed = {r["coldkey"]: int(r["rao"]) for r in await conn.fetch(
        "SELECT coldkey, sum(amount_rao) AS rao FROM payout WHERE state = 'confirmed' GROUP BY coldkey")}
    mismatches = [{"coldkey": ck, "chain_rao": on_chain.get(ck, 0), "confirmed_rao": confirmed.get(ck, 0)}
                  for ck in sorted(set(on_chain) | set(confirmed)) if on_chain.get(ck, 0) != confirmed.get(ck, 0)]
    return {"coldkeys": len(on_chain), "chain_rao": sum(on_chain.values()),
            "confirmed_rao": sum(confirmed.values()), "extrinsics": state["included"], "mismatches": mismatches}


async def report(conn: asyncpg.Connection, day: date | None = None) -> dict[str, Any]:
    return {
        "chain_check": await chain_check(conn),
        "day": _plain(day),
        "executor": await get_state(conn, EXECUTOR_STATE),
        "runs": await runs(conn, day),
        "payouts": await payouts(conn, day),
        "held": await held(conn, day),
        "deferred": await deferred(conn, day),
        "reconciliation": await reconciliation(conn, day),
        "plan_mismatches": await plan_mismatches(conn),
    }


@router.get("/runs")
async def get_runs(pool: Pool, day: Day = None) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await runs(conn, day)


@router.get("/payouts")
async def get_payouts(pool: Pool, day: Day = None, state: str | None = None,
                      coldkey: str | None = None) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await payouts(conn, day, state, coldkey)


@router.get("/payouts/held")
async def get_held(pool: Pool, day: Day = None) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await held(conn, day)


@router.get("/payouts/{payout_id}")
async def get_payout(payout_id: str, pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT {PAYOUT_FIELDS} FROM payout WHERE payout_id = $1", payout_id)
        if row is None:
            raise HTTPException(404, f"no payout {payout_id}")
        batches = await conn.fetch(
            """SELECT batch_id, nonce, from_block, hashes, state, extrinsic_hash, block_hash, block_number, reason,
                      transfers FROM payout_batch WHERE $1 = ANY(payout_ids) ORDER BY created_at""",
            payout_id,
        )
    out = _rows([row])[0]
    out["batches"] = [{**r, "transfers": len(json.loads(r["transfers"]))} for r in _rows(batches)]
    return out


@router.get("/deferred")
async def get_deferred(pool: Pool, day: Day = None) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await deferred(conn, day)


@router.get("/reconciliation")
async def get_reconciliation(pool: Pool, day: Day = None) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"days": await reconciliation(conn, day), "plan_mismatches": await plan_mismatches(conn)}


@router.get("/report")
async def get_report(pool: Pool, day: Day = None) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await report(conn, day)
