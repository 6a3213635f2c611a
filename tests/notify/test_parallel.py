"""Several daemons share the outbox: every delivery is sent once, by one of them."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from callswitch.db.pool import Database
from callswitch.db.queries import QUERIES as Q
from callswitch.notify.config import NotificationsConfig, RetryPolicy, WebhookSubscription
from callswitch.notify.notifier import Notifier

from .helpers import Receiver, create_request, set_state, wait_until

SECRET = "parallel-secret-0123456789"


async def test_two_deliverers_never_send_a_delivery_twice(db: Database, conn: asyncpg.Connection) -> None:
    receiver = Receiver({"/a": SECRET, "/b": SECRET}, delay=0.01)
    await receiver.up()
    config = NotificationsConfig(
        webhooks=(WebhookSubscription("a", "shop", f"{receiver.url}/a", SECRET, timeout=5.0),
                  WebhookSubscription("b", "shop", f"{receiver.url}/b", SECRET, timeout=5.0)),
        retry=RetryPolicy(initial=0.05, max=0.2, give_up_after=60), poll_interval=0.02, concurrency=4,
    )
    nodes = [Notifier(db, config, node=f"node-{i}", batch=7) for i in range(2)]

    async def produce() -> None:
        for i in range(60):
            rid = await create_request(conn, name=f"Visitor {i}")
            if i % 2:
                await set_state(conn, rid, "cancelled", "cancelled", "queued", actor="visitor", outcome="cancelled")

    for n in nodes:
        await n.start()
    try:
        await produce()
        expected = 2 * (60 + 30)
        await wait_until(lambda: _delivered(conn, expected), timeout=30, what=f"{expected} deliveries")
        await asyncio.sleep(0.3)  # nothing more arrives afterwards
    finally:
        for n in nodes:
            await n.stop()
        await receiver.down()

    per_delivery = Counter(h.delivery for h in receiver.hits)
    assert len(per_delivery) == expected and set(per_delivery.values()) == {1}
    for path in ("/a", "/b"):
        ids = Counter(receiver.ids(path))
        assert len(ids) == 90 and set(ids.values()) == {1}
    assert {h.attempt for h in receiver.hits} == {1}
    rows = await conn.fetch("SELECT attempts, status FROM notification_deliveries")
    assert len(rows) == expected and all(r["attempts"] == 1 and r["status"] == "delivered" for r in rows)
    assert await conn.fetchval("SELECT count(*) FROM event_outbox WHERE fanned_out_at IS NULL") == 0


async def _delivered(conn: asyncpg.Connection, n: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT count(*) FROM notification_deliveries WHERE status = 'delivered'") >= n)


async def test_claims_are_exclusive(db: Database, conn: asyncpg.Connection) -> None:
    """Claiming from many connections at once hands out each due delivery to exactly one claimant."""
    config = NotificationsConfig(webhooks=(WebhookSubscription("a", "shop", "http://127.0.0.1:9/", SECRET),))
    for i in range(40):
        await create_request(conn, name=f"V{i}")
    await Notifier(db, config, node="fan").fan_out()
    async def claim(node: str) -> list[int]:
        async with db.acquire() as c:
            return [r["id"] for r in await c.fetch(Q.delivery_claim_due, node, 3, 60.0)]

    claimed: list[int] = []
    for _ in range(5):
        batches = await asyncio.gather(*(claim(f"n{i}") for i in range(6)))
        claimed += [d for b in batches for d in b]
    assert len(claimed) == 40 and len(set(claimed)) == 40
    # a lapsed claim (its node died mid-attempt) is taken again, and only then
    await conn.execute("UPDATE notification_deliveries SET next_attempt_at = now() - interval '1 s' WHERE id = $1",
                       claimed[0])
    assert await claim("late") == [claimed[0]]
    stale = await conn.fetchrow("SELECT attempts, claimed_by FROM notification_deliveries WHERE id = $1", claimed[0])
    assert stale["attempts"] == 2 and stale["claimed_by"] == "late"
    # the first claimant's late result is ignored: only the current claim records
    status = await conn.execute(Q.delivery_succeeded, claimed[0], "n0", 200, 1)
    assert status == "UPDATE 0"
