"""Webhook delivery: durable, retried with backoff, signed, at least once with a stable event id."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import asyncpg
import pytest

from callswitch.db.pool import Database
from callswitch.notify.admin import list_deliveries, outbox_summary, retry_delivery
from callswitch.notify.config import NotificationsConfig, RetryPolicy, WebhookSubscription
from callswitch.notify.notifier import Notifier
from callswitch.notify.signing import SignatureError, sign, verify

from .helpers import Receiver, connected_call, create_request, missed_call, wait_until

SECRET_A = "a" * 8 + "-secret-of-crm"
SECRET_B = "b" * 8 + "-secret-of-bi!"
SECRET_C = "c" * 8 + "-other-site-key"
FAST = RetryPolicy(initial=0.05, max=0.4, give_up_after=300)


def subs(receiver: Receiver) -> tuple[WebhookSubscription, ...]:
    return (
        WebhookSubscription("crm", "shop", f"{receiver.url}/crm", SECRET_A, timeout=1.0),
        WebhookSubscription("bi", "shop", f"{receiver.url}/bi", SECRET_B,
                            events=frozenset({"request.completed", "request.failed"}), timeout=1.0),
        WebhookSubscription("other", "other", f"{receiver.url}/other", SECRET_C, timeout=1.0),
    )


def config(receiver: Receiver, **kw: Any) -> NotificationsConfig:
    kw.setdefault("retry", FAST)
    return NotificationsConfig(webhooks=subs(receiver), poll_interval=0.05, settle_timeout=5.0, **kw)


async def expected_ids(conn: asyncpg.Connection, site: str, kinds: set[str] | None = None) -> Counter[str]:
    rows = await conn.fetch(
        "SELECT o.event_uuid::text AS id, o.kind FROM event_outbox o JOIN callback_requests r ON r.id = o.request_id "
        "WHERE r.site = $1", site)
    return Counter(r["id"] for r in rows if kinds is None or r["kind"] in kinds)


async def all_delivered(conn: asyncpg.Connection) -> bool:
    waiting = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE fanned_out_at IS NULL")
    pending = await conn.fetchval("SELECT count(*) FROM notification_deliveries WHERE status <> 'delivered'")
    return waiting == 0 and pending == 0


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"id":"x"}'
    header = sign("k" * 16, body, 1_700_000_000)
    assert verify("k" * 16, header, body, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(SignatureError, match="does not match"):
        verify("k" * 16, header, body + b" ", now=1_700_000_100)
    with pytest.raises(SignatureError, match="does not match"):
        verify("x" * 16, header, body, now=1_700_000_100)
    with pytest.raises(SignatureError, match="tolerance"):
        verify("k" * 16, header, body, now=1_700_000_000 + 301)  # a replay more than 5 minutes later
    with pytest.raises(SignatureError, match="timestamp"):
        verify("k" * 16, "v1=abc", body)


async def test_receiver_down_then_up_gets_every_event_once(db: Database, conn: asyncpg.Connection) -> None:
    receiver = Receiver({"/crm": SECRET_A, "/bi": SECRET_B, "/other": SECRET_C})
    notifier = Notifier(db, config(receiver), node="n1")
    await notifier.start()
    try:
        # the receiver is not even listening while these happen
        for i in range(3):
            await connected_call(conn, await create_request(conn, name=f"Connected {i}"))
        await missed_call(conn, await create_request(conn, name="Missed"))
        await create_request(conn, site="other", destination=None)
        await wait_until(lambda: _attempted_at_least(conn, 3), what="failed attempts")
        assert receiver.hits == []
        # a restart of the daemon meanwhile loses nothing
        await notifier.stop()
        notifier = Notifier(db, config(receiver), node="n2")
        await notifier.start()
        # then the receiver comes up but fails for a while
        receiver.fail_with = 503
        await receiver.up()
        await wait_until(lambda: _status_seen(conn, 503), what="503 recorded")
        more = await create_request(conn, name="Late")
        await connected_call(conn, more)
        receiver.fail_with = None
        await wait_until(lambda: all_delivered(conn), timeout=20, what="everything delivered")
    finally:
        await notifier.stop()
        await receiver.down()

    crm, bi, other = (Counter(receiver.ids(p)) for p in ("/crm", "/bi", "/other"))
    assert crm == await expected_ids(conn, "shop")  # every event, each exactly once
    assert bi == await expected_ids(conn, "shop", {"request.completed", "request.failed"})
    assert other == await expected_ids(conn, "other")
    assert sum(crm.values()) == 4 * 4 + 2  # 4 connected requests x 4 events, 1 missed x 2
    assert all(h.signature_ok for h in receiver.hits)
    rows = await list_deliveries(db, subscription="crm")
    assert len(rows) == sum(crm.values())
    assert all(r["status"] == "delivered" and r["last_status"] == 200 and r["last_error"] is None for r in rows)
    assert max(r["attempts"] for r in rows) >= 3  # retried through the outage
    assert min(r["attempts"] for r in rows) == 1  # the late ones went straight through
    summary = await outbox_summary(db)
    assert summary["deliveries_pending"] == 0 and summary["events_waiting"] == 0


async def _attempted_at_least(conn: asyncpg.Connection, n: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT count(*) > 0 AND min(attempts) >= $1 FROM notification_deliveries WHERE subscription = 'crm'", n))


async def _status_seen(conn: asyncpg.Connection, status: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM notification_deliveries WHERE last_status = $1", status))


async def test_lost_response_means_a_duplicate_with_the_same_id(db: Database, conn: asyncpg.Connection) -> None:
    receiver = Receiver({"/crm": SECRET_A, "/bi": SECRET_B, "/other": SECRET_C})
    await receiver.up()
    rid = await create_request(conn)
    event_id = await conn.fetchval("SELECT event_uuid::text FROM event_outbox WHERE request_id = $1", rid)
    receiver.slow_once.add(event_id)  # processed, but the 200 comes after the 1 s timeout
    notifier = Notifier(db, config(receiver), node="n1")
    await notifier.start()
    try:
        await wait_until(lambda: all_delivered(conn), what="delivered")
    finally:
        await notifier.stop()
        await receiver.down()
    hits = [h for h in receiver.hits if h.path == "/crm"]
    assert [h.event_id for h in hits] == [event_id, event_id]  # a duplicate, which the receiver can drop by id
    assert [h.attempt for h in hits] == [1, 2] and hits[0].delivery == hits[1].delivery
    assert hits[0].payload == hits[1].payload
    [row] = await list_deliveries(db, request_id=rid)
    assert row["attempts"] == 2 and row["status"] == "delivered"


async def test_retries_back_off_and_give_up(db: Database, conn: asyncpg.Connection) -> None:
    receiver = Receiver({"/crm": SECRET_A, "/bi": SECRET_B, "/other": SECRET_C}, fail_with=500)
    await receiver.up()
    policy = RetryPolicy(initial=0.1, max=0.8, give_up_after=2.5)
    notifier = Notifier(db, config(receiver, retry=policy), node="n1")
    await create_request(conn)
    gaps: list[float] = []
    try:
        await notifier.fan_out()
        last = time.monotonic()
        while True:
            if await notifier.deliver_due():
                now = time.monotonic()
                gaps.append(now - last)
                last = now
            row = await conn.fetchrow("SELECT status, attempts FROM notification_deliveries")
            if row["status"] == "failed":
                break
            await asyncio.sleep(0.01)
    finally:
        await notifier.stop()
        await receiver.down()
    [row] = await list_deliveries(db, status="failed")
    assert row["last_status"] == 500 and "HTTP 500" in row["last_error"] and row["delivered_at"] is None
    waits = gaps[1:]  # time between attempts: about [0.05-0.1], [0.1-0.2], [0.2-0.4], [0.4-0.8], [0.4-0.8] ...
    assert len(waits) >= 4
    for i, wait in enumerate(waits, 1):
        cap = min(0.8, 0.1 * 2 ** (i - 1))
        assert cap / 2 - 0.02 <= wait <= cap + 0.25, (i, wait, waits)
    assert max(waits) <= 0.8 + 0.25  # capped

    # an admin retries it: one more attempt, now successful
    receiver.fail_with = None
    await receiver.up()
    notifier = Notifier(db, config(receiver, retry=policy), node="n1")
    await notifier.start()
    try:
        assert await retry_delivery(db, row["id"])
        await wait_until(lambda: all_delivered(conn), what="delivered after retry")
    finally:
        await notifier.stop()
        await receiver.down()
    assert not await retry_delivery(db, row["id"])  # delivered: nothing to retry


def test_backoff_is_capped_exponential_with_jitter() -> None:
    n = Notifier(None, NotificationsConfig(retry=RetryPolicy(initial=10, max=3600, give_up_after=86400)))  # type: ignore[arg-type]
    for attempt, cap in [(1, 10), (2, 20), (3, 40), (8, 1280), (9, 2560), (10, 3600), (50, 3600)]:
        samples = [n.backoff(attempt) for _ in range(200)]
        assert all(cap / 2 <= s <= cap for s in samples)
        assert len(set(samples)) > 100  # jittered
    assert n.backoff(1, retry_after=120) >= 120
    assert n.backoff(1, retry_after=10**6) <= 3600


async def test_retry_after_is_respected(db: Database, conn: asyncpg.Connection) -> None:
    receiver = Receiver({"/crm": SECRET_A, "/bi": SECRET_B, "/other": SECRET_C}, fail_with=429, retry_after="30")
    await receiver.up()
    notifier = Notifier(db, config(receiver, retry=RetryPolicy(initial=0.05, max=60, give_up_after=600)), node="n")
    await create_request(conn)
    try:
        await notifier.fan_out()
        await notifier.deliver_due()
    finally:
        await notifier.stop()
        await receiver.down()
    wait = await conn.fetchval("SELECT extract(epoch FROM next_attempt_at - now()) FROM notification_deliveries")
    assert 28 < wait <= 30


async def test_bad_receiver_url_is_recorded(db: Database, conn: asyncpg.Connection) -> None:
    sub = WebhookSubscription("crm", "shop", "http://127.0.0.1:1/hook", SECRET_A, timeout=1.0)
    notifier = Notifier(db, NotificationsConfig(webhooks=(sub,), retry=FAST), node="n")
    try:  # no background loop: this test drives each step itself
        await create_request(conn)
        await notifier.fan_out()
        assert await notifier.deliver_due() == 1
    finally:
        await notifier.stop()
    [row] = await list_deliveries(db)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_status"] is None
    assert "Connect" in row["last_error"] and row["claimed_by"] is None
    assert row["target"] == "http://127.0.0.1:1/hook" and row["kind"] == "request.accepted"
    with pytest.raises(ValueError):
        await list_deliveries(db, status="nonsense")
