"""The scoring read model: tables, the projection hook, and the queries the read API runs.

Written by `project`, which the runtime calls for every accepted event inside the transaction that stores it
in the inbox, so the read model is always exactly the state after the last committed event:
- `executor_score`: per executor its listing (hotkey, model, GPU count, price, listed or not, from
  `executor.listed` / `executor.delisted`) and its score and reasons (from `score.updated`; NULL until the
  core first scores it).
- `gpu_portion`: the portion of every model the core keeps that differs from the start table: the last
  `gpu_portion.updated` (every model), a model a `params.updated` adds (its `portion`, else 0 unless already
  kept) and a model first named by a revenue report (0). `portions()` lays these over the start table, which
  is what `ScoringCore.portions` holds.
- `epoch_split`: every `epoch.scored`, its nodes as JSON; "the latest split" is the highest epoch number.
Rao amounts are `numeric` (never truncated) and come back as Python ints.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import asyncpg

from schemas.envelope import Event
from schemas.events import (
    EpochScored,
    ExecutorDelisted,
    ExecutorListed,
    GpuPortionUpdated,
    ParamsUpdated,
    RevenueReported,
    ScoreUpdated,
)
from schemas.values import fmt_decimal, format_time, frac
from services.params import DEFAULT_PORTIONS, Params
from services.scoring.portions import with_models

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE executor_score (
        executor_id       text PRIMARY KEY,
        hotkey            text NOT NULL,
        listed            boolean NOT NULL DEFAULT false,
        gpu_model         text,
        gpu_count         integer,
        price_per_gpu_usd text,
        score             smallint,                    -- NULL: not scored yet
        reasons           jsonb NOT NULL DEFAULT '[]',
        score_event_id    text,                        -- the score.updated that set score and reasons
        scored_at         timestamptz                  -- its event time
    );
    CREATE INDEX executor_score_hotkey ON executor_score (hotkey, executor_id);
    CREATE TABLE gpu_portion (
        model             text PRIMARY KEY,
        portion           text NOT NULL,               -- decimal string
        event_id          text NOT NULL                -- the event that set it
    );
    CREATE TABLE epoch_split (
        epoch             bigint PRIMARY KEY,
        netuid            integer NOT NULL,
        closed_at         timestamptz NOT NULL,
        miner_emission_rao numeric NOT NULL,
        shares            jsonb NOT NULL,              -- {rented, unrented, burn} decimal strings
        burn_rao          numeric NOT NULL,
        nodes             jsonb NOT NULL,              -- the epoch.scored nodes, by executor_id
        event_id          text NOT NULL UNIQUE         -- the epoch.scored event
    );
    """,
)

START_PORTIONS: dict[str, Fraction] = with_models(DEFAULT_PORTIONS, Params().models)
"""What `ScoringCore()` starts from: the table's portions, every model of the default parameters kept."""


# --- the projection (inside the processing transaction) --------------------------------------------------------

async def project(conn: asyncpg.Connection, event: Event, derived: list[Event]) -> None:
    """Apply one accepted input event and what the core derived from it to the read model."""
    d = event.data
    if isinstance(d, ExecutorListed):
        await conn.execute(
            """INSERT INTO executor_score (executor_id, hotkey, listed, gpu_model, gpu_count, price_per_gpu_usd)
               VALUES ($1, $2, true, $3, $4, $5)
               ON CONFLICT (executor_id) DO UPDATE SET hotkey = EXCLUDED.hotkey, listed = true,
                   gpu_model = EXCLUDED.gpu_model, gpu_count = EXCLUDED.gpu_count,
                   price_per_gpu_usd = EXCLUDED.price_per_gpu_usd""",
            d.executor_id, d.hotkey, d.gpu_model, d.gpu_count, d.price_per_gpu_usd,
        )
    elif isinstance(d, ExecutorDelisted):
        await conn.execute("UPDATE executor_score SET listed = false WHERE executor_id = $1", d.executor_id)
    elif isinstance(d, ParamsUpdated) and d.models:
        await _models_added(conn, event.id, d)
    elif isinstance(d, RevenueReported):
        await _keep_at_zero(conn, event.id, d.revenue_usd_by_model)
    for out in derived:
        await _project_derived(conn, out)


