"""PostgreSQL: one schema per service, the shared tables, a tiny migration runner, the single-writer lock.

Layout (documented choice): every service owns a PostgreSQL schema named after it (`scoring`, `billing`, ...).
Its pool sets `search_path` to that schema, so the shared tables (`inbox`, `outbox`, `dead_letter`,
`service_state`) and the service's own tables are written by their plain names and never collide between
services sharing one database. Migrations are SQL strings applied once each, in order, recorded in
`schema_migrations` by (scope, version) with a checksum; editing an applied migration is an error, add a new
one instead. The runtime's tables are scope "runtime", a service's own SQL is scope "service".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.runtime.redact import redact_url


def lz4_or_uncompressed(*columns: tuple[str, str]) -> str:
    """SQL that stores large values of these (table, column)s with lz4 compression, or uncompressed where the
    server has no lz4 (`feature_not_supported`), instead of the slow default (pglz)."""
    lz4 = " ".join(f"ALTER TABLE {t} ALTER COLUMN {c} SET COMPRESSION lz4;" for t, c in columns)
    plain = " ".join(f"ALTER TABLE {t} ALTER COLUMN {c} SET STORAGE EXTERNAL;" for t, c in columns)
    return f"DO $$ BEGIN {lz4} EXCEPTION WHEN feature_not_supported THEN {plain} END $$;"


RUNTIME_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE inbox (
        seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- processing order: the event log
        event_id      text NOT NULL UNIQUE,
        event_type    text NOT NULL,
        content_hash  text NOT NULL,
        raw           bytea NOT NULL,                                    -- the original message bytes
        source_topic  text NOT NULL,
        source_partition integer NOT NULL,
        source_offset bigint NOT NULL,
        processed_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE outbox (
        seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- publication order
        event_id      text NOT NULL UNIQUE,                              -- deterministic: replays collide
        event_type    text NOT NULL,
        topic         text NOT NULL,
        key           bytea,
        value         bytea NOT NULL,
        headers       jsonb NOT NULL DEFAULT '[]',
        created_at    timestamptz NOT NULL DEFAULT now(),
        published_at  timestamptz
    );
    CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
    CREATE TABLE dead_letter (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        code          text NOT NULL,
        reason        text NOT NULL,
        event_id      text,
        event_type    text,
        raw           bytea NOT NULL,
        source_topic  text NOT NULL,
        source_partition integer NOT NULL,
        source_offset bigint NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        UNIQUE (source_topic, source_partition, source_offset)          -- a redelivery refuses once
    );
    CREATE TABLE service_state (
        key           text PRIMARY KEY,
        value         jsonb NOT NULL,
        updated_at    timestamptz NOT NULL DEFAULT now()
    );
    """,
    # The relay keeps a position instead of marking each published row (one row updated per published batch,
    # not one per event: the marks were the costliest statement of a busy service). Every outbox row with
    # seq <= published_seq is published. It is enough because writers take the outbox lock
    # (`services.runtime.outbox.write_rows`) and hold it to their commit: rows become visible in seq order.
    """
    CREATE TABLE relay_position (
        one            boolean PRIMARY KEY DEFAULT true CHECK (one),
        published_seq  bigint NOT NULL CHECK (published_seq >= 0),
        published_at   timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO relay_position (published_seq)
    SELECT coalesce((SELECT min(seq) - 1 FROM outbox WHERE published_at IS NULL), (SELECT max(seq) FROM outbox), 0);
    DROP INDEX outbox_unpublished;
    ALTER TABLE outbox DROP COLUMN published_at;
    CREATE VIEW outbox_pending AS  -- the position as a scalar subquery: an index range scan, not a join
    SELECT * FROM outbox WHERE seq > (SELECT published_seq FROM relay_position);
    """,
    # Message bytes are stored as they came: an epoch split is ~180 kB, and PostgreSQL's default compression
    # (pglz) of such values took two thirds of the inbox's COPY time. lz4 is several times faster; a server
    # built without it stores them uncompressed.
    lz4_or_uncompressed(("inbox", "raw"), ("outbox", "value"), ("dead_letter", "raw")),
)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def schema_name(service: str) -> str:
    """The PostgreSQL schema of a service: its name, lower case, `-` as `_`."""
    name = service.lower().replace("-", "_")
    if not _NAME.match(name):
        raise ValueError(f"service name {service!r} is not usable as a PostgreSQL schema name")
    return name


