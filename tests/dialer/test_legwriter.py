"""LegWriter: call_legs changes of many attempts written in batches, in order, and never lost to one bad row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callswitch.config import DatabaseConfig
from callswitch.db.pool import Database
from callswitch.dialer.legwriter import LegInsert, LegWriter
from callswitch.dialer.queue import LegReservation, Limits, Queue
from tests.dialer.test_queue import add_request

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
async def db(clean_db: str) -> AsyncIterator[Database]:
    database = Database(DatabaseConfig(dsn=clean_db, min_connections=1, max_connections=4))
    await database.connect()
    yield database
    await database.close()


def visitor_leg(rid: uuid.UUID, n: int) -> LegInsert:
    return LegInsert(f"{rid}-1-{n}-c", rid, 1, "customer", "store", None, "+17735550200", "carrier", "pbx",
                     f"PJSIP/carrier-{n:08x}", f"17.{n}", f"{rid}-1-{n}", T0)


async def test_changes_of_many_legs_are_merged_and_written_in_one_batch(db: Database) -> None:
    async with db.acquire() as conn:
        rids = [await add_request(conn, i) for i in range(20)]
        for rid in rids:
            await conn.execute("INSERT INTO call_attempts (request_id, attempt, node) VALUES ($1, 1, 'n')", rid)
            assert await Queue("n").reserve_leg(conn, LegReservation(f"{rid}-1-1", rid, 1, "agent", "+13125550100",
                                                                      "carrier", "store", f"m{rid}"), Limits()) == "ok"
    writer = LegWriter(db, interval=0.05)
    writer.start()
    try:
        for rid in rids:
            writer.insert(visitor_leg(rid, 1))
            writer.update(f"{rid}-1-1", {"ringing_at": T0, "channel": "PJSIP/carrier-1"})
            writer.update(f"{rid}-1-1", {"answered_at": T0 + timedelta(seconds=3), "channel": None})
            writer.update(f"{rid}-1-1", {"ended_at": T0 + timedelta(seconds=60), "disposition": "accepted",
                                         "billable_seconds": 57})
            writer.update(f"{rid}-1-1-c", {"answered_at": T0 + timedelta(seconds=9)})  # insert + update, same batch
        await writer.flush()
        assert writer.batches == 1 and writer.legs_written == 20 + 40  # inserts + merged updates
        async with db.acquire() as conn:
            rows = await conn.fetch("SELECT leg_id, leg, channel, ringing_at, answered_at, ended_at, disposition, "
                                    "billable_seconds FROM call_legs ORDER BY leg_id")
    finally:
        await writer.stop()
    agents = [r for r in rows if r["leg"] == "agent"]
    visitors = [r for r in rows if r["leg"] == "customer"]
    assert len(agents) == 20 and len(visitors) == 20
    assert {(r["channel"], r["ringing_at"], r["answered_at"], r["ended_at"], r["disposition"], r["billable_seconds"])
            for r in agents} == {("PJSIP/carrier-1", T0, T0 + timedelta(seconds=3), T0 + timedelta(seconds=60),
                                  "accepted", 57)}
    assert {r["answered_at"] for r in visitors} == {T0 + timedelta(seconds=9)}


async def test_flush_waits_for_what_was_queued_before_it(db: Database) -> None:
    async with db.acquire() as conn:
        rid = await add_request(conn, 1)
        await conn.execute("INSERT INTO call_attempts (request_id, attempt, node) VALUES ($1, 1, 'n')", rid)
    writer = LegWriter(db, interval=5.0)  # a long gathering window: flush must not wait for it
    writer.start()
    try:
        writer.insert(visitor_leg(rid, 1))
        await writer.flush()
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM call_legs WHERE request_id = $1", rid) == 1
    finally:
        await writer.stop()


async def test_a_row_postgres_refuses_does_not_take_the_batch_with_it(db: Database, clean_db: str) -> None:
    async with db.acquire() as conn:
        rid = await add_request(conn, 1)
        await conn.execute("INSERT INTO call_attempts (request_id, attempt, node) VALUES ($1, 1, 'n')", rid)
    writer = LegWriter(db, interval=0.05)
    writer.start()
    try:
        writer.insert(visitor_leg(rid, 1))
        writer.insert(visitor_leg(uuid.uuid4(), 2))  # no such request: a foreign key violation
        writer.insert(visitor_leg(rid, 3))
        await writer.flush()
    finally:
        await writer.stop()
    conn = await asyncpg.connect(clean_db)
    try:
        ids = [r["leg_id"] for r in await conn.fetch("SELECT leg_id FROM call_legs ORDER BY leg_id")]
    finally:
        await conn.close()
    assert ids == [f"{rid}-1-1-c", f"{rid}-1-3-c"]


def test_unknown_columns_are_refused() -> None:
    writer = LegWriter(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="number_dialled"):
        writer.update("x", {"number_dialled": "+1"})