async def _models_added(conn: asyncpg.Connection, event_id: str, d: ParamsUpdated) -> None:
    # The core accepted the update, so a `portion` names a new model; a new model without one keeps what
    # revenue reports gave it, else 0. A model of the start table is never new.
    given = {m: fmt_decimal(frac(s.portion)) for m, s in (d.models or {}).items() if s.portion is not None}
    if given:
        await conn.executemany(
            """INSERT INTO gpu_portion (model, portion, event_id) VALUES ($1, $2, $3)
               ON CONFLICT (model) DO UPDATE SET portion = EXCLUDED.portion, event_id = EXCLUDED.event_id""",
            [(m, p, event_id) for m, p in sorted(given.items())],
        )
    await _keep_at_zero(conn, event_id, [m for m in (d.models or {}) if m not in given])


async def _keep_at_zero(conn: asyncpg.Connection, event_id: str, models: Any) -> None:
    fresh = sorted(m for m in models if m not in START_PORTIONS)
    if fresh:
        await conn.executemany(
            "INSERT INTO gpu_portion (model, portion, event_id) VALUES ($1, '0', $2) ON CONFLICT (model) DO NOTHING",
            [(m, event_id) for m in fresh],
        )


async def _project_derived(conn: asyncpg.Connection, out: Event) -> None:
    d = out.data
    if isinstance(d, ScoreUpdated):
        await conn.execute(
            """INSERT INTO executor_score (executor_id, hotkey, score, reasons, score_event_id, scored_at)
               VALUES ($1, $2, $3, $4::jsonb, $5, $6)
               ON CONFLICT (executor_id) DO UPDATE SET hotkey = EXCLUDED.hotkey, score = EXCLUDED.score,
                   reasons = EXCLUDED.reasons, score_event_id = EXCLUDED.score_event_id,
                   scored_at = EXCLUDED.scored_at""",
            d.executor_id, d.hotkey, d.score, json.dumps(d.reasons), out.id, out.time,
        )
    elif isinstance(d, GpuPortionUpdated):
        await conn.executemany(
            """INSERT INTO gpu_portion (model, portion, event_id) VALUES ($1, $2, $3)
               ON CONFLICT (model) DO UPDATE SET portion = EXCLUDED.portion, event_id = EXCLUDED.event_id""",
            [(m, p, out.id) for m, p in sorted(d.portions.items())],
        )
    elif isinstance(d, EpochScored):
        body = d.model_dump(mode="json")
        await conn.execute(
            """INSERT INTO epoch_split (epoch, netuid, closed_at, miner_emission_rao, shares, burn_rao, nodes,
                                        event_id)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8)""",
            d.epoch, d.netuid, d.closed_at, Decimal(d.miner_emission_rao), json.dumps(body["shares"]),
            Decimal(d.burn_rao), json.dumps(body["nodes"]), out.id,
        )


# --- the queries of the read API ------------------------------------------------------------------------------

def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _split_of(row: asyncpg.Record) -> dict[str, Any]:
    """An `epoch_split` row as the `epoch.scored` data (plus its event id)."""
    return {
        "netuid": row["netuid"],
        "epoch": row["epoch"],
        "closed_at": _time(row["closed_at"]),
        "miner_emission_rao": int(row["miner_emission_rao"]),
        "shares": json.loads(row["shares"]),
        "nodes": json.loads(row["nodes"]),
        "burn_rao": int(row["burn_rao"]),
        "event_id": row["event_id"],
    }