SERVER_SETTINGS = {
    # Plan every statement for its parameters. asyncpg prepares each statement once per connection, and after
    # five executions PostgreSQL may keep a generic plan made for the table as it was then: the inbox lookup
    # (`event_id = ANY($1)`) planned on an empty inbox stayed a sequential scan comparing every row with every
    # id of the batch (0.15-0.3 s a batch at 17,000 rows, PostgreSQL's CPU doubled: two billing bench runs in
    # five). Planning again costs a fraction of a millisecond, a few times a batch.
    "plan_cache_mode": "force_custom_plan",
}


def _server_settings(service: str) -> dict[str, str]:
    """Every service connection's settings: the service's schema first, then `SERVER_SETTINGS`."""
    return {"search_path": f"{schema_name(service)}, public", **SERVER_SETTINGS}


def check_database_url(url: str) -> str:
    """`url`, once it reads as a PostgreSQL URL; else `ValueError` saying what is wrong without its text.
    asyncpg's own error for a password holding an unencoded '#', '/' or '?' quotes the part of the password it
    took for the port, and that would reach a log or a terminal."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL is not a postgresql:// URL ({redact_url(url)})")
    shown = redact_url(url)
    if shown.endswith("://***") or ("," not in shown and not _port_reads(url)):  # h1:1,h2:2: libpq's multi-host
        raise ValueError("DATABASE_URL does not parse: a bad port, or a '#', '/', '?' or '@' in its user name or "
                         "password that is not percent-encoded")
    return url


def _port_reads(url: str) -> bool:
    """Whether the URL's port, if it has one, is a port."""
    try:
        port = urlsplit(url).port  # ValueError for digits out of range or for what is not digits
    except ValueError:
        return False
    return port is None or port > 0


async def create_pool(database_url: str, service: str, size: int = 6) -> asyncpg.Pool:
    check_database_url(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=size,
                                     server_settings=_server_settings(service))
    assert pool is not None
    return pool


async def connect(database_url: str, service: str) -> asyncpg.Connection:
    """One connection set up as the pool's are."""
    check_database_url(database_url)
    conn: asyncpg.Connection = await asyncpg.connect(database_url, server_settings=_server_settings(service))
    return conn


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.strip().encode()).hexdigest()


async def migrate(conn: asyncpg.Connection, service: str, service_sql: Sequence[str] = ()) -> int:
    """Create the service's schema and apply every migration not yet applied; returns how many ran."""
    schema = schema_name(service)
    applied = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"sn51-migrate:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   scope text NOT NULL, version integer NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (scope, version))"""
        )
        done = {
            (r["scope"], r["version"]): r["checksum"]
            for r in await conn.fetch("SELECT scope, version, checksum FROM schema_migrations")
        }
        for scope, scripts in (("runtime", RUNTIME_MIGRATIONS), ("service", tuple(service_sql))):
            for version, sql in enumerate(scripts, start=1):
                checksum = _checksum(sql)
                seen = done.get((scope, version))
                if seen is not None:
                    if seen != checksum:
                        raise RuntimeError(
                            f"{schema}: applied migration {scope} #{version} was edited; add a new one instead"
                        )
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (scope, version, checksum) VALUES ($1, $2, $3)",
                    scope, version, checksum,
                )
                applied += 1
    return applied


async def hold_writer_lock(
    conn: asyncpg.Connection, service: str, *, poll_seconds: float = 1.0, on_wait: Callable[[], None] = lambda: None
) -> None:
    """Wait until this process is the only writer of the service (a session advisory lock on `conn`).

    The inbox order is the service's event log, so exactly one process may append to it. The lock lives as long
    as `conn`: a killed process loses it at once, a second instance waits here until then.
    """
    key = f"sn51-writer:{schema_name(service)}"
    waited = False
    while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
        if not waited:
            on_wait()
            waited = True
        await asyncio.sleep(poll_seconds)


async def get_state(conn: asyncpg.Connection, key: str) -> Any:
    """A value a service keeps between runs (a chain checkpoint, ...), or None."""
    value = await conn.fetchval("SELECT value FROM service_state WHERE key = $1", key)
    return None if value is None else json.loads(value)


async def set_state(conn: asyncpg.Connection, key: str, value: Any) -> None:
    await conn.execute(
        """INSERT INTO service_state (key, value) VALUES ($1, $2::jsonb)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
        key, json.dumps(value, sort_keys=True),
    )
