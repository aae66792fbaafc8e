"""Settlement in PostgreSQL: the planning read model (written by the projection hook, in the processing
transaction of the event that caused it) and `PgExecutionStore`, the executor's durable state.

Tables (schema `settlement`):
- `statement` / `statement_line`: the billing `day.closed` statements settlement consumed (the ledger side of
  the reconciliation: Σ payable_rao per day and per coldkey);
- `payout_run`: one row per run (the `epoch.closed` that triggered it);
- `payout`: one row per `payout.planned` (state planned → submitting → confirmed | held | failed), with the
  chain facts (extrinsic hash, block) once known;
- `payout_day`: (coldkey, billing_day) → payout_id, UNIQUE: a provider's day can be planned into one payout
  only, so no plan can pay a day twice;
- `payout_batch`: the batch extrinsics with every signed attempt's hash and the nonce (the executor's intents);
- `deferred_carry`: each `payout.deferred` (a carry under min_payout_rao at a run).

`PgExecutionStore.commit` writes a `Change` (payout rows, batch rows, and the payout.* events through the
runtime's outbox) in ONE transaction, then wakes the relay: what is sent is stored first, and every event is
published at least once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import asyncpg

from schemas.envelope import Event
from schemas.events import DayClosed, PayoutDeferred, PayoutPlanned
from schemas.values import day_of
from services.runtime.outbox import write_events
from services.settlement.chain import Transfer
from services.settlement.execution import (
    BatchRecord,
    BatchState,
    Change,
    PayoutRecord,
    PayoutState,
    PlannedPayout,
)
from services.settlement.execution_store import COMMITTED

PLANNED_CHANNEL = "sn51_payouts_planned_"  # + schema: NOTIFY after a commit that planned payouts

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE statement (
        billing_day  date PRIMARY KEY,
        event_id     text NOT NULL,                         -- the day.closed consumed
        ledger_hash  text NOT NULL,
        payable_rao  bigint NOT NULL CHECK (payable_rao >= 0),  -- Σ payable_rao of its providers
        providers    integer NOT NULL CHECK (providers >= 0)
    );
    CREATE TABLE statement_line (
        billing_day  date NOT NULL REFERENCES statement (billing_day),
        hotkey       text NOT NULL,
        coldkey      text NOT NULL,
        payable_rao  bigint NOT NULL CHECK (payable_rao >= 0),
        PRIMARY KEY (billing_day, hotkey)
    );
    CREATE INDEX statement_line_coldkey ON statement_line (coldkey, billing_day);

    CREATE TABLE payout_run (
        run_id        text PRIMARY KEY,                     -- the epoch.closed that triggered the run
        run_day       date NOT NULL UNIQUE,                 -- T: one run per UTC day
        triggered_at  timestamptz NOT NULL,
        planned       integer NOT NULL CHECK (planned >= 0),
        planned_rao   bigint NOT NULL CHECK (planned_rao >= 0),
        deferred      integer NOT NULL CHECK (deferred >= 0),
        deferred_rao  bigint NOT NULL CHECK (deferred_rao >= 0)
    );

    CREATE TABLE payout (
        payout_id      text PRIMARY KEY,
        coldkey        text NOT NULL,
        run_id         text NOT NULL,
        run_day        date NOT NULL,
        billing_days   date[] NOT NULL CHECK (cardinality(billing_days) > 0),
        amount_rao     bigint NOT NULL CHECK (amount_rao > 0),
        hotkeys        text[] NOT NULL,
        batch          integer NOT NULL CHECK (batch >= 0),
        event_id       text NOT NULL UNIQUE,                -- the payout.planned
        planned_at     timestamptz NOT NULL,                -- its event time (the trigger's)
        state          text NOT NULL CHECK (state IN ('planned', 'submitting', 'confirmed', 'held', 'failed')),
        batch_id       text,
        isolated       boolean NOT NULL DEFAULT false,
        failures       integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
        extrinsic_hash text,
        block_hash     text,
        block_number   bigint,
        reason         text,
        updated_at     timestamptz NOT NULL DEFAULT now(),
        UNIQUE (coldkey, run_day),
        CHECK (state <> 'confirmed' OR (extrinsic_hash IS NOT NULL AND block_hash IS NOT NULL
                                        AND block_number IS NOT NULL)),
        CHECK (state <> 'submitting' OR (batch_id IS NOT NULL AND extrinsic_hash IS NOT NULL)),
        CHECK (state NOT IN ('held', 'failed') OR reason IS NOT NULL)
    );
    CREATE INDEX payout_pending ON payout (state) WHERE state IN ('planned', 'submitting');
    CREATE INDEX payout_run_day ON payout (run_day);

    CREATE TABLE payout_day (
        coldkey      text NOT NULL,
        billing_day  date NOT NULL,
        payout_id    text NOT NULL REFERENCES payout (payout_id),
        PRIMARY KEY (coldkey, billing_day)                  -- a provider's day is planned once
    );
    CREATE INDEX payout_day_payout ON payout_day (payout_id);

    CREATE TABLE payout_batch (
        batch_id       text PRIMARY KEY,
        run_id         text NOT NULL,
        payout_ids     text[] NOT NULL,
        transfers      jsonb NOT NULL,                      -- [[dest_coldkey, amount_rao], ...]
        nonce          bigint NOT NULL CHECK (nonce >= 0),
        from_block     bigint NOT NULL,
        hashes         text[] NOT NULL,                     -- every signed attempt, stored before it was sent
        state          text NOT NULL CHECK (state IN ('intent', 'landed', 'failed')),
        extrinsic_hash text,
        block_hash     text,
        block_number   bigint,
        reason         text,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now(),
        CHECK (state <> 'landed' OR (extrinsic_hash IS NOT NULL AND block_number IS NOT NULL))
    );
    CREATE INDEX payout_batch_open ON payout_batch (created_at) WHERE state = 'intent';

    CREATE TABLE deferred_carry (
        payout_id    text PRIMARY KEY,                      -- the id the payout would have had in that run
        coldkey      text NOT NULL,
        run_id       text NOT NULL,
        run_day      date NOT NULL,
        billing_days date[] NOT NULL,
        amount_rao   bigint NOT NULL CHECK (amount_rao > 0),
        reason       text NOT NULL,
        event_id     text NOT NULL UNIQUE
    );
    """,
)


