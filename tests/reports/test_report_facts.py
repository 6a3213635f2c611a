"""cs_request_facts (migration 0013) is what the base tables say, after any kind of write.

The triggers keep it up to date row by row; cs_request_facts_rebuild() computes it from scratch. After the
known history and after updates, deletes and truncates of every kind, both must agree, and the per-request
views built on it must give what migration 0010's definitions (joined per request from the base tables) give.
"""

from __future__ import annotations

import asyncpg

# cs_request_funnel as migration 0010 defined it: every request joined to its first event and its legs.
FUNNEL_0010 = """
WITH c AS (
    SELECT
        r.id AS request_id, r.site, r.created_at, cs_page_key(r.page_url) AS page, r.utm_source,
        r.utm_campaign AS campaign, r.route_destination AS destination, r.state, r.outcome, r.finished_at,
        r.attempts,
        (r.outcome IS NOT DISTINCT FROM 'connected' OR r.state IN ('connected', 'completed')) AS connected,
        coalesce(fe.to_state = 'scheduled'
                 AND (r.preferred_at IS NULL OR (fe.detail ->> 'due_at')::timestamptz > r.preferred_at), false)
            AS after_hours,
        CASE WHEN fe.to_state = 'scheduled' THEN (fe.detail ->> 'due_at')::timestamptz END AS scheduled_for
    FROM callback_requests r
    LEFT JOIN LATERAL (
        SELECT e.to_state, e.detail FROM callback_events e WHERE e.request_id = r.id ORDER BY e.id LIMIT 1
    ) fe ON true
)
SELECT c.request_id, c.site, c.created_at, c.page, c.utm_source, c.campaign, c.destination, c.state, c.outcome,
    c.finished_at, c.after_hours, c.scheduled_for, c.attempts,
    coalesce(l.agent_legs, 0) AS agent_legs, coalesce(l.agent_declines, 0) AS agent_declines,
    l.agent_rung_at, l.agent_answered_at, l.accepted_at, l.accepted_destination, l.accepted_member,
    l.visitor_dialled_at, l.visitor_answered_at, c.connected,
    CASE WHEN c.connected THEN l.visitor_answered_at END AS connected_at,
    CASE WHEN c.connected THEN l.talk_seconds END AS talk_seconds,
    CASE WHEN c.connected THEN extract(epoch FROM l.visitor_answered_at - c.created_at) END AS speed_to_lead_s,
    CASE
        WHEN c.connected THEN 'connected'
        WHEN l.visitor_answered_at IS NOT NULL THEN 'visitor_answered'
        WHEN l.accepted_at IS NOT NULL THEN 'accepted'
        WHEN l.agent_answered_at IS NOT NULL THEN 'agent_answered'
        WHEN l.agent_rung_at IS NOT NULL THEN 'agent_rung'
        ELSE 'requested'
    END AS furthest_step,
    CASE
        WHEN c.connected THEN 'connected'
        WHEN c.finished_at IS NULL AND c.state IN ('queued', 'scheduled') THEN 'waiting'
        WHEN c.finished_at IS NULL THEN 'in_progress'
        ELSE coalesce(c.outcome, c.state)
    END AS stop_reason
FROM c
LEFT JOIN LATERAL (
    SELECT
        count(*) FILTER (WHERE cl.leg = 'agent') AS agent_legs,
        count(*) FILTER (WHERE cl.leg = 'agent' AND cl.disposition = 'declined') AS agent_declines,
        min(cl.originated_at) FILTER (WHERE cl.leg = 'agent') AS agent_rung_at,
        min(cl.answered_at) FILTER (WHERE cl.leg = 'agent') AS agent_answered_at,
        min(cl.accepted_at) FILTER (WHERE cl.leg = 'agent') AS accepted_at,
        (array_agg(cl.destination ORDER BY cl.accepted_at DESC)
            FILTER (WHERE cl.leg = 'agent' AND cl.accepted_at IS NOT NULL))[1] AS accepted_destination,
        (array_agg(cl.member ORDER BY cl.accepted_at DESC)
            FILTER (WHERE cl.leg = 'agent' AND cl.accepted_at IS NOT NULL))[1] AS accepted_member,
        min(cl.originated_at) FILTER (WHERE cl.leg = 'customer') AS visitor_dialled_at,
        max(cl.answered_at) FILTER (WHERE cl.leg = 'customer') AS visitor_answered_at,
        sum(cl.billable_seconds) FILTER (WHERE cl.leg = 'customer' AND cl.answered_at IS NOT NULL) AS talk_seconds
    FROM call_legs cl WHERE cl.request_id = c.request_id
) l ON true
"""

