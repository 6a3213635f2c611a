"""Test harness: a real Postgres for every run.

``CALLSWITCH_TEST_DSN`` (a server-level DSN, e.g. postgresql://postgres@127.0.0.1:5432/postgres)
is used when set; otherwise a throwaway cluster is started with initdb/pg_ctl for the run.
Either way each run creates its own database (and drops it at the end).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from callswitch.db.migrate import migrate
from callswitch.pgcluster import LocalCluster


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A server-level DSN (connects to the 'postgres' database)."""
    dsn = os.environ.get("CALLSWITCH_TEST_DSN")
    if dsn:
        yield dsn
        return
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="callswitch-test-pg-")))
    cluster.start()
    try:
        yield cluster.dsn()
    finally:
        cluster.destroy()


@contextlib.asynccontextmanager
async def migrated_database(pg_server: str, prefix: str = "callswitch_test") -> AsyncIterator[str]:
    """DSN of a new database on ``pg_server``, migrated to the latest schema; dropped on leaving."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = with_database(pg_server, name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def database_dsn(pg_server: str) -> AsyncIterator[str]:
    """DSN of a database created for this test run, migrated to the latest schema."""
    async with migrated_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
async def clean_db(database_dsn: str) -> AsyncIterator[str]:
    """The run's database, emptied before the test."""
    conn = await asyncpg.connect(database_dsn)
    try:
        # dialer_channels (live legs, capacity) has no foreign key: a test that leaves legs live must not
        # make the members of the next test look busy
        await conn.execute("TRUNCATE callback_requests, callback_events, call_legs, dialer_channels "
                           "RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    yield database_dsn


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """CLI tests configure structlog onto pytest's captured streams; undo that after each test."""
    yield
    import logging

    import structlog

    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []
