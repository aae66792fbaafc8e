"""A fresh database per test that needs the service's real schema name (`billing`), e.g. a subprocess
`sn51 service billing`; on the server of the session's `database_url`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sn51.localinfra.postgres import with_database


@pytest.fixture
async def fresh_database_url(database_url: str) -> AsyncIterator[str]:
    name = f"sn51_billing_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(database_url, name)
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
