"""End to end: HTTP intake -> Postgres -> dialer -> AMI simulator (real Asterisk 22 flows) -> CDR rows."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callswitch.dialer.worker import Dialer
from callswitch.testing.pbx import lab_behaviour
from tests.dialer.conftest import CONFIG, ROUTING, StackFactory, start_stack, stop_stack


async def test_agent_accepts_and_visitor_is_connected(stack: StackFactory) -> None:
    st = await stack()
    rid = await st.post("+17735550200")
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("completed", "connected")
    events = [r["to_state"] for r in await st.fetch(
        "SELECT to_state FROM callback_events WHERE request_id = $1::uuid ORDER BY id", rid)]
    assert events[0] == "queued" and events[-1] == "completed"
    for state in ("dialing_agent", "agent_answered", "accepted", "dialing_customer", "connected"):
        assert state in events
    legs = await st.fetch("SELECT * FROM call_legs WHERE request_id = $1::uuid ORDER BY id", rid)
    assert [(leg["leg"], leg["disposition"]) for leg in legs] == [("agent", "accepted"), ("customer", "answered")]
    agent, customer = legs
    assert agent["number_dialled"] == "+13125550100" and agent["trunk"] == "carrier"
    assert agent["answered_at"] and agent["accepted_at"] and agent["ended_at"]
    assert customer["answered_at"] and customer["ended_at"] and customer["billable_seconds"] is not None
    assert len(st.sim.originates) == 1  # dialled exactly once
    sent = st.sim.originates[0].variables
    assert sent["CS_REQUEST_ID"] == rid and sent["CS_CUSTOMER"] == "17735550200"
    assert (sent["CS_SAY_DIGITS"], sent["CS_CONFIRM_TIMEOUT"], sent["CS_MAX_REPEATS"]) == ("4", "6", "2")
    assert await st.fetch("SELECT * FROM dialer_channels") == []  # capacity given back


async def test_busy_then_no_answer_then_accepting_member(stack: StackFactory) -> None:
    st = await stack(members='"+13125550130", "+13125550120", "+13125550101"')
    rid = await st.post("+17735550200")
    row = await st.wait_final(rid)
    assert row["outcome"] == "connected"
    legs = await st.fetch("SELECT leg, number_dialled, disposition FROM call_legs WHERE request_id = $1::uuid "
                          "ORDER BY id", rid)
    assert [(r["number_dialled"], r["disposition"]) for r in legs if r["leg"] == "agent"] == [
        ("+13125550130", "busy"), ("+13125550120", "no_answer"), ("+13125550101", "accepted")]


async def test_decline_overflows_to_the_next_destination(stack: StackFactory) -> None:
    st = await stack(members='"+13125550110"')
    # the central overflow destination accepts: the request is connected through it
    rid = await st.post("+17735550200")
    row = await st.wait_final(rid)
    legs = await st.fetch("SELECT destination, disposition FROM call_legs WHERE request_id = $1::uuid AND "
                          "leg = 'agent' ORDER BY id", rid)
    assert [(r["destination"], r["disposition"]) for r in legs] == [("store", "declined"), ("central", "accepted")]
    assert row["outcome"] == "connected"


async def test_customer_busy_is_retried_then_fails(stack: StackFactory) -> None:
    st = await stack()
    rid = await st.post("+17735550230")
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("failed", "customer_busy")
    assert row["attempts"] == 2  # one retry (customer_retries: 1)
    attempts = await st.fetch("SELECT attempt, outcome FROM call_attempts WHERE request_id = $1::uuid ORDER BY 1", rid)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "customer_busy"), (2, "customer_busy")]
    assert len(st.sim.originates) == 2


async def test_simultaneous_ring_first_acceptor_wins(stack: StackFactory) -> None:
    # the first member accepts, the second declines, the third never answers: the losers are released
    st = await stack(members='"+13125550100", "+13125550110", "+13125550120"', strategy="simultaneous")
    rid = await st.post("+17735550200")
    row = await st.wait_final(rid)
    assert row["outcome"] == "connected"
    legs = await st.fetch("SELECT number_dialled, disposition FROM call_legs WHERE request_id = $1::uuid "
                          "AND leg = 'agent' ORDER BY number_dialled", rid)
    dispositions = {r["number_dialled"]: r["disposition"] for r in legs}
    assert dispositions["+13125550100"] == "accepted"
    assert dispositions["+13125550110"] in ("declined", "answered_elsewhere")  # presses 2 as the winner accepts
    assert dispositions["+13125550120"] in ("answered_elsewhere", "cancelled", "no_answer")
    assert len(st.sim.originates) == 3
    assert sum(1 for r in await st.fetch("SELECT 1 FROM call_legs WHERE request_id = $1::uuid AND leg = 'customer'",
                                          rid)) == 1


async def test_visitor_cancels_while_the_agent_is_ringing(stack: StackFactory) -> None:
    st = await stack(members='"+13125550120"')  # rings without answering
    st.sim.time_scale = 0.5  # rings for seconds, not milliseconds: the cancel arrives while it rings
    rid = await st.post("+17735550200")
    async with asyncio.timeout(10):
        while not st.sim.originates:
            await asyncio.sleep(0.02)
    resp = await st.http.post(f"/v1/callbacks/{rid}/cancel")
    assert resp.status == 200
    row = await st.wait_final(rid)
    assert row["state"] == "cancelled"
    legs = await st.fetch("SELECT leg, disposition FROM call_legs WHERE request_id = $1::uuid", rid)
    assert [r["leg"] for r in legs] == ["agent"]  # the visitor was never dialled
    assert await st.fetch("SELECT * FROM dialer_channels") == []


def agents_accept_visitors_talk(number: str) -> str:
    digits = number.lstrip("+")
    return lab_behaviour(number) if digits.startswith("131255501") else "hangs_up"


async def test_two_daemons_share_200_requests_and_dial_each_leg_once(stack: StackFactory) -> None:
    members = ", ".join(f'"+131255501{i:02d}"' for i in range(10))  # 10 accepting agents
    st = await stack(members=members, behaviour=agents_accept_visitors_talk)
    second = Dialer(st.dialer.config, st.dialer.db, st.dialer.rules, node="second-node")
    await second.start()
    try:
        assert await second.clients[0].wait_connected(5)
        ids = [await st.post(f"+1773555{3000 + i}") for i in range(200)]
        rows = [await st.wait_final(rid, timeout=120) for rid in ids]
    finally:
        await second.stop(deadline=5)
    assert [r["outcome"] for r in rows] == ["connected"] * 200
    channel_ids = [o.headers.get("ChannelId") for o in st.sim.originates]
    assert len(channel_ids) == len(set(channel_ids))  # no leg was ever originated twice
    per_request = await st.fetch(
        """SELECT request_id, count(*) FILTER (WHERE leg = 'customer') AS customer_legs,
                  count(*) FILTER (WHERE disposition = 'accepted') AS accepted,
                  count(DISTINCT attempt) AS attempts
           FROM call_legs GROUP BY request_id""")
    assert len(per_request) == 200
    assert all(r["customer_legs"] == 1 and r["accepted"] == 1 for r in per_request)
    nodes = await st.fetch("SELECT node, count(*) FROM call_attempts GROUP BY node")
    assert {r["node"] for r in nodes} == {"test-node", "second-node"}  # both did work
    assert await st.fetch("SELECT * FROM dialer_channels") == []


async def test_deferred_request_is_routed_again_when_due(stack: StackFactory, tmp_path: Path) -> None:
    st = await stack()
    routing = tmp_path / "routing.yaml"
    original = routing.read_text()
    today = datetime.now(UTC).date()
    closed = original.replace("destinations:", textwrap.dedent(f"""\
        schedules:
          hours:
            weekly: {{mon-sun: "00:00-24:00"}}
            exceptions:
              - {{from: {(today - timedelta(days=1)).isoformat()}, to: {(today + timedelta(days=2)).isoformat()},
                 closed: true}}
        destinations:""")).replace("    overflow: central\n", "    overflow: central\n    schedule: hours\n"
                                  "    when_closed: wait\n")
    routing.write_text(closed)
    assert st.dialer.rules.reload(), st.dialer.rules.last_error
    rid = await st.post("+17735550200")
    rows = await st.fetch("SELECT state, due_at FROM callback_requests WHERE id = $1::uuid", rid)
    assert rows[0]["state"] == "scheduled" and rows[0]["due_at"].date() > today
    # Time passes; when the request comes due the store is still closed: it is deferred again, not dialled.
    await st.fetch("UPDATE callback_requests SET due_at = now() WHERE id = $1::uuid", rid)
    st.dialer.wake()
    async with asyncio.timeout(10):
        while True:
            events = await st.fetch("SELECT event FROM callback_events WHERE request_id = $1::uuid", rid)
            if any(e["event"] == "deferred" for e in events):
                break
            await asyncio.sleep(0.05)
    assert st.sim.originates == []
    # The store opens (the admin removed the closure) and the request comes due: now it is dialled.
    routing.write_text(original)
    assert st.dialer.rules.reload()
    await st.fetch("UPDATE callback_requests SET due_at = now() WHERE id = $1::uuid", rid)
    st.dialer.wake()
    row = await st.wait_final(rid)
    assert row["outcome"] == "connected" and len(st.sim.originates) == 1


async def test_a_number_dialled_enough_today_is_not_dialled_again(clean_db: str, tmp_path: Path) -> None:
    """dialing.max_calls_per_number_per_day counts visitor legs in Postgres: past it, a new request for the
    number fails (number_daily_cap) without a single Originate."""
    routing = ROUTING.replace("{members}", '"+13125550100"').replace("{strategy}", "sequential") \
        .replace("{mode}", "agent_first")
    config = CONFIG.replace("  customer_timeout: 10\n", "  customer_timeout: 10\n  max_calls_per_number_per_day: 1\n")
    st = await start_stack(clean_db, tmp_path, routing, config=config)
    try:
        first = await st.post("+17735550200")
        assert (await st.wait_final(first))["outcome"] == "connected"
        second = await st.post("+17735550200")
        row = await st.wait_final(second)
        other = await st.post("+17735550201")  # another number is not concerned
        assert (await st.wait_final(other))["outcome"] == "connected"
    finally:
        await stop_stack(st)
    assert (row["state"], row["outcome"]) == ("failed", "number_daily_cap")
    assert [o.headers["Channel"] for o in st.sim.originates].count("PJSIP/+13125550100@carrier") == 2
    assert await st.fetch("SELECT 1 FROM call_legs WHERE request_id = $1::uuid", second) == []
