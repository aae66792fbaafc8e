"""Billing's read API (served by the runtime beside /health and /metrics), over the tables of `store`.

- `GET /providers/{hotkey}/balance`: what the closed days made payable so far, the rest carried to the next
  statement, and what has accrued on days still open.
- `GET /providers/{hotkey}/entries?from=&to=&limit=&offset=`: the provider's ledger entries, signed from its side.
- `GET /providers/{hotkey}/statements?from=&to=&format=json|csv`: its line of each daily statement.
- `GET /platform/totals`: account balances, statement totals, and the trial balance per unit.
- `GET /days/{day}`: one day's statement as published, with its hash chain link.
Amounts are integers (rao, micro-USD, wei); prices are the statement's decimal strings.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from services.billing.ledger import provider
from services.runtime.api import pool_of

router = APIRouter(tags=["billing"])

Pool = Annotated[asyncpg.Pool, Depends(pool_of)]
From = Annotated[date | None, Query(alias="from", description="first billing day (inclusive)")]
To = Annotated[date | None, Query(alias="to", description="last billing day (inclusive)")]

STATEMENT_COLUMNS = (
    "billing_day", "hotkey", "coldkey", "emission_rao", "rental_fee_usd_micros", "forfeited_rao",
    "forfeited_usd_micros", "adjustment_rao", "adjustment_usd_micros", "payable_rao", "carried_rao", "slashed_wei",
    "tao_usd", "alpha_tao", "ledger_hash",
)


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):  # numeric(78, 0) columns: wei
        return int(value)
    return value


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {k: _plain(v) for k, v in record.items()}


@router.get("/providers/{hotkey}/balance")
async def balance(hotkey: str, pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        closed = await conn.fetchrow(
            """SELECT count(*) AS days, coalesce(sum(payable_rao), 0)::bigint AS payable_rao,
                      max(billing_day) AS last_day FROM provider_day WHERE hotkey = $1""",
            hotkey,
        )
        latest = await conn.fetchrow(
            "SELECT coldkey, carried_rao FROM provider_day WHERE hotkey = $1 ORDER BY billing_day DESC LIMIT 1",
            hotkey,
        )
        closed_through = await conn.fetchval("SELECT max(billing_day) FROM day_statement")
        pending = await conn.fetch(
            """SELECT kind, sum(amount_rao)::bigint AS rao, sum(amount_usd_micros)::bigint AS usd_micros
               FROM earning_day WHERE hotkey = $1 AND billing_day > coalesce($2::date, '-infinity'::date)
               GROUP BY kind ORDER BY kind""",
            hotkey, closed_through,
        )
    if not closed["days"] and not pending:
        raise HTTPException(404, f"no earnings for hotkey {hotkey}")
    return {
        "hotkey": hotkey,
        "coldkey": latest["coldkey"] if latest else None,
        "closed_through": _plain(closed_through),
        "statements": closed["days"],
        "last_statement_day": _plain(closed["last_day"]),
        "payable_rao": closed["payable_rao"],
        "carried_rao": latest["carried_rao"] if latest else 0,
        "accruing": {r["kind"]: {"amount_rao": r["rao"], "amount_usd_micros": r["usd_micros"]} for r in pending},
    }


@router.get("/providers/{hotkey}/entries")
async def entries(
    hotkey: str, pool: Pool, from_: From = None, to: To = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000, offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    account = provider(hotkey)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT day, seq, debit, credit, amount, unit, kind, cause_id, executor_id, part,
                      CASE WHEN credit = $1 THEN amount ELSE -amount END AS signed_amount
               FROM ledger_entry
               WHERE provider = $6
                 AND day >= coalesce($2::date, '-infinity'::date) AND day <= coalesce($3::date, 'infinity'::date)
               ORDER BY day, seq LIMIT $4 OFFSET $5""",
            account, from_, to, limit, offset, hotkey,
        )
    return {"hotkey": hotkey, "account": account, "entries": [_row(r) for r in rows]}


@router.get("/providers/{hotkey}/statements", response_model=None)
async def statements(
    hotkey: str, pool: Pool, from_: From = None, to: To = None, format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT {", ".join("p." + c if c not in ("tao_usd", "alpha_tao", "ledger_hash") else "s." + c
                                  for c in STATEMENT_COLUMNS)}
                FROM provider_day p JOIN day_statement s USING (billing_day)
                WHERE p.hotkey = $1 AND p.billing_day >= coalesce($2::date, '-infinity'::date)
                  AND p.billing_day <= coalesce($3::date, 'infinity'::date)
                ORDER BY p.billing_day""",
            hotkey, from_, to,
        )
    lines = [_row(r) for r in rows]
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=STATEMENT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"content-disposition": f'attachment; filename="statements-{hotkey}.csv"'})
    return {"hotkey": hotkey, "statements": lines}


@router.get("/platform/totals")
async def totals(pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        days = await conn.fetchrow(
            """SELECT count(*) AS days, min(billing_day) AS first_day, max(billing_day) AS last_day,
                      (SELECT ledger_hash FROM day_statement ORDER BY billing_day DESC LIMIT 1) AS last_hash,
                      (SELECT count(*) FROM ledger_entry) AS entries
               FROM day_statement"""
        )
        sums = await conn.fetchrow(
            """SELECT coalesce(sum(emission_rao), 0)::bigint AS emission_rao,
                      coalesce(sum(rental_fee_usd_micros), 0)::bigint AS rental_fee_usd_micros,
                      coalesce(sum(forfeited_rao), 0)::bigint AS forfeited_rao,
                      coalesce(sum(forfeited_usd_micros), 0)::bigint AS forfeited_usd_micros,
                      coalesce(sum(adjustment_rao), 0)::bigint AS adjustment_rao,
                      coalesce(sum(adjustment_usd_micros), 0)::bigint AS adjustment_usd_micros,
                      coalesce(sum(payable_rao), 0)::bigint AS payable_rao,
                      coalesce(sum(slashed_wei), 0) AS slashed_wei
               FROM provider_day"""
        )
        accounts = await conn.fetch(
            """SELECT CASE WHEN account LIKE 'provider:%' THEN 'providers' ELSE account END AS account, unit,
                      sum(credits)::bigint AS credits, sum(debits)::bigint AS debits, sum(balance)::bigint AS balance
               FROM account_balance GROUP BY 1, unit ORDER BY 1, unit"""
        )
        trial = await conn.fetch(
            """SELECT unit, total_debits::bigint, total_credits::bigint, net::bigint, balanced
               FROM trial_balance ORDER BY unit"""
        )
    return {
        "days_closed": days["days"],
        "first_day": _plain(days["first_day"]),
        "last_day": _plain(days["last_day"]),
        "last_hash": days["last_hash"],
        "ledger_entries": days["entries"],
        "statements": _row(sums),
        "accounts": [_row(r) for r in accounts],
        "trial_balance": [_row(r) for r in trial],
    }


@router.get("/days/{day}")
async def day_statement(day: date, pool: Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT billing_day, event_id, closed_by, ledger_hash, previous_hash, entry_count, statement
               FROM day_statement WHERE billing_day = $1""",
            day,
        )
    if row is None:
        raise HTTPException(404, f"{day.isoformat()} is not closed")
    out = _row(row)
    out["statement"] = json.loads(row["statement"])
    return out
