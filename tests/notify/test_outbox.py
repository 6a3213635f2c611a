"""The trigger fills the outbox in the state change's transaction; payloads carry the CDR summary."""

from __future__ import annotations

import asyncpg
import pytest

from callswitch.db.pool import Database
from callswitch.notify.config import NotificationsConfig, WebhookSubscription
from callswitch.notify.notifier import Notifier

from .helpers import add_attempt, connected_call, create_request, missed_call, set_state

SECRET = "s3cret-s3cret-s3cret"


async def kinds(conn: asyncpg.Connection, rid: object) -> list[str]:
    return [r["kind"] for r in await conn.fetch("SELECT kind FROM event_outbox WHERE request_id = $1 ORDER BY id", rid)]


async def test_trigger_records_lifecycle_events_once(conn: asyncpg.Connection) -> None:
    rid = await create_request(conn)
    await connected_call(conn, rid)
    assert await kinds(conn, rid) == ["request.accepted", "agent.accepted", "call.connected", "request.completed"]

    rejected = await create_request(conn, state="rejected", destination=None)
    assert await kinds(conn, rejected) == ["request.rejected"]
    scheduled = await create_request(conn, state="scheduled")
    await set_state(conn, scheduled, "cancelled", "cancelled", "scheduled", actor="visitor", outcome="cancelled")
    assert await kinds(conn, scheduled) == ["request.accepted", "request.cancelled"]


async def test_repeated_state_change_is_notified_once(conn: asyncpg.Connection) -> None:
    """The dialer repeats a state change whose reply was lost: one more audit event, no second notification."""
    rid = await create_request(conn)
    await set_state(conn, rid, "dialing_agent", "dialing", "queued")
    await set_state(conn, rid, "agent_answered", "agent_answered", "dialing_agent")
    await set_state(conn, rid, "accepted", "agent_accepted", "agent_answered")
    await set_state(conn, rid, "accepted", "agent_accepted", "agent_answered")  # the repeat
    assert await kinds(conn, rid) == ["request.accepted", "agent.accepted"]
    # a later attempt (after a retry) is accepted again: that is a new event
    await set_state(conn, rid, "scheduled", "retry_scheduled", "accepted")
    await set_state(conn, rid, "dialing_agent", "dialing", "scheduled")
    await set_state(conn, rid, "accepted", "agent_accepted", "dialing_agent")
    assert await kinds(conn, rid) == ["request.accepted", "agent.accepted", "agent.accepted"]


async def test_rolled_back_state_change_leaves_no_outbox_row(conn: asyncpg.Connection) -> None:
    rid = await create_request(conn)
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await conn.execute("UPDATE callback_requests SET state = 'dialing_agent' WHERE id = $1", rid)
            await conn.execute(
                "INSERT INTO callback_events (request_id, event, from_state, to_state, actor) "
                "VALUES ($1, 'failed', 'dialing_agent', 'failed', 'dialer')", rid)
            raise RuntimeError("crash before commit")
    assert await kinds(conn, rid) == ["request.accepted"]


def notifier(db: Database, **kw: object) -> Notifier:
    sub = WebhookSubscription(name="crm", site="shop", url="http://127.0.0.1:9/", secret=SECRET)
    return Notifier(db, NotificationsConfig(webhooks=(sub,), **kw), node="t")  # type: ignore[arg-type]


async def payloads(conn: asyncpg.Connection, rid: object) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = await conn.fetch("SELECT kind, payload FROM event_outbox WHERE request_id = $1 ORDER BY id", rid)
    return {r["kind"]: r["payload"] for r in rows}


async def test_completed_payload_has_the_cdr_summary(db: Database, conn: asyncpg.Connection) -> None:
    rid = await create_request(conn, name="Grace Hopper")
    await connected_call(conn, rid, talk=95)
    n = notifier(db)
    assert await n.fan_out() == 4
    p = await payloads(conn, rid)
    done = p["request.completed"]
    assert done["type"] == "request.completed" and done["site"] == "shop" and done["version"] == 1
    req = done["request"]
    assert req["id"] == str(rid) and req["state"] == "completed" and req["outcome"] == "connected"
    assert req["visitor"]["name"] == "Grace Hopper" and req["visitor"]["phone"].startswith("+4930")
    assert req["page"]["url"] == "https://shop.example/kitchens?utm_campaign=spring"
    assert req["page"]["pages_visited"] == ["https://shop.example/", "https://shop.example/kitchens"]
    assert req["campaign"] == {"source": "google", "medium": "cpc", "campaign": "spring-sale"}
    assert req["route"] == {"rule": "rules[0] (berlin)", "destination": "berlin", "chain": ["berlin"]}
    cdr = done["cdr"]
    assert cdr["outcome"] == "connected" and cdr["destination"] == "berlin" and cdr["agent"] == "PJSIP/201"
    assert cdr["attempts"] == 1 and cdr["legs"] == 3 and cdr["agent_legs"] == 2 and cdr["visitor_legs"] == 1
    assert cdr["talk_seconds"] == 95
    assert cdr["connected_at"] is not None and cdr["ended_at"] is not None
    dispositions = sorted(leg["disposition"] for leg in cdr["call_legs"])
    assert dispositions == ["accepted", "answered", "answered_elsewhere"]
    assert all("number_dialled" not in leg for leg in cdr["call_legs"])
    assert done["event"] == {"name": "hangup", "from_state": "connected", "to_state": "completed",
                             "actor": "dialer", "detail": {"talk_seconds": 95}}
    assert "cdr" not in p["request.accepted"] and "cdr" not in p["agent.accepted"]
    assert p["request.accepted"]["request"]["state"] == "completed"  # the request as it is at fan-out
    ids = {q["id"] for q in p.values()}
    assert len(ids) == 4  # every event its own stable id


