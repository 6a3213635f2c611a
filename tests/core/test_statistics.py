"""callswitch.db.statistics: small, fast-growing tables are analyzed by autovacuum's rule without waiting for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callswitch.config import DatabaseConfig
from callswitch.db.pool import Database
from callswitch.db.statistics import analyze_changed_tables
from tests.conftest import migrated_database

INSERT = """
INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country, request_fingerprint)
SELECT gen_random_uuid(), 'shop', 'Ada', '+1773555' || lpad(i::text, 4, '0'), '+1773555' || lpad(i::text, 4, '0'),
       'US', 'f'
FROM generate_series($1::int, $2::int) AS i
"""


@pytest.fixture
async def fresh_db(pg_server: str) -> AsyncIterator[Database]:
    """A database of its own: statistics of the run's shared database depend on the other tests."""
    async with migrated_database(pg_server, "callswitch_stats") as dsn:
        db = Database(DatabaseConfig(dsn=dsn, min_connections=1, max_connections=2))
        await db.connect()
        try:
            yield db
        finally:
            await db.close()


async def insert(db: Database, first: int, last: int) -> None:
    """Requests numbered first..last; their counts reach pg_stat_user_tables before this returns."""
    async with db.acquire() as conn:
        await conn.execute(INSERT, first, last)
        await conn.execute("SELECT pg_stat_force_next_flush()")  # else flushed within a second or so
        await conn.execute("SELECT 1")


async def reltuples(db: Database, table: str) -> float:
    async with db.acquire() as conn:
        return float(await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = $1::regclass", table))


async def test_a_new_table_is_analyzed_once_it_has_changed_by_autovacuums_rule(fresh_db: Database) -> None:
    await insert(fresh_db, 1, 40)
    assert "callback_requests" not in await analyze_changed_tables(fresh_db)  # 40 changes < 50
    await insert(fresh_db, 41, 120)
    assert "callback_requests" in await analyze_changed_tables(fresh_db)
    assert await reltuples(fresh_db, "callback_requests") == 120
    assert "callback_requests" not in await analyze_changed_tables(fresh_db)  # nothing changed since
    await insert(fresh_db, 121, 170)  # 50 changes < 50 + 10 % of 120
    assert "callback_requests" not in await analyze_changed_tables(fresh_db)
    await insert(fresh_db, 171, 200)
    assert "callback_requests" in await analyze_changed_tables(fresh_db)
    assert await reltuples(fresh_db, "callback_requests") == 200


async def test_big_tables_are_left_to_autovacuum(fresh_db: Database) -> None:
    await insert(fresh_db, 1, 300)
    assert "callback_requests" in await analyze_changed_tables(fresh_db, small_rows=100)  # reltuples was unknown
    await insert(fresh_db, 301, 600)
    assert "callback_requests" not in await analyze_changed_tables(fresh_db, small_rows=100)
    assert await reltuples(fresh_db, "callback_requests") == 300
