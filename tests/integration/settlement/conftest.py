"""A fresh database per test that runs `sn51 service settlement` as a subprocess (schema `settlement`), on the
server of the session's `database_url`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sn51.localinfra.postgres import with_database


@pytest.fixture
async def fresh_database_url(database_url: str) -> AsyncIterator[str]:
    name = f"sn51_settlement_{secrets.token_hex(5)}"
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