async def test_failed_payload(db: Database, conn: asyncpg.Connection) -> None:
    rid = await create_request(conn)
    await missed_call(conn, rid, "no_agent")
    await notifier(db).fan_out()
    failed = (await payloads(conn, rid))["request.failed"]
    assert failed["request"]["outcome"] == "no_agent"
    assert failed["cdr"]["outcome"] == "no_agent" and failed["cdr"]["talk_seconds"] == 0
    assert failed["cdr"]["agent"] is None and failed["cdr"]["legs"] == 1


async def test_final_event_waits_for_the_attempt_records(db: Database, conn: asyncpg.Connection) -> None:
    rid = await create_request(conn)
    await add_attempt(conn, rid, 1, finished=False, outcome=None)
    await set_state(conn, rid, "dialing_agent", "dialing", "queued")
    await set_state(conn, rid, "failed", "failed", "dialing_agent", outcome="no_agent")
    n = notifier(db, settle_timeout=30.0)
    assert await n.fan_out() == 1  # request.accepted only; request.failed waits for the attempt to finish
    waiting = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE fanned_out_at IS NULL")
    assert waiting == 1
    await conn.execute("UPDATE call_attempts SET finished_at = now(), outcome = 'no_agent' WHERE request_id = $1", rid)
    await conn.execute("UPDATE event_outbox SET available_at = now()")
    assert await n.fan_out() == 1
    # without any settle time the event goes out at once
    rid2 = await create_request(conn)
    await add_attempt(conn, rid2, 1, finished=False, outcome=None)
    await set_state(conn, rid2, "failed", "failed", "queued", outcome="no_agent")
    assert await notifier(db, settle_timeout=0.0).fan_out() == 2


async def test_events_without_subscribers_are_marked_done(db: Database, conn: asyncpg.Connection) -> None:
    rid = await create_request(conn, site="other")
    n = Notifier(db, NotificationsConfig(), node="t")
    assert await n.fan_out() == 1
    row = await conn.fetchrow("SELECT fanned_out_at, payload FROM event_outbox WHERE request_id = $1", rid)
    assert row["fanned_out_at"] is not None and row["payload"] is None
    assert await conn.fetchval("SELECT count(*) FROM notification_deliveries") == 0
    # purged once older than keep
    n.config = NotificationsConfig(keep=0.001)
    await conn.execute("UPDATE event_outbox SET fanned_out_at = now() - interval '1 hour'")
    assert await n.purge() == 1
    assert await conn.fetchval("SELECT count(*) FROM event_outbox") == 0


async def test_without_any_subscription_a_batch_is_done_in_one_statement(db: Database,
                                                                           conn: asyncpg.Connection) -> None:
    rids = [await create_request(conn, site="shop") for _ in range(5)]
    n = Notifier(db, NotificationsConfig(), node="t")
    assert not n.subscribed
    assert await n.fan_out() == 5
    rows = await conn.fetch("SELECT fanned_out_at, payload FROM event_outbox WHERE request_id = ANY($1::uuid[])", rids)
    assert len(rows) == 5 and all(r["fanned_out_at"] is not None and r["payload"] is None for r in rows)
    assert await conn.fetchval("SELECT count(*) FROM notification_deliveries") == 0
    assert await n.fan_out() == 0  # nothing left


async def test_every_table_and_column_is_commented(conn: asyncpg.Connection) -> None:
    missing = await conn.fetch(
        """
        SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relname IN ('event_outbox', 'notification_deliveries') AND a.attnum > 0 AND NOT a.attisdropped
          AND col_description(c.oid, a.attnum) IS NULL
        """
    )
    assert [tuple(r) for r in missing] == []
    assert await conn.fetchval("SELECT obj_description('event_outbox'::regclass, 'pg_class')") is not None
    assert await conn.fetchval("SELECT obj_description('notification_deliveries'::regclass, 'pg_class')") is not None
