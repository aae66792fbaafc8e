"""Billing's tables in a real PostgreSQL, written by the service's projection from a hand-built log (no broker):
what they store, and what their constraints refuse.

The log: a rental left open over three closed days, then stopped late inside the first one. The late stop
corrects all three days: three adjustments with the same cause key booked on the open day (two of them
identical), stored as parts 0, 1, 2; that day's provider rest is negative and carries.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest
from billing_harness import assert_ledger_equals, reference

from schemas.codec import decode_obj, encode
from schemas.envelope import Event
from services.billing.app import Projection
from services.billing.core import BillingCore
from services.billing.store import MIGRATIONS
from services.runtime.db import migrate
from tests.factories import envelope, epoch, listed, started, stopped

pytestmark = pytest.mark.integration

def scored(n: int, closed_at: str, alpha_rao: int = 1_000, emission: int = 10**12) -> Event:
    """The split of epoch n: ex-1 earns `alpha_rao`, the rest burns (billing waits for it to close the epoch)."""
    return decode_obj(envelope("epoch.scored", closed_at, {
        "netuid": 51, "epoch": n, "closed_at": closed_at, "miner_emission_rao": emission,
        "shares": {"rented": "0.09", "unrented": "0", "burn": "0.91"},
        "nodes": [{"executor_id": "ex-1", "hotkey": "hk-1", "pool": "rented", "incentive": "0.01",
                   "alpha_rao": alpha_rao, "reason": None}],
        "burn_rao": emission - alpha_rao,
    }))


def closing(n: int, closed_at: str) -> list[Event]:
    return [epoch(n, closed_at, emission=10**12), scored(n, closed_at)]


LOG: list[Event] = [
    listed("ex-1", "hk-1", "ck-1", "2026-11-01T00:00:00Z", count=2),
    started("r-1", "ex-1", "2026-11-01T10:00:00Z", price="2.85"),
    *closing(1, "2026-11-02T03:00:00Z"),  # closes 11-01
    *closing(2, "2026-11-03T03:00:00Z"),  # closes 11-02
    *closing(3, "2026-11-04T03:00:00Z"),  # closes 11-03
    stopped("r-1", "ex-1", "2026-11-04T04:00:00Z", at="2026-11-01T12:00:00.5Z"),
    *closing(4, "2026-11-05T03:00:00Z"),  # closes 11-04, with the adjustments
]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    schema = f"billing_store_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection, schema, MIGRATIONS)
        await connection.execute(f'SET search_path TO "{schema}"')
        yield connection
    finally:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


async def project(conn: asyncpg.Connection, events: list[Event]) -> None:
    core, projection = BillingCore(), Projection()
    for event in events:
        rows = projection.prepare(event, core.handle(event))
        if rows is not None:
            async with conn.transaction():
                await projection.write(conn, [rows])


async def test_the_projection_stores_the_core_s_ledger(conn: asyncpg.Connection) -> None:
    await project(conn, LOG)
    ref = reference(encode(e) for e in LOG)
    await assert_ledger_equals(conn, ref, outbox=False)

    adjustments = await conn.fetch(
        "SELECT debit, credit, amount, part FROM ledger_entry WHERE kind = 'adjustment' ORDER BY seq")
    # 2 GPUs × 2.85 USD/h: day 1 loses 10:00-24:00 but 2.5 h (a late stop at 12:00:00.5 leaves 2 h and 0.5 s)
    full_day = 2 * 2_850_000 * 24 * 9 // 10
    assert [(r["debit"], r["credit"], r["part"]) for r in adjustments] == [
        ("provider:hk-1", "renter_charges", 0), ("provider:hk-1", "renter_charges", 1),
        ("provider:hk-1", "renter_charges", 2),
    ]
    assert sorted(r["amount"] for r in adjustments)[1:] == [full_day, full_day]
    last = await conn.fetchrow("SELECT payable_rao, carried_rao, adjustment_usd_micros FROM provider_day "
                               "WHERE billing_day = '2026-11-04'")
    assert last["payable_rao"] == 0 and last["carried_rao"] < 0 and last["adjustment_usd_micros"] < 0


async def refused(conn: asyncpg.Connection, sql: str, *args: Any) -> type[Exception]:
    with pytest.raises(asyncpg.IntegrityConstraintViolationError) as caught:
        async with conn.transaction():
            await conn.execute(sql, *args)
    return type(caught.value)


async def test_constraints_refuse_double_counting_forks_and_negative_payables(conn: asyncpg.Connection) -> None:
    await project(conn, LOG)
    entry = await conn.fetchrow("SELECT * FROM ledger_entry WHERE kind = 'rental_fee' LIMIT 1")
    insert = ("INSERT INTO ledger_entry (day, seq, debit, credit, amount, unit, kind, cause_id, executor_id, part) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
    fields = ["day", "seq", "debit", "credit", "amount", "unit", "kind", "cause_id", "executor_id", "part"]
    row = {k: entry[k] for k in fields}

    def values(**change: Any) -> list[Any]:
        return [{**row, "seq": 999, **change}[k] for k in fields]

    assert await refused(conn, insert, *values()) is asyncpg.UniqueViolationError  # the same entry again
    assert await refused(conn, insert, *values(amount=0)) is asyncpg.CheckViolationError
    assert await refused(conn, insert, *values(amount=-5, cause_id="x")) is asyncpg.CheckViolationError
    assert await refused(conn, insert, *values(credit=row["debit"], cause_id="x")) is asyncpg.CheckViolationError
    assert await refused(conn, insert, *values(unit="tao", cause_id="x")) is asyncpg.CheckViolationError
    assert await refused(conn, insert, *values(day=date(2030, 1, 1), cause_id="x")) \
        is asyncpg.ForeignKeyViolationError  # no entry without its day's statement

    first = await conn.fetchrow("SELECT * FROM day_statement ORDER BY billing_day LIMIT 1")
    assert await refused(  # a second successor of the same hash: the chain cannot fork
        conn,
        "INSERT INTO day_statement (billing_day, event_id, closed_by, tao_usd, alpha_tao, ledger_hash, previous_hash,"
        " entry_count, statement, closed_at) VALUES ('2030-01-01', 'e', 'c', '1', '1', $1, $2, 0, '{}', now())",
        "f" * 64, first["previous_hash"],
    ) is asyncpg.UniqueViolationError

    provider_insert = (
        "INSERT INTO provider_day (billing_day, hotkey, coldkey, emission_rao, rental_fee_usd_micros, forfeited_rao,"
        " forfeited_usd_micros, adjustment_rao, adjustment_usd_micros, payable_rao, carried_rao, slashed_wei)"
        " VALUES ($1, 'hk-9', 'ck-9', 0, 0, 0, 0, 0, 0, $2, $3, 0)"
    )
    day = first["billing_day"]
    assert await refused(conn, provider_insert, day, -1, 0) is asyncpg.CheckViolationError  # negative payable
    assert await refused(conn, provider_insert, day, 0, 5) is asyncpg.CheckViolationError  # a positive "rest"
    assert await refused(conn, provider_insert, day, 3, -3) is asyncpg.CheckViolationError  # both at once
    assert await refused(conn, provider_insert, date(2030, 1, 1), 0, 0) \
        is asyncpg.ForeignKeyViolationError  # no provider row without its day's statement either


async def test_closed_days_are_append_only(conn: asyncpg.Connection) -> None:
    await project(conn, LOG)
    before = await conn.fetchval("SELECT count(*) FROM ledger_entry")
    for table in ("ledger_entry", "provider_day", "day_statement"):
        for sql in (f"UPDATE {table} SET billing_day = billing_day" if table != "ledger_entry"
                    else "UPDATE ledger_entry SET amount = amount + 1",
                    f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                async with conn.transaction():
                    await conn.execute(sql)
    assert await conn.fetchval("SELECT count(*) FROM ledger_entry") == before
    # A new day and then its entries are taken: the check refuses orphans only.
    await conn.execute(
        "INSERT INTO day_statement (billing_day, event_id, closed_by, tao_usd, alpha_tao, ledger_hash, previous_hash,"
        " entry_count, statement, closed_at) SELECT '2030-01-02', 'e2', 'c', '1', '1', $1, ledger_hash, 1, '{}', now()"
        " FROM day_statement ORDER BY billing_day DESC LIMIT 1", "e" * 64)
    await conn.execute(
        "INSERT INTO ledger_entry (day, seq, debit, credit, amount, unit, kind, cause_id) "
        "VALUES ('2030-01-02', 0, 'emission', 'burn', 5, 'rao', 'burn', 'x')")

    trial = await conn.fetch("SELECT unit, balanced FROM trial_balance ORDER BY unit")
    assert [(r["unit"], r["balanced"]) for r in trial] == [("rao", True), ("usd_micros", True)]


async def test_migration_4_sums_the_stored_earnings(database_url: str) -> None:
    """A database written before migration 4 (one `earning` row per event) keeps what it knew, summed."""
    schema = f"billing_store_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection, schema, MIGRATIONS[:3])
        await connection.execute(f'SET search_path TO "{schema}"')
        await connection.executemany(
            """INSERT INTO earning (event_id, causation_id, event_time, hotkey, executor_id, billing_day, kind,
                                    amount_rao, amount_usd_micros, cause_id)
               VALUES ($1, 'c', now(), $2, 'ex', $3::text::date, $4, $5, $6, 'c')""",
            [("e1", "hk-1", "2026-11-01", "emission", 5, None), ("e2", "hk-1", "2026-11-01", "emission", 7, None),
             ("e3", "hk-1", "2026-11-01", "rental_fee", None, 900),
             ("e4", "hk-2", "2026-11-02", "adjustment", -3, None)],
        )
        assert await migrate(connection, schema, MIGRATIONS) == 1
        rows = await connection.fetch("SELECT hotkey, billing_day::text, kind, amount_rao, amount_usd_micros, events "
                                      "FROM earning_day ORDER BY 1, 2, 3")
        assert [tuple(r.values()) for r in rows] == [
            ("hk-1", "2026-11-01", "emission", 12, 0, 2), ("hk-1", "2026-11-01", "rental_fee", 0, 900, 1),
            ("hk-2", "2026-11-02", "adjustment", -3, 0, 1),
        ]
        assert await connection.fetchval("SELECT to_regclass('earning')") is None
    finally:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()