# --- the projection (processing transaction) -----------------------------------------------------------------


async def project(conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
    """Settlement's read model from one accepted event and what the core derived from it."""
    if isinstance(event.data, DayClosed):
        await store_statement(conn, event.id, event.data)
    planned = [e for e in derived if isinstance(e.data, PayoutPlanned)]
    deferred = [e for e in derived if isinstance(e.data, PayoutDeferred)]
    if not planned and not deferred:
        return
    await store_run(conn, planned, deferred)
    if planned:
        await store_planned(conn, [PlannedPayout.from_event(e) for e in planned])
        await conn.execute("SELECT pg_notify($1 || current_schema(), '')", PLANNED_CHANNEL)
    if deferred:
        await store_deferred(conn, deferred)


async def store_statement(conn: asyncpg.Connection, event_id: str, d: DayClosed) -> None:
    """A consumed statement (a re-statement of a day replaces it, as the planning core does)."""
    day = date.fromisoformat(d.billing_day)
    await conn.execute("DELETE FROM statement_line WHERE billing_day = $1", day)
    total = sum(p.payable_rao for p in d.providers)
    await conn.execute(
        """INSERT INTO statement (billing_day, event_id, ledger_hash, payable_rao, providers)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (billing_day) DO UPDATE SET event_id = EXCLUDED.event_id, ledger_hash = EXCLUDED.ledger_hash,
               payable_rao = EXCLUDED.payable_rao, providers = EXCLUDED.providers""",
        day, event_id, d.ledger_hash, total, len(d.providers),
    )
    await conn.executemany(
        "INSERT INTO statement_line (billing_day, hotkey, coldkey, payable_rao) VALUES ($1, $2, $3, $4)",
        [(day, p.hotkey, p.coldkey, p.payable_rao) for p in d.providers],
    )


async def store_run(conn: asyncpg.Connection, planned: list[Event], deferred: list[Event]) -> None:
    """One row per run among these events (one event can release several pending runs at once)."""
    runs: dict[str, list[Event]] = {}
    for e in planned + deferred:
        runs.setdefault(e.causation_id or e.id, []).append(e)
    rows: list[tuple[Any, ...]] = []
    for run_id, events in runs.items():
        amounts = [e.data.amount_rao for e in events if isinstance(e.data, PayoutPlanned)]
        carried = [e.data.amount_rao for e in events if isinstance(e.data, PayoutDeferred)]
        t = events[0].time
        rows.append((run_id, day_of(t), t, len(amounts), sum(amounts), len(carried), sum(carried)))
    await conn.executemany(
        """INSERT INTO payout_run (run_id, run_day, triggered_at, planned, planned_rao, deferred, deferred_rao)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id) DO NOTHING""",
        rows,
    )


async def store_planned(conn: asyncpg.Connection, payouts: Sequence[PlannedPayout]) -> None:
    """Planned payouts in state planned, with their (coldkey, day) claims; known payout ids are left alone."""
    await conn.executemany(
        """INSERT INTO payout (payout_id, coldkey, run_id, run_day, billing_days, amount_rao, hotkeys, batch,
                               event_id, planned_at, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'planned') ON CONFLICT (payout_id) DO NOTHING""",
        [(p.payout_id, p.coldkey, p.run_id, date.fromisoformat(p.run_day),
          [date.fromisoformat(d) for d in p.billing_days], p.amount_rao, list(p.hotkeys), p.batch, p.event_id, p.time)
         for p in payouts],
    )
    claims = [(p.coldkey, date.fromisoformat(d), p.payout_id) for p in payouts for d in p.billing_days]
    await conn.executemany(
        "INSERT INTO payout_day (coldkey, billing_day, payout_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", claims
    )
    owned = await conn.fetchval(
        "SELECT count(*) FROM payout_day WHERE payout_id = ANY($1::text[])", [p.payout_id for p in payouts]
    )
    if owned != len(claims):
        raise RuntimeError("a planned payout claims a (coldkey, billing day) that another payout already pays")


async def store_deferred(conn: asyncpg.Connection, deferred: list[Event]) -> None:
    rows: list[tuple[Any, ...]] = []
    for e in deferred:
        d = e.data
        assert isinstance(d, PayoutDeferred)
        rows.append((d.payout_id, d.coldkey, e.causation_id or e.id, day_of(e.time),
                     [date.fromisoformat(x) for x in d.billing_days], d.amount_rao, d.reason, e.id))
    await conn.executemany(
        """INSERT INTO deferred_carry (payout_id, coldkey, run_id, run_day, billing_days, amount_rao, reason, event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (payout_id) DO NOTHING""",
        rows,
    )


# --- the executor's store ------------------------------------------------------------------------------------

PAYOUT_COLUMNS = (
    "payout_id, coldkey, run_id, run_day, billing_days, amount_rao, hotkeys, batch, event_id, planned_at, state, "
    "batch_id, isolated, failures, extrinsic_hash, block_hash, block_number, reason"
)
BATCH_COLUMNS = (
    "batch_id, run_id, payout_ids, transfers, nonce, from_block, hashes, state, extrinsic_hash, block_hash, "
    "block_number, reason"
)


def payout_record(r: asyncpg.Record) -> PayoutRecord:
    planned = PlannedPayout(
        payout_id=r["payout_id"],
        coldkey=r["coldkey"],
        billing_days=tuple(d.isoformat() for d in r["billing_days"]),
        amount_rao=r["amount_rao"],
        hotkeys=tuple(r["hotkeys"]),
        batch=r["batch"],
        run_id=r["run_id"],
        run_day=r["run_day"].isoformat(),
        event_id=r["event_id"],
        time=r["planned_at"],
    )
    return PayoutRecord(
        planned,
        state=PayoutState(r["state"]),
        batch_id=r["batch_id"],
        isolated=r["isolated"],
        failures=r["failures"],
        extrinsic_hash=r["extrinsic_hash"],
        block_hash=r["block_hash"],
        block_number=r["block_number"],
        reason=r["reason"],
    )


def batch_record(r: asyncpg.Record) -> BatchRecord:
    return BatchRecord(
        batch_id=r["batch_id"],
        run_id=r["run_id"],
        payout_ids=tuple(r["payout_ids"]),
        transfers=tuple(Transfer(ck, amount) for ck, amount in json.loads(r["transfers"])),
        nonce=r["nonce"],
        from_block=r["from_block"],
        hashes=tuple(r["hashes"]),
        state=BatchState(r["state"]),
        extrinsic_hash=r["extrinsic_hash"],
        block_hash=r["block_hash"],
        block_number=r["block_number"],
        reason=r["reason"],
    )


class PgExecutionStore:
    """The executor's `ExecutionStore` on the service's pool (search_path: its schema)."""

    def __init__(self, pool: asyncpg.Pool, topic_prefix: str = "", wake_relay: Callable[[], None] = lambda: None):
        self.pool = pool
        self.topic_prefix = topic_prefix
        self.wake_relay = wake_relay

    async def add_planned(self, payouts: Sequence[PlannedPayout]) -> None:
        if not payouts:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await store_planned(conn, payouts)

    async def commit(self, change: Change) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if change.payouts:
                await conn.executemany(
                    """UPDATE payout SET state = $2, batch_id = $3, isolated = $4, failures = $5,
                                  extrinsic_hash = $6, block_hash = $7, block_number = $8, reason = $9,
                                  updated_at = now()
                           WHERE payout_id = $1""",
                    [(r.payout_id, r.state.value, r.batch_id, r.isolated, r.failures, r.extrinsic_hash,
                      r.block_hash, r.block_number, r.reason) for r in change.payouts],
                )
                known = await conn.fetchval(
                    "SELECT count(*) FROM payout WHERE payout_id = ANY($1::text[])",
                    [r.payout_id for r in change.payouts],
                )
                if known != len({r.payout_id for r in change.payouts}):
                    raise RuntimeError("the executor changed a payout that was never planned")
            if change.batches:
                await conn.executemany(
                    f"""INSERT INTO payout_batch ({BATCH_COLUMNS})
                            VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)
                            ON CONFLICT (batch_id) DO UPDATE SET nonce = EXCLUDED.nonce, hashes = EXCLUDED.hashes,
                                state = EXCLUDED.state, extrinsic_hash = EXCLUDED.extrinsic_hash,
                                block_hash = EXCLUDED.block_hash, block_number = EXCLUDED.block_number,
                                reason = EXCLUDED.reason, updated_at = now()""",
                    [(b.batch_id, b.run_id, list(b.payout_ids),
                      json.dumps([[t.dest_coldkey, t.amount_rao] for t in b.transfers]), b.nonce, b.from_block,
                      list(b.hashes), b.state.value, b.extrinsic_hash, b.block_hash, b.block_number, b.reason)
                     for b in change.batches],
                )
            await write_events(conn, change.events, self.topic_prefix)
        if change.events:
            self.wake_relay()

    async def payouts(self, payout_ids: Sequence[str]) -> list[PayoutRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {PAYOUT_COLUMNS} FROM payout WHERE payout_id = ANY($1::text[])", list(payout_ids)
            )
        by_id = {r["payout_id"]: payout_record(r) for r in rows}
        return [by_id[i] for i in payout_ids if i in by_id]

    async def payouts_in(self, state: PayoutState) -> list[PayoutRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {PAYOUT_COLUMNS} FROM payout WHERE state = $1 ORDER BY planned_at, run_id, batch, payout_id",
                state.value,
            )
        return [payout_record(r) for r in rows]

    async def open_batches(self) -> list[BatchRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {BATCH_COLUMNS} FROM payout_batch WHERE state = 'intent' ORDER BY created_at, batch_id"
            )
        return [batch_record(r) for r in rows]

    async def amount_committed(self, run_day: str) -> int:
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(
                "SELECT coalesce(sum(amount_rao), 0)::bigint FROM payout WHERE run_day = $1 AND state = ANY($2)",
                date.fromisoformat(run_day), [s.value for s in COMMITTED],
            )
        return int(total)
