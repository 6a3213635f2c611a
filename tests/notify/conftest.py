"""Fixtures of the notification tests: a Database on the run's (emptied) database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from callswitch.config import DatabaseConfig
from callswitch.db.pool import Database


@pytest.fixture
async def db(clean_db: str) -> AsyncIterator[Database]:
    database = Database(DatabaseConfig(dsn=clean_db, min_connections=1, max_connections=8, command_timeout=30))
    await database.connect()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def conn(db: Database) -> AsyncIterator[asyncpg.Connection]:
    async with db.acquire() as c:
        yield c
