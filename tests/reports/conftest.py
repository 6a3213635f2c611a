from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.intake.conftest import make_client  # noqa: F401  (the HTTP client fixture, for the admin report routes)
from tests.reports.history import load_history


@pytest.fixture
async def conn(clean_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the emptied test database holding the known history of tests/reports/history.py."""
    c = await asyncpg.connect(clean_db)
    try:
        await c.execute("TRUNCATE retention_runs")
        await load_history(c)
        yield c
    finally:
        await c.close()
