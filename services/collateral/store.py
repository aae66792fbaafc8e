"""PostgreSQL for the collateral service: the log projection, the watcher's checkpoint and anchors, the
trustee's slash plans. Tables live in the service's schema (the pool's search_path, see services.runtime.db).

- `collateral_logs`: one row per contract log ever read, keyed by its event id `chain_id:tx_hash:log_index`;
  `retracted` marks a log a reorg removed (its event is not re-emitted; see watcher.py). The view
  `collateral_executors` folds the live rows into collateral per executor.
- `collateral_anchors`: (block number, hash) pairs the watcher walks back over on a reorg.
- the checkpoint: `service_state` key `collateral.checkpoint:<chain_id>:<contract>`.
- `collateral_slash_plans`: one row per `collateral.slash_requested`, written with the event (projection
  hook), then advanced by the trustee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import asyncpg

from schemas.envelope import Event
from schemas.events import CollateralSlashRequested
from services.collateral.trustee import SlashPlan
from services.collateral.watcher import Checkpoint, ObservedLog, ReclaimInfo
from services.runtime.db import get_state, set_state
from services.runtime.outbox import write_events

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE collateral_logs (
        event_id           text PRIMARY KEY,
        event_type         text NOT NULL,
        executor_id        text NOT NULL,
        miner_evm_address  text NOT NULL,
        amount_wei         numeric(78, 0) NOT NULL,
        url                text,
        reclaim_request_id numeric(78, 0),
        chain_id           bigint NOT NULL,
        tx_hash            text NOT NULL,
        block_number       bigint NOT NULL,
        block_hash         text NOT NULL,
        log_index          integer NOT NULL,
        time               timestamptz NOT NULL,
        retracted          boolean NOT NULL DEFAULT false,
        retracted_at       timestamptz,
        seen_at            timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX collateral_logs_executor ON collateral_logs (executor_id, block_number, log_index);
    CREATE INDEX collateral_logs_block ON collateral_logs (block_number) WHERE NOT retracted;
    CREATE INDEX collateral_logs_reclaim ON collateral_logs (reclaim_request_id) WHERE reclaim_request_id IS NOT NULL;
    CREATE TABLE collateral_anchors (
        block_number bigint PRIMARY KEY,
        block_hash   text NOT NULL
    );
    CREATE VIEW collateral_executors AS
    WITH live AS (SELECT * FROM collateral_logs WHERE NOT retracted),
         closed AS (SELECT reclaim_request_id FROM live
                    WHERE event_type IN ('collateral.reclaimed', 'collateral.reclaim_denied'))
    SELECT executor_id,
           (array_agg(miner_evm_address ORDER BY block_number DESC, log_index DESC)
              FILTER (WHERE event_type = 'collateral.deposited'))[1] AS miner_evm_address,
           COALESCE(SUM(amount_wei) FILTER (WHERE event_type = 'collateral.deposited'), 0) AS deposited_wei,
           COALESCE(SUM(amount_wei) FILTER (WHERE event_type = 'collateral.reclaimed'), 0) AS reclaimed_wei,
           COALESCE(SUM(amount_wei) FILTER (WHERE event_type = 'collateral.slashed'), 0) AS slashed_wei,
           COALESCE(SUM(amount_wei) FILTER (WHERE event_type = 'collateral.reclaim_started'
                    AND reclaim_request_id NOT IN (SELECT reclaim_request_id FROM closed)), 0)
             AS pending_reclaim_wei
    FROM live GROUP BY executor_id;
    CREATE TABLE collateral_slash_plans (
        request_id     text PRIMARY KEY,
        executor_id    text NOT NULL,
        amount_wei     numeric(78, 0) NOT NULL,
        reason         text NOT NULL,
        rental_id      text,
        incident_id    text,
        status         text NOT NULL DEFAULT 'planned',
        from_block     bigint,
        tx_hash        text,
        raw_tx         text,
        slashed_wei    numeric(78, 0),
        landed_tx_hash text,
        attempts       integer NOT NULL DEFAULT 0,
        detail         text,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX collateral_slash_plans_open ON collateral_slash_plans (created_at)
        WHERE status IN ('planned', 'sent');
    """,
)

KEEP_ANCHORS = 1024
_PLAN_FIELDS = [f.name for f in fields(SlashPlan)]


def _plan(row: asyncpg.Record) -> SlashPlan:
    values: dict[str, Any] = {name: row[name] for name in _PLAN_FIELDS}
    for name in ("amount_wei", "slashed_wei"):
        if values[name] is not None:
            values[name] = int(values[name])
    return SlashPlan(**values)


async def insert_plan(conn: asyncpg.Connection, plan: SlashPlan,
                      request: CollateralSlashRequested | None = None) -> None:
    await conn.execute(
        """INSERT INTO collateral_slash_plans (request_id, executor_id, amount_wei, reason, rental_id, incident_id)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id) DO NOTHING""",
        plan.request_id, plan.executor_id, plan.amount_wei, plan.reason,
        None if request is None else request.rental_id, None if request is None else request.incident_id,
    )


async def project(conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
    """The runtime's projection hook: a slash request is planned in the transaction that decides it."""
    for e in derived:
        if isinstance(e.data, CollateralSlashRequested):
            await insert_plan(conn, SlashPlan.of(e), e.data)


class PgStore:
    """`WatchStore` and `PlanStore` on PostgreSQL. `topic_prefix` and `on_publish` come from the runtime."""

    def __init__(self, pool: asyncpg.Pool, chain_id: int, contract_address: str, *, topic_prefix: str = "",
                 on_publish: Callable[[], None] | None = None) -> None:
        self.pool = pool
        self.state_key = f"collateral.checkpoint:{chain_id}:{contract_address.lower()}"
        self.topic_prefix = topic_prefix
        self.on_publish = on_publish

    # --- WatchStore ---------------------------------------------------------------------------------------

    async def checkpoint(self) -> Checkpoint | None:
        async with self.pool.acquire() as conn:
            value = await get_state(conn, self.state_key)
        return None if value is None else Checkpoint(int(value["block_number"]), str(value["block_hash"]))

    async def anchors(self) -> list[Checkpoint]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT block_number, block_hash FROM collateral_anchors ORDER BY block_number DESC")
        return [Checkpoint(r["block_number"], r["block_hash"]) for r in rows]

    async def reclaim(self, reclaim_request_id: int) -> ReclaimInfo | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT executor_id, miner_evm_address, amount_wei FROM collateral_logs
                   WHERE event_type = 'collateral.reclaim_started' AND reclaim_request_id = $1 AND NOT retracted""",
                reclaim_request_id,
            )
        return None if row is None else ReclaimInfo(row[0], row[1], int(row[2]))

    async def commit(self, logs: list[ObservedLog], checkpoint: Checkpoint) -> list[Event]:
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [o.event.id for o in logs]
            existing = {r["event_id"]: r["retracted"] for r in await conn.fetch(
                "SELECT event_id, retracted FROM collateral_logs WHERE event_id = ANY($1::text[])", ids)}
            new = [o for o in logs if o.event.id not in existing]
            back = [o for o in logs if existing.get(o.event.id) is True]
            if new:
                await conn.executemany(
                    """INSERT INTO collateral_logs (event_id, event_type, executor_id, miner_evm_address, amount_wei,
                           url, reclaim_request_id, chain_id, tx_hash, block_number, block_hash, log_index, time)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
                    [(o.event.id, o.event.type, o.data.executor_id, o.data.miner_evm_address, o.data.amount_wei,
                      o.data.url, o.data.reclaim_request_id, o.data.chain_id, o.data.tx_hash, o.data.block_number,
                      o.block_hash, o.data.log_index, o.event.time) for o in new],
                )
                await write_events(conn, [o.event for o in new], self.topic_prefix)
            if back:  # read again on the new chain: live again, not published again
                await conn.executemany(
                    """UPDATE collateral_logs SET retracted = false, retracted_at = NULL, block_number = $2,
                           block_hash = $3 WHERE event_id = $1""",
                    [(o.event.id, o.data.block_number, o.block_hash) for o in back],
                )
            anchors = {o.data.block_number: o.block_hash for o in logs}
            anchors[checkpoint.block_number] = checkpoint.block_hash
            await conn.executemany(
                """INSERT INTO collateral_anchors (block_number, block_hash) VALUES ($1, $2)
                   ON CONFLICT (block_number) DO UPDATE SET block_hash = EXCLUDED.block_hash""",
                list(anchors.items()),
            )
            await conn.execute(
                """DELETE FROM collateral_anchors WHERE block_number < (
                       SELECT block_number FROM collateral_anchors ORDER BY block_number DESC OFFSET $1 LIMIT 1)""",
                KEEP_ANCHORS,
            )
            await set_state(conn, self.state_key,
                            {"block_number": checkpoint.block_number, "block_hash": checkpoint.block_hash})
        if new and self.on_publish is not None:
            self.on_publish()
        return [o.event for o in new]

    async def rewind(self, anchor: Checkpoint | None) -> list[str]:
        floor = -1 if anchor is None else anchor.block_number
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE collateral_logs SET retracted = true, retracted_at = now()
                   WHERE NOT retracted AND block_number > $1 RETURNING event_id""", floor)
            await conn.execute("DELETE FROM collateral_anchors WHERE block_number > $1", floor)
            if anchor is None:
                await conn.execute("DELETE FROM service_state WHERE key = $1", self.state_key)
            else:
                await set_state(conn, self.state_key,
                                {"block_number": anchor.block_number, "block_hash": anchor.block_hash})
        return sorted(r["event_id"] for r in rows)

    # --- PlanStore ----------------------------------------------------------------------------------------

    async def plan(self, plan: SlashPlan) -> SlashPlan:
        async with self.pool.acquire() as conn:
            await insert_plan(conn, plan)
            row = await conn.fetchrow("SELECT * FROM collateral_slash_plans WHERE request_id = $1", plan.request_id)
        return _plan(row)

    async def update(self, plan: SlashPlan) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE collateral_slash_plans SET status = $2, from_block = $3, tx_hash = $4, raw_tx = $5,
                       slashed_wei = $6, landed_tx_hash = $7, attempts = $8, detail = $9, updated_at = now()
                   WHERE request_id = $1""",
                plan.request_id, plan.status, plan.from_block, plan.tx_hash, plan.raw_tx, plan.slashed_wei,
                plan.landed_tx_hash, plan.attempts, plan.detail,
            )

    async def open_plans(self) -> list[SlashPlan]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT * FROM collateral_slash_plans WHERE status IN ('planned', 'sent')
                   ORDER BY created_at, request_id""")
        return [_plan(r) for r in rows]
