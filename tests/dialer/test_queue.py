"""The Postgres work queue: claiming, leases, attempts, and limits that hold across daemons."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from callswitch.db.pool import init_connection
from callswitch.dialer.queue import LegReservation, Limits, Queue


@pytest.fixture
async def conn(clean_db: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(clean_db)
    await init_connection(c)
    await c.execute("TRUNCATE dialer_channels, call_attempts")
    yield c
    await c.close()


async def add_request(conn: asyncpg.Connection, n: int, *, due_in_s: float = -1, state: str = "queued") -> uuid.UUID:
    rid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country,
               request_fingerprint, state, due_at, created_at)
           VALUES ($1, 'shop', 'V', $2, $2, 'US', 'x', $3, now() + make_interval(secs => $4),
                   now() - make_interval(secs => $5))""",
        rid, f"+1312555{n:04d}", state, due_in_s, 1000 - n,
    )
    return rid


async def test_claims_due_requests_oldest_first_and_never_twice(conn: asyncpg.Connection, clean_db: str) -> None:
    ids = [await add_request(conn, i) for i in range(10)]
    await add_request(conn, 99, due_in_s=3600, state="scheduled")  # not due yet
    a, b = Queue("node-a"), Queue("node-b")
    conn_b = await asyncpg.connect(clean_db)
    try:
        async with conn.transaction(), conn_b.transaction():
            got_a = await a.claim_due(conn, 4)
            got_b = await b.claim_due(conn_b, 100)  # runs while a's claim is uncommitted: skips locked rows
        assert [r["id"] for r in got_a] == ids[:4]
        assert sorted(r["id"] for r in got_b) == sorted(ids[4:])
        assert await a.claim_due(conn, 100) == []  # leased
    finally:
        await conn_b.close()


