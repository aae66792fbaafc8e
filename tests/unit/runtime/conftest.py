"""Fixtures shared by the runtime's PostgreSQL tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.runtime.db import create_pool, migrate


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh service schema with the runtime's tables (inbox, outbox, relay position ...)."""
    service = f"rt_{secrets.token_hex(4)}"
    pool = await create_pool(database_url, service)
    async with pool.acquire() as conn:
        await migrate(conn, service)
    yield pool
    await pool.close()