async def split(conn: asyncpg.Connection, epoch: int | None = None) -> dict[str, Any] | None:
    """The split of `epoch`, or the latest (highest epoch) one; None when there is none."""
    columns = "epoch, netuid, closed_at, miner_emission_rao, shares, burn_rao, nodes, event_id"
    if epoch is None:
        row = await conn.fetchrow(f"SELECT {columns} FROM epoch_split ORDER BY epoch DESC LIMIT 1")
    else:
        row = await conn.fetchrow(f"SELECT {columns} FROM epoch_split WHERE epoch = $1", epoch)
    return None if row is None else _split_of(row)


def scored(split_data: dict[str, Any]) -> EpochScored:
    """The stored split as the typed `epoch.scored` data (for `services.scoring.weights`)."""
    return EpochScored.model_validate({k: v for k, v in split_data.items() if k != "event_id"})


async def portions(conn: asyncpg.Connection) -> dict[str, str]:
    """The current portion of every kept model, as decimal strings, by model name."""
    out = {m: fmt_decimal(p) for m, p in START_PORTIONS.items()}
    out.update({r["model"]: r["portion"] for r in await conn.fetch("SELECT model, portion FROM gpu_portion")})
    return dict(sorted(out.items()))


_EXECUTOR_COLUMNS = "executor_id, hotkey, listed, gpu_model, gpu_count, price_per_gpu_usd, score, reasons, scored_at"


async def executors(
    conn: asyncpg.Connection, *, executor_id: str | None = None, hotkey: str | None = None,
    limit: int = 1000, offset: int = 0,
) -> list[dict[str, Any]]:
    """Executors (one by id, a hotkey's, or all; by executor_id) with score, reasons and their node in the
    latest split: pool, incentive, alpha_rao and the reason it earns nothing (`last_split` is None before
    the first split; `taking_part` is false when the executor was not in it)."""
    if executor_id is not None:
        rows = await conn.fetch(f"SELECT {_EXECUTOR_COLUMNS} FROM executor_score WHERE executor_id = $1",
                                executor_id)
    elif hotkey is not None:
        rows = await conn.fetch(
            f"SELECT {_EXECUTOR_COLUMNS} FROM executor_score WHERE hotkey = $1 ORDER BY executor_id "
            "LIMIT $2 OFFSET $3", hotkey, limit, offset)
    else:
        rows = await conn.fetch(
            f"SELECT {_EXECUTOR_COLUMNS} FROM executor_score ORDER BY executor_id LIMIT $1 OFFSET $2",
            limit, offset)
    if not rows:
        return []
    latest = await conn.fetchrow("SELECT epoch, closed_at FROM epoch_split ORDER BY epoch DESC LIMIT 1")
    nodes: dict[str, dict[str, Any]] = {}
    if latest is not None:
        found = await conn.fetch(
            """SELECT n.value FROM epoch_split s, jsonb_array_elements(s.nodes) n(value)
               WHERE s.epoch = $1 AND n.value->>'executor_id' = ANY($2::text[])""",
            latest["epoch"], [r["executor_id"] for r in rows],
        )
        for r in found:
            node = json.loads(r["value"])
            nodes[node["executor_id"]] = node
    return [_executor_view(r, latest, nodes.get(r["executor_id"])) for r in rows]


def _executor_view(
    row: asyncpg.Record, latest: asyncpg.Record | None, node: dict[str, Any] | None
) -> dict[str, Any]:
    last_split: dict[str, Any] | None = None
    if latest is not None:
        last_split = {
            "epoch": latest["epoch"],
            "closed_at": _time(latest["closed_at"]),
            "taking_part": node is not None,
            "pool": node["pool"] if node else None,
            "incentive": node["incentive"] if node else "0",
            "alpha_rao": node["alpha_rao"] if node else 0,
            "reason": node["reason"] if node else None,
        }
    return {
        "executor_id": row["executor_id"],
        "hotkey": row["hotkey"],
        "listed": row["listed"],
        "gpu_model": row["gpu_model"],
        "gpu_count": row["gpu_count"],
        "price_per_gpu_usd": row["price_per_gpu_usd"],
        "score": row["score"],
        "reasons": json.loads(row["reasons"]),
        "scored_at": _time(row["scored_at"]),
        "last_split": last_split,
    }
