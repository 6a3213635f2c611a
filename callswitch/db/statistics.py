"""Planner statistics for tables that are still small and growing fast, e.g. a new installation's.

Postgres caches query plans in every pooled session (asyncpg's prepared statements, PL/pgSQL functions and
triggers). A plan made while a table held a few dozen rows reads the whole table where an index finds one
row, and it stays cached until the table is analyzed again: autovacuum does that once a table changed by
50 rows plus 10 %, but only at its next visit, up to ``autovacuum_naptime`` (a minute) later, and never if
autovacuum is off. A burst of requests into a new installation was measured to cost several times more per
request in Postgres, growing with the table (bench/load.py, docs/benchmarks.md).

:func:`keep_statistics` applies autovacuum's rule itself every second to the service's hot tables while
they are small (below ``small_rows``); bigger tables change scale slowly and are left to autovacuum.
"""

from __future__ import annotations

import asyncio

import structlog

from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q

log = structlog.get_logger(__name__)

# The tables the intake and the dialer look rows up in on every request (fixed names: safe to interpolate).
HOT_TABLES = ("callback_requests", "callback_events", "call_attempts", "call_legs", "cs_request_facts",
              "dialer_channels", "event_outbox")
BASE_THRESHOLD = 50  # autovacuum_analyze_threshold's default; autovacuum_analyze_scale_factor 0.1 is in the SQL
SMALL_ROWS = 200_000


async def analyze_changed_tables(db: Database, tables: tuple[str, ...] = HOT_TABLES,
                                 small_rows: int = SMALL_ROWS) -> list[str]:
    """ANALYZE the small tables among ``tables`` that autovacuum would analyze at its next visit."""
    async with db.acquire() as conn:
        due = [r["name"] for r in await conn.fetch(Q.tables_to_analyze, list(tables), BASE_THRESHOLD, small_rows)]
        for name in due:
            if name in tables:  # whitelisted: the name goes into the statement
                await conn.execute(f"ANALYZE {name}")
    if due:
        log.debug("tables_analyzed", tables=due)
    return due


async def keep_statistics(db: Database, interval: float = 1.0) -> None:
    """:func:`analyze_changed_tables` every ``interval`` seconds, for as long as the daemon runs."""
    while True:
        try:
            await analyze_changed_tables(db)
        except Exception as exc:
            if not is_unavailable(exc):
                log.warning("analyze_failed", error=str(exc))
        await asyncio.sleep(interval)