# The rings and offers kept per request, as the views over call_legs give them.
RINGS_FROM_VIEW = """
SELECT a.request_id, a.destination, a.member, a.answered_at IS NOT NULL AS answered, a.result, a.time_to_answer_s
FROM cs_agent_rings a"""
RINGS_FROM_FACTS = """
SELECT f.request_id, r.destination, r.member, r.answered, r.result, r.time_to_answer_s
FROM cs_request_facts f CROSS JOIN LATERAL unnest(f.rings) r"""
OFFERS_FROM_VIEW = """
SELECT o.request_id, o.destination, o.first_answered_at IS NOT NULL AS answered, o.result, o.time_to_answer_s
FROM cs_destination_offers o"""
OFFERS_FROM_FACTS = """
SELECT f.request_id, o.destination, o.answered, o.result, o.time_to_answer_s
FROM cs_request_facts f CROSS JOIN LATERAL unnest(f.offers) o"""


async def differences(conn: asyncpg.Connection, a: str, b: str) -> tuple[int, int]:
    """Rows only in ``a`` and rows only in ``b`` (as multisets)."""
    only_a = await conn.fetchval(f"SELECT count(*) FROM (({a}) EXCEPT ALL ({b})) x")
    only_b = await conn.fetchval(f"SELECT count(*) FROM (({b}) EXCEPT ALL ({a})) x")
    return only_a, only_b


async def assert_consistent(conn: asyncpg.Connection) -> None:
    assert await differences(conn, "SELECT * FROM cs_request_funnel", FUNNEL_0010) == (0, 0)
    assert await differences(conn, RINGS_FROM_VIEW, RINGS_FROM_FACTS) == (0, 0)
    assert await differences(conn, OFFERS_FROM_VIEW, OFFERS_FROM_FACTS) == (0, 0)
    # what the triggers kept is what a rebuild computes
    await conn.execute("DROP TABLE IF EXISTS kept; CREATE TEMP TABLE kept AS SELECT * FROM cs_request_facts")
    n = await conn.fetchval("SELECT cs_request_facts_rebuild()")
    assert n == await conn.fetchval("SELECT count(*) FROM callback_requests")
    assert await differences(conn, "SELECT * FROM kept", "SELECT * FROM cs_request_facts") == (0, 0)


async def test_facts_follow_the_history_as_written(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("SELECT count(*) FROM cs_request_facts") == 10
    await assert_consistent(conn)


async def test_facts_follow_updates_and_deletes(conn: asyncpg.Connection) -> None:
    # the dialer's updates of a leg: picked up, accepted, hung up; a leg that is still ringing
    await conn.execute("""
        UPDATE call_legs SET answered_at = originated_at + interval '4 seconds', disposition = 'declined'
        WHERE id = (SELECT min(id) FROM call_legs WHERE leg = 'agent' AND answered_at IS NULL)""")
    await conn.execute("UPDATE call_legs SET ended_at = NULL, disposition = NULL "
                       "WHERE id = (SELECT max(id) FROM call_legs WHERE leg = 'agent')")
    await conn.execute("UPDATE call_legs SET billable_seconds = billable_seconds + 7 WHERE leg = 'customer'")
    await conn.execute("DELETE FROM call_legs WHERE id = (SELECT min(id) FROM call_legs)")
    # a leg moved to another request, a request's state changes, purge-like rewrites
    await conn.execute("""
        UPDATE call_legs SET request_id = (SELECT id FROM callback_requests ORDER BY created_at LIMIT 1)
        WHERE id = (SELECT max(id) FROM call_legs WHERE leg = 'customer')""")
    await conn.execute("UPDATE callback_requests SET state = 'completed', outcome = 'connected', "
                       "finished_at = coalesce(finished_at, now()) WHERE state = 'queued'")
    await conn.execute("UPDATE callback_requests SET page_url = cs_page_key(page_url), utm_campaign = NULL "
                       "WHERE site = 'blog'")
    # the first event rewritten (scheduled for later), then removed
    await conn.execute("""
        UPDATE callback_events SET to_state = 'scheduled', detail = detail || '{"due_at": "2024-05-30T07:00:00+00:00"}'
        WHERE id = (SELECT min(id) FROM callback_events)""")
    await assert_consistent(conn)
    await conn.execute("DELETE FROM callback_events WHERE id IN "
                       "(SELECT min(id) FROM callback_events GROUP BY request_id ORDER BY 1 LIMIT 3)")
    await conn.execute("DELETE FROM callback_requests "
                       "WHERE id = (SELECT id FROM callback_requests ORDER BY id DESC LIMIT 1)")
    await assert_consistent(conn)


async def test_facts_follow_truncates(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE call_legs")
    await assert_consistent(conn)
    await conn.execute("TRUNCATE callback_events CASCADE")
    await assert_consistent(conn)
    assert await conn.fetchval("SELECT count(*) FROM cs_request_facts WHERE rings IS NOT NULL "
                               "OR first_event_id IS NOT NULL") == 0