async def test_concurrent_claimers_share_200_requests_exactly_once(conn: asyncpg.Connection, clean_db: str) -> None:
    ids = {await add_request(conn, i) for i in range(200)}
    conns = [await asyncpg.connect(clean_db) for _ in range(4)]
    try:
        async def drain(q: Queue, c: asyncpg.Connection) -> list[uuid.UUID]:
            out: list[uuid.UUID] = []
            while batch := await q.claim_due(c, 7):
                out.extend(r["id"] for r in batch)
            return out

        results = await asyncio.gather(*(drain(Queue(f"n{i}"), c) for i, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()
    claimed = [rid for r in results for rid in r]
    assert len(claimed) == 200 and set(claimed) == ids


async def test_lapsed_lease_lets_another_node_take_over(conn: asyncpg.Connection) -> None:
    rid = await add_request(conn, 1)
    dead = Queue("dead", lease_seconds=0.2)
    (row,) = await dead.claim_due(conn, 10)
    attempt = await dead.start_attempt(conn, rid, "default", "central", row["state"])
    assert attempt == 1
    alive = Queue("alive")
    assert await alive.claim_orphaned(conn, 10) == []  # lease still valid
    await asyncio.sleep(0.3)
    (orphan,) = await alive.claim_orphaned(conn, 10)
    assert orphan["id"] == rid and orphan["state"] == "dialing_agent" and orphan["lease_owner"] == "alive"
    (unfinished,) = await alive.unfinished_attempts(conn, rid)
    assert unfinished["attempt"] == 1 and unfinished["node"] == "dead"
    # the dead node can no longer start an attempt on it
    assert await dead.start_attempt(conn, rid, None, None, "dialing_agent") is None


async def test_release_node_hands_back_queued_work(conn: asyncpg.Connection) -> None:
    for i in range(3):
        await add_request(conn, i)
    q = Queue("leaving")
    assert len(await q.claim_due(conn, 10)) == 3
    assert await q.release_node(conn) == 3
    assert len(await Queue("other").claim_due(conn, 10)) == 3


def leg(rid: uuid.UUID, n: int, *, trunk: str | None = "carrier", member: str | None = None,
        destination: str | None = "store") -> LegReservation:
    return LegReservation(f"{rid}-1-{n}", rid, 1, "agent", f"+1312555{n:04d}", trunk, destination,
                          member or f"+1312555{n:04d}")


async def test_limits_are_enforced_in_postgres(conn: asyncpg.Connection) -> None:
    rid = await add_request(conn, 1)
    await conn.execute("INSERT INTO call_attempts (request_id, attempt, node) VALUES ($1, 1, 'n')", rid)
    q = Queue("n")
    assert await q.reserve_leg(conn, leg(rid, 1), Limits(max_trunk=2)) == "ok"
    assert await q.reserve_leg(conn, leg(rid, 2), Limits(max_trunk=2)) == "ok"
    assert await q.reserve_leg(conn, leg(rid, 3), Limits(max_trunk=2)) == "trunk_limit"
    assert await q.reserve_leg(conn, leg(rid, 3, trunk="other"), Limits(max_trunk=2, max_global=2)) == "global_limit"
    assert await q.reserve_leg(conn, leg(rid, 3, trunk="other"), Limits(max_destination=2)) == "destination_limit"
    assert await q.reserve_leg(conn, leg(rid, 4, trunk="other", member="+13125550001"), Limits()) == "member_busy"
    assert await q.reserve_leg(conn, leg(rid, 5, trunk="carrier"), Limits(max_trunk_cps=2)) == "trunk_cps"
    await q.free_leg(conn, f"{rid}-1-1")
    assert await q.reserve_leg(conn, leg(rid, 6, trunk="carrier", destination="x"), Limits(max_trunk=2)) == "ok"
    row = await conn.fetchrow("SELECT * FROM call_legs WHERE leg_id = $1", f"{rid}-1-6")
    assert row["uniqueid"] == f"{rid}-1-6" and row["trunk"] == "carrier" and row["originated_at"] is not None


async def test_expired_reservations_do_not_count(conn: asyncpg.Connection) -> None:
    rid = await add_request(conn, 1)
    await conn.execute("INSERT INTO call_attempts (request_id, attempt, node) VALUES ($1, 1, 'n')", rid)
    q = Queue("n", lease_seconds=0.1)
    assert await q.reserve_leg(conn, leg(rid, 1), Limits(max_global=1)) == "ok"
    assert await q.reserve_leg(conn, leg(rid, 2), Limits(max_global=1)) == "global_limit"
    await asyncio.sleep(0.2)
    assert await q.reserve_leg(conn, leg(rid, 2), Limits(max_global=1)) == "ok"


async def test_concurrent_reservations_never_exceed_a_trunk_limit(conn: asyncpg.Connection, clean_db: str) -> None:
    rid = await add_request(conn, 1)
    await conn.execute("INSERT INTO call_attempts (request_id, attempt, node) VALUES ($1, 1, 'n')", rid)
    conns = [await asyncpg.connect(clean_db) for _ in range(6)]
    try:
        results = await asyncio.gather(*(
            Queue(f"n{i}").reserve_leg(c, leg(rid, i), Limits(max_trunk=3)) for i, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()
    assert sorted(results) == ["ok"] * 3 + ["trunk_limit"] * 3


async def test_a_node_never_takes_over_its_own_request_and_learns_when_another_did(conn: asyncpg.Connection) -> None:
    rid = await add_request(conn, 1)
    a = Queue("a", lease_seconds=0.2)
    (row,) = await a.claim_due(conn, 10)
    assert await a.start_attempt(conn, rid, "default", "store", row["state"]) == 1
    await asyncio.sleep(0.3)  # a's lease lapses (as if Postgres had been unreachable for longer than it)
    assert await a.claim_orphaned(conn, 10, working={rid}) == []  # still being worked by a itself
    (taken,) = await Queue("b").claim_orphaned(conn, 10)
    assert taken["id"] == rid and taken["lease_owner"] == "b"
    assert await a.renew(conn, [rid]) == {rid}  # a learns that b holds it now
    assert await Queue("b").renew(conn, [rid]) == set()


async def test_attempts_left_open_after_their_request_finished_are_closed(conn: asyncpg.Connection) -> None:
    rid = await add_request(conn, 1)
    q = Queue("gone")
    (row,) = await q.claim_due(conn, 10)
    await q.start_attempt(conn, rid, "default", "store", row["state"])
    assert await q.reserve_leg(conn, leg(rid, 1), Limits()) == "ok"
    await conn.execute("UPDATE call_legs SET originated_at = now() - interval '55 minutes', "
                       "answered_at = now() - interval '50 minutes' WHERE request_id = $1", rid)
    await conn.execute("UPDATE callback_requests SET state = 'completed', outcome = 'connected', "
                       "finished_at = now() - interval '40 minutes' WHERE id = $1", rid)
    assert await q.close_abandoned_attempts(conn, 3600) == 0  # not old enough yet
    assert await q.close_abandoned_attempts(conn, 60) == 1
    attempt = await conn.fetchrow("SELECT finished_at, outcome FROM call_attempts WHERE request_id = $1", rid)
    assert attempt["finished_at"] is not None and attempt["outcome"] == "connected"
    leg_row = await conn.fetchrow("SELECT ended_at, disposition FROM call_legs WHERE request_id = $1", rid)
    finished = await conn.fetchval("SELECT finished_at FROM callback_requests WHERE id = $1", rid)
    assert leg_row["ended_at"] == finished and leg_row["disposition"] == "answered"
    assert await conn.fetchval("SELECT count(*) FROM dialer_channels WHERE request_id = $1", rid) == 0
    assert await q.close_abandoned_attempts(conn, 60) == 0  # once
