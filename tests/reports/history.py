"""A small, fully known call history written straight into the tables (what intake and the dialer write).

Window of the reports: May 2024 (``SINCE`` .. ``UNTIL``). Sites: shop (Europe/Berlin, UTC+2 in May),
blog (America/New_York, UTC-4 in May). Trunks: carrier, backup; PJSIP/201 is an internal endpoint.

R1  shop  /widgets?utm..  spring      berlin   Mon 05-06 10:00Z  ring-all of 3, +4930111 wins, connected, talk 290 s
R2  shop  /widgets        spring      berlin   Mon 05-06 11:00Z  attempt 1: 111 rings out, 222 accepts, visitor busy;
                                                                 retry: 111 accepts, connected, talk 120 s
R3  shop  /contact        -           hamburg  Tue 05-07 08:00Z  4940111 declines, 4940222 rings out: no_agent
R4  shop  /widgets        spring      berlin   Sat 05-11 20:00Z  after hours: deferred to Mon 07:00Z; accepted,
                                                                 visitor does not answer
R5  blog  /post-1         newsletter  support  Wed 05-08 14:00Z  scheduled for the visitor's preferred time (in hours),
                                                                 cancelled before dialling
R6  blog  /post-1         newsletter  support  Wed 05-08 14:30Z  carrier congestion (34), backup trunk: accepted,
                                                                 visitor unreachable (cause 1)
R7  blog  /pricing        -           -        Thu 05-09 09:00Z  rejected at intake
R8  shop  /contact        -           -        Mon 05-20 09:00Z  still queued
R9  shop  /widgets        spring      berlin   Sat 04-20 10:00Z  OUTSIDE the window: one ring, no answer
R10 shop  /contact        -           hamburg  Tue 05-14 09:00Z  4940111 rings out, 4940222 busy: no_agent
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

SINCE = datetime(2024, 5, 1, tzinfo=UTC)
UNTIL = datetime(2024, 6, 1, tzinfo=UTC)
ZONES = {"shop": "Europe/Berlin", "blog": "America/New_York"}
FINAL = ("completed", "failed", "cancelled", "expired", "rejected")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rid(key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"callswitch-test/{key}")


async def add_request(
    conn: asyncpg.Connection, key: str, *, site: str, created: str, page: str, state: str,
    campaign: str | None = None, destination: str | None = None, outcome: str | None = None,
    first_state: str = "queued", due_at: str | None = None, preferred_at: str | None = None, attempts: int = 0,
    phone: str = "+491701234567",
) -> uuid.UUID:
    created_at = t(created)
    finished = created_at + timedelta(hours=3) if state in FINAL else None
    request_id = rid(key)
    await conn.execute(
        """INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country, page_url,
               referrer, pages_visited, utm_source, utm_campaign, product, attributes, client_ip, user_agent,
               idempotency_key, request_fingerprint, created_at, state, state_changed_at, due_at, attempts,
               outcome, finished_at, route_destination, route_rule, preferred_at)
           VALUES ($1, $2, $3, $4, $5, 'DE', $6, 'https://www.google.com/search?q=widgets+berlin',
               ARRAY[$6, 'https://shop.example/?ref=mail&email=erika@example.org'], 'google', $7, 'widget',
               '{"product": "widget", "email": "erika@example.org", "company_size": 12}', '203.0.113.9',
               'Mozilla/5.0 test', $8, 'f00d', $9::timestamptz, $10, $9::timestamptz,
               coalesce($11::timestamptz, $9::timestamptz), $12, $13, $14, $15,
               CASE WHEN $15::text IS NULL THEN NULL ELSE 'rules[0] (all)' END, $16)""",
        request_id, site, f"Visitor {key}", phone.replace("+49", "0"), phone, page, campaign, f"idem-{key}",
        created_at, state, t(due_at) if due_at else None, attempts, outcome, finished, destination,
        t(preferred_at) if preferred_at else None,
    )
    detail: dict[str, Any] = {"page_url": page}
    if destination:
        detail.update(rule="rules[0] (all)", destination=destination)
    if first_state == "scheduled" and due_at:
        detail["due_at"] = t(due_at).isoformat()
    await add_event(conn, request_id, created_at, "accepted", None, first_state, "intake", detail)
    return request_id


async def add_event(
    conn: asyncpg.Connection, request_id: uuid.UUID, at: datetime, event: str, from_state: str | None,
    to_state: str | None, actor: str = "dialer", detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO callback_events (request_id, at, event, from_state, to_state, actor, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        request_id, at, event, from_state, to_state, actor, json.dumps(detail or {}),
    )


async def add_leg(
    conn: asyncpg.Connection, request_id: uuid.UUID, attempt: int, leg: str, *, dest: str | None,
    member: str | None, trunk: str | None, orig: str, ended: str | None, disposition: str | None,
    answered: str | None = None, accepted: str | None = None, cause: int | None = None,
    number: str | None = None,
) -> None:
    answered_at = t(answered) if answered else None
    ended_at = t(ended) if ended else None
    billable = None
    if ended_at is not None:
        billable = int((ended_at - answered_at).total_seconds()) if answered_at else 0
    await conn.execute(
        """INSERT INTO call_legs (request_id, attempt, leg, destination, member, number_dialled, trunk,
               originated_at, answered_at, accepted_at, ended_at, disposition, hangup_cause, billable_seconds,
               leg_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        request_id, attempt, leg, dest, member, number or member or "+491701234567", trunk, t(orig), answered_at,
        t(accepted) if accepted else None, ended_at, disposition, cause, billable, uuid.uuid4().hex,
    )


