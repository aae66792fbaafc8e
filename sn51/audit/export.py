"""`sn51 audit export`: each service's log (inbox, in processing order), what it published (outbox) and what
it refused (dead letters), from PostgreSQL, as audit records (see `records.py`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import asyncpg

from schemas.topics import DEAD_LETTER
from sn51.audit.records import record

SERVICES = ("scoring", "billing", "settlement", "collateral")


async def export_records(database_url: str, on_row: Callable[[], None] | None = None) -> AsyncIterator[str]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        present = {r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")}
        for service in SERVICES:
            if service not in present:
                continue
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async for row in conn.cursor(f'SELECT seq, raw FROM "{service}".inbox ORDER BY seq'):
                    yield record("consumed", service, row["seq"], json.loads(bytes(row["raw"])))
                    if on_row:
                        on_row()
                async for row in conn.cursor(
                    f'SELECT seq, value FROM "{service}".outbox WHERE topic NOT LIKE $1 ORDER BY seq',
                    f"%{DEAD_LETTER}",
                ):
                    yield record("published", service, row["seq"], json.loads(bytes(row["value"])))
                    if on_row:
                        on_row()
                async for row in conn.cursor(
                    f'SELECT id, code, reason, raw FROM "{service}".dead_letter ORDER BY id'
                ):
                    yield json.dumps({"kind": "dead_letter", "service": service, "seq": row["id"],
                                      "code": row["code"], "reason": row["reason"],
                                      "raw": bytes(row["raw"]).decode("utf-8", "replace")}, sort_keys=True)
    finally:
        await conn.close()
