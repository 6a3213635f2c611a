"""The routing decision is made at intake and stored with the request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from callswitch.db.pool import init_connection
from tests.intake.helpers import browser_headers, valid_body
from tests.openapi_check import check_response

ROUTING = """\
version: 1
defaults:
  timezone: America/Chicago
schedules:
  closed-until-2099:
    weekly:
      mon-sun: "09:00-17:00"
    exceptions:
      - {from: %(today)s, to: %(later)s, closed: true}
destinations:
  widgets: {members: [PJSIP/201, PJSIP/202], strategy: sequential, overflow: central}
  central: {members: [PJSIP/301]}
  night: {members: [PJSIP/401], schedule: closed-until-2099, when_closed: wait}
rules:
  - name: spam
    when: {name: {regex: "(?i)^test"}}
    reject: "Sorry, test requests are not called back."
  - name: widgets
    when: {product: widget}
    route: widgets
  - name: night-desk
    when: {product: lamp}
    route: night
default: central
"""


def routing_text() -> str:
    today = datetime.now(UTC).date()
    return ROUTING % {"today": today.isoformat(), "later": today.replace(year=today.year + 1).isoformat()}


async def fetch_row(dsn: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        row = await conn.fetchrow("SELECT * FROM callback_requests")
        event = await conn.fetchrow("SELECT * FROM callback_events")
    finally:
        await conn.close()
    return row, event


async def post(client: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/v1/callbacks", json=body, headers=browser_headers())
    data = await resp.json()
    check_response("POST", "/v1/callbacks", resp.status, resp.headers, data)
    return resp.status, data


async def test_matching_rule_and_destination_are_stored(make_client: Any, clean_db: str) -> None:
    client = await make_client(routing=routing_text())
    status, data = await post(client, valid_body())
    assert (status, data["state"]) == (202, "queued")
    row, event = await fetch_row(clean_db)
    assert row["route_rule"] == "rules[1] (widgets)"
    assert row["route_destination"] == "widgets"
    assert row["route_chain"] == ["widgets", "central"]
    assert event["detail"]["rule"] == "rules[1] (widgets)" and event["detail"]["destination"] == "widgets"


async def test_default_route_when_no_rule_matches(make_client: Any, clean_db: str) -> None:
    client = await make_client(routing=routing_text())
    status, _ = await post(client, valid_body(attributes={"product": "sofa"}))
    assert status == 202
    row, _ = await fetch_row(clean_db)
    assert (row["route_rule"], row["route_destination"]) == ("default", "central")


async def test_reject_rule_answers_the_visitor_and_records_the_request(make_client: Any, clean_db: str) -> None:
    client = await make_client(routing=routing_text())
    status, data = await post(client, valid_body(name="Test Person"))
    assert (status, data["state"]) == (200, "rejected")
    assert data["message"] == "Sorry, test requests are not called back."
    row, event = await fetch_row(clean_db)
    assert (row["state"], row["outcome"]) == ("rejected", "rejected")
    assert row["outcome_detail"] == "Sorry, test requests are not called back." and row["finished_at"] is not None
    assert event["to_state"] == "rejected"
    resp = await client.get(f"/v1/callbacks/{data['id']}")
    assert (await resp.json())["message"] == "Sorry, test requests are not called back."


async def test_closed_destination_with_wait_schedules_for_its_next_opening(make_client: Any, clean_db: str) -> None:
    client = await make_client(routing=routing_text())
    status, data = await post(client, valid_body(attributes={"product": "lamp"}))
    assert (status, data["state"]) == (202, "scheduled")
    row, event = await fetch_row(clean_db)
    assert row["state"] == "scheduled" and row["route_destination"] == "night"
    assert row["due_at"] > datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    assert datetime.fromisoformat(data["scheduled_for"]) == row["due_at"]
    assert event["detail"]["due_at"] == row["due_at"].isoformat()