async def add_attempt(conn: asyncpg.Connection, request_id: uuid.UUID, attempt: int, started: str, outcome: str,
                      destination: str) -> None:
    await conn.execute(
        "INSERT INTO call_attempts (request_id, attempt, node, started_at, finished_at, route_rule, destination, "
        "outcome) VALUES ($1, $2, 'node-a', $3, $3, 'rules[0] (all)', $4, $5)",
        request_id, attempt, t(started), destination, outcome,
    )


async def load_history(conn: asyncpg.Connection) -> None:
    W = "https://shop.example/widgets"
    # R1: ring-all, one winner, connected
    r1 = await add_request(conn, "R1", site="shop", created="2024-05-06 10:00:00", page=W + "?utm_source=g#top",
                           campaign="spring", destination="berlin", state="completed", outcome="connected",
                           attempts=1)
    await add_attempt(conn, r1, 1, "2024-05-06 10:00:04", "connected", "berlin")
    await add_leg(conn, r1, 1, "agent", dest="berlin", member="+4930111", trunk="carrier", orig="2024-05-06 10:00:05",
                  answered="2024-05-06 10:00:15", accepted="2024-05-06 10:00:20", ended="2024-05-06 10:05:20",
                  disposition="accepted", cause=16)
    await add_leg(conn, r1, 1, "agent", dest="berlin", member="+4930222", trunk="carrier", orig="2024-05-06 10:00:05",
                  ended="2024-05-06 10:00:22", disposition="answered_elsewhere", cause=26)
    await add_leg(conn, r1, 1, "agent", dest="berlin", member="PJSIP/201", trunk=None, orig="2024-05-06 10:00:05",
                  ended="2024-05-06 10:00:20", disposition="answered_elsewhere", cause=26)
    await add_leg(conn, r1, 1, "customer", dest="berlin", member=None, trunk="carrier", orig="2024-05-06 10:00:21",
                  answered="2024-05-06 10:00:30", ended="2024-05-06 10:05:20", disposition="answered", cause=16)
    for at, ev, a, b in (("10:00:04", "dialing", "queued", "dialing_agent"),
                         ("10:00:15", "agent_answered", "dialing_agent", "agent_answered"),
                         ("10:00:20", "agent_accepted", "agent_answered", "accepted"),
                         ("10:00:30", "customer_answered", "dialing_customer", "connected"),
                         ("10:05:20", "hangup", "connected", "completed")):
        await add_event(conn, r1, t(f"2024-05-06 {at}"), ev, a, b)

    # R2: retry after a busy visitor
    r2 = await add_request(conn, "R2", site="shop", created="2024-05-06 11:00:00", page=W, campaign="spring",
                           destination="berlin", state="completed", outcome="connected", attempts=2,
                           phone="+491709999999")
    await add_attempt(conn, r2, 1, "2024-05-06 11:00:04", "customer_busy", "berlin")
    await add_attempt(conn, r2, 2, "2024-05-06 11:09:59", "connected", "berlin")
    await add_leg(conn, r2, 1, "agent", dest="berlin", member="+4930111", trunk="carrier", orig="2024-05-06 11:00:05",
                  ended="2024-05-06 11:00:25", disposition="no_answer", cause=19)
    await add_leg(conn, r2, 1, "agent", dest="berlin", member="+4930222", trunk="carrier", orig="2024-05-06 11:00:26",
                  answered="2024-05-06 11:00:30", accepted="2024-05-06 11:00:35", ended="2024-05-06 11:00:41",
                  disposition="accepted", cause=16)
    await add_leg(conn, r2, 1, "customer", dest="berlin", member=None, trunk="carrier", orig="2024-05-06 11:00:36",
                  ended="2024-05-06 11:00:40", disposition="busy", cause=17, number="+491709999999")
    await add_event(conn, r2, t("2024-05-06 11:00:41"), "retry", "dialing_customer", "scheduled")
    await add_leg(conn, r2, 2, "agent", dest="berlin", member="+4930111", trunk="carrier", orig="2024-05-06 11:10:00",
                  answered="2024-05-06 11:10:10", accepted="2024-05-06 11:10:12", ended="2024-05-06 11:12:20",
                  disposition="accepted", cause=16)
    await add_leg(conn, r2, 2, "customer", dest="berlin", member=None, trunk="carrier", orig="2024-05-06 11:10:13",
                  answered="2024-05-06 11:10:20", ended="2024-05-06 11:12:20", disposition="answered", cause=16,
                  number="+491709999999")

    # R3: a decline, then nobody: no_agent
    r3 = await add_request(conn, "R3", site="shop", created="2024-05-07 08:00:00", page="https://shop.example/contact",
                           destination="hamburg", state="failed", outcome="no_agent", attempts=1,
                           phone="+491701111111")
    await add_leg(conn, r3, 1, "agent", dest="hamburg", member="+4940111", trunk="carrier", orig="2024-05-07 08:00:02",
                  answered="2024-05-07 08:00:12", ended="2024-05-07 08:00:20", disposition="declined", cause=16)
    await add_leg(conn, r3, 1, "agent", dest="hamburg", member="+4940222", trunk="carrier", orig="2024-05-07 08:00:21",
                  ended="2024-05-07 08:00:41", disposition="no_answer", cause=19)

    # R4: after hours (Saturday night), deferred to Monday's opening; visitor does not answer
    r4 = await add_request(conn, "R4", site="shop", created="2024-05-11 20:00:00", page=W, campaign="spring",
                           destination="berlin", state="failed", outcome="customer_no_answer", attempts=1,
                           first_state="scheduled", due_at="2024-05-13 07:00:00", phone="+491702222222")
    await add_event(conn, r4, t("2024-05-13 07:00:01"), "dialing", "scheduled", "dialing_agent")
    await add_leg(conn, r4, 1, "agent", dest="berlin", member="+4930111", trunk="carrier", orig="2024-05-13 07:00:02",
                  answered="2024-05-13 07:00:10", accepted="2024-05-13 07:00:12", ended="2024-05-13 07:00:44",
                  disposition="accepted", cause=16)
    await add_leg(conn, r4, 1, "customer", dest="berlin", member=None, trunk="carrier", orig="2024-05-13 07:00:13",
                  ended="2024-05-13 07:00:43", disposition="no_answer", cause=19, number="+491702222222")

    # R5: scheduled for the visitor's preferred time (inside opening hours): NOT after hours; cancelled
    await add_request(conn, "R5", site="blog", created="2024-05-08 14:00:00", page="https://blog.example/post-1",
                      campaign="newsletter", destination="support", state="cancelled", outcome="cancelled",
                      first_state="scheduled", due_at="2024-05-08 16:00:00", preferred_at="2024-05-08 16:00:00",
                      phone="+12125550199")

    # R6: trunk failover after congestion; visitor unreachable
    r6 = await add_request(conn, "R6", site="blog", created="2024-05-08 14:30:00", page="https://blog.example/post-1",
                           campaign="newsletter", destination="support", state="failed",
                           outcome="customer_unreachable", attempts=1, phone="+12125550142")
    await add_leg(conn, r6, 1, "agent", dest="support", member="+12125550100", trunk="carrier",
                  orig="2024-05-08 14:30:02", ended="2024-05-08 14:30:03", disposition="congestion", cause=34)
    await add_leg(conn, r6, 1, "agent", dest="support", member="+12125550100", trunk="backup",
                  orig="2024-05-08 14:30:04", answered="2024-05-08 14:30:10", accepted="2024-05-08 14:30:15",
                  ended="2024-05-08 14:30:20", disposition="accepted", cause=16)
    await add_leg(conn, r6, 1, "customer", dest="support", member=None, trunk="backup", orig="2024-05-08 14:30:16",
                  ended="2024-05-08 14:30:18", disposition="unreachable", cause=1, number="+12125550142")

    # R7: rejected at intake
    await add_request(conn, "R7", site="blog", created="2024-05-09 09:00:00", page="https://blog.example/pricing",
                      state="rejected", outcome="rejected", phone="+12125550111")
    # R8: still queued
    await add_request(conn, "R8", site="shop", created="2024-05-20 09:00:00", page="https://shop.example/contact",
                      state="queued", phone="+491703333333")
    # R9: outside the window
    r9 = await add_request(conn, "R9", site="shop", created="2024-04-20 10:00:00", page=W, campaign="spring",
                           destination="berlin", state="failed", outcome="no_agent", attempts=1,
                           phone="+491704444444")
    await add_leg(conn, r9, 1, "agent", dest="berlin", member="+4930111", trunk="carrier", orig="2024-04-20 10:00:05",
                  ended="2024-04-20 10:00:25", disposition="no_answer", cause=19)
    # R10: nobody picks up at hamburg
    r10 = await add_request(conn, "R10", site="shop", created="2024-05-14 09:00:00",
                            page="https://shop.example/contact", destination="hamburg", state="failed",
                            outcome="no_agent", attempts=1, phone="+491705555555")
    await add_leg(conn, r10, 1, "agent", dest="hamburg", member="+4940111", trunk="carrier",
                  orig="2024-05-14 09:00:02", ended="2024-05-14 09:00:22", disposition="no_answer", cause=19)
    await add_leg(conn, r10, 1, "agent", dest="hamburg", member="+4940222", trunk="carrier",
                  orig="2024-05-14 09:00:23", ended="2024-05-14 09:00:24", disposition="busy", cause=17)
