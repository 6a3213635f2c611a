"""GET /v1/callbacks/{id}/events: the live status stream and its shared LISTEN connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from callswitch.intake.app import openapi_document
from tests.web.conftest import Daemon, DaemonFactory
from tests.web.helpers import SSEReader, create_request


def check_status_schema(data: dict[str, Any]) -> None:
    """Each event carries the public status: the OpenAPI ``Status`` schema."""
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(
        openapi_document(), default_specification=DRAFT202012))
    validator = jsonschema.Draft202012Validator({"$ref": "urn:openapi#/components/schemas/Status"}, registry=registry)
    errors = list(validator.iter_errors(data))
    assert not errors, errors[0].message


async def open_stream(daemon: Daemon, request_id: str, **headers: str) -> SSEReader:
    resp = await daemon.client.get(f"/v1/callbacks/{request_id}/events", headers=headers)
    assert resp.status == 200, await resp.text()
    return SSEReader(resp)


async def test_stream_sends_status_then_each_change_on_notify_and_closes_when_final(
    make_daemon: DaemonFactory,
) -> None:
    daemon = await make_daemon(poll_interval=60)  # only NOTIFY can deliver the changes in time
    created = await create_request(daemon)
    rid = created["id"]
    reader = await open_stream(daemon, rid, Origin=daemon.url)
    resp = reader.resp
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Access-Control-Allow-Origin"] == daemon.url
    event = await reader.next_event()
    assert event is not None
    name, event_id, data = event
    assert (name, event_id, data["state"], data["cancellable"]) == ("status", "queued", "queued", True)
    assert reader.retry == 500
    check_status_schema(data)
    assert data == await (await daemon.client.get(f"/v1/callbacks/{rid}")).json()

    for state, message in [("dialing_agent", "We're calling our team now."),
                           ("accepted", "Connecting you: your phone will ring."),
                           ("connected", "You're connected.")]:
        started = time.monotonic()
        await daemon.set_state(rid, state)
        event = await reader.next_event(timeout=3)
        assert event is not None
        assert (event[1], event[2]["state"], event[2]["message"]) == (state, state, message)
        assert time.monotonic() - started < 2
        check_status_schema(event[2])
    assert event[2]["cancellable"] is False

    await daemon.set_state(rid, "completed", outcome="completed")
    event = await reader.next_event()
    assert event is not None and event[2]["state"] == "completed" and event[2]["final"] is True
    assert await reader.next_event() is None  # the stream ended


async def test_stream_rechecks_without_notify(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(poll_interval=0.3)
    rid = (await create_request(daemon))["id"]
    reader = await open_stream(daemon, rid)
    assert (await reader.next_event()) is not None
    await daemon.set_state(rid, "dialing_agent", notify=False)
    event = await reader.next_event(timeout=3)
    assert event is not None and event[2]["state"] == "dialing_agent"


async def test_cancel_through_the_api_reaches_the_stream(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(poll_interval=60)
    rid = (await create_request(daemon))["id"]
    reader = await open_stream(daemon, rid)
    await reader.next_event()
    resp = await daemon.client.post(f"/v1/callbacks/{rid}/cancel", headers={"Origin": daemon.url})
    assert resp.status == 200
    event = await reader.next_event(timeout=3)  # intake's NOTIFY callswitch_requests '<id>'
    assert event is not None and (event[2]["state"], event[2]["final"]) == ("cancelled", True)
    assert await reader.next_event() is None


async def test_final_request_gets_one_event_then_204_on_reconnect(daemon: Daemon) -> None:
    rid = (await create_request(daemon))["id"]
    await daemon.set_state(rid, "failed", outcome="failed")
    reader = await open_stream(daemon, rid)
    event = await reader.next_event()
    assert event is not None and event[1] == "failed" and event[2]["final"] is True
    assert await reader.next_event() is None
    resp = await daemon.client.get(f"/v1/callbacks/{rid}/events", headers={"Last-Event-ID": "failed"})
    assert resp.status == 204  # EventSource stops reconnecting


async def test_unknown_or_malformed_id_is_404(daemon: Daemon) -> None:
    for rid in (str(uuid.uuid4()), "nope"):
        resp = await daemon.client.get(f"/v1/callbacks/{rid}/events")
        assert resp.status == 404 and (await resp.json())["error"] == "not_found"


async def test_heartbeat_comments_and_cors_rules(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(heartbeat=0.2)
    rid = (await create_request(daemon))["id"]
    reader = await open_stream(daemon, rid, Origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in reader.resp.headers
    await reader.next_event()
    await asyncio.sleep(0.5)
    await daemon.set_state(rid, "completed")
    await reader.next_event()
    assert "ping" in reader.comments
    other = f"http://127.0.0.1:{daemon.other_port}"
    reader = await open_stream(daemon, rid, Origin=other)
    assert reader.resp.headers["Access-Control-Allow-Origin"] == other
    assert "Origin" in reader.resp.headers["Vary"]


async def test_preflight_for_the_stream(daemon: Daemon) -> None:
    rid = str(uuid.uuid4())
    resp = await daemon.client.options(f"/v1/callbacks/{rid}/events", headers={
        "Origin": daemon.url, "Access-Control-Request-Method": "GET"})
    assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == daemon.url


async def test_streams_share_one_listen_connection_and_end_on_shutdown(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(poll_interval=60)
    ids = [(await create_request(daemon, phone=f"(312) 555-01{40 + i}"))["id"] for i in range(5)]
    readers = [await open_stream(daemon, rid) for rid in ids]
    for reader in readers:
        assert await reader.next_event() is not None
    assert daemon.broadcaster.watched == 5
    conn = await asyncpg.connect(daemon.dsn)
    try:
        listeners = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
    finally:
        await conn.close()
    assert listeners == 1
    # one state change wakes only its own stream
    await daemon.set_state(ids[2], "dialing_agent")
    event = await readers[2].next_event(timeout=3)
    assert event is not None and event[2]["state"] == "dialing_agent"
    daemon.broadcaster.close_streams()  # what on_shutdown does
    for reader in readers:
        assert await reader.next_event(timeout=3) is None
    await asyncio.sleep(0.05)
    assert daemon.broadcaster.watched == 0


async def test_stream_survives_losing_the_listen_connection(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(poll_interval=60)
    rid = (await create_request(daemon))["id"]
    reader = await open_stream(daemon, rid)
    await reader.next_event()
    conn = await asyncpg.connect(daemon.dsn)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND query LIKE 'LISTEN%'")
    finally:
        await conn.close()
    deadline = time.monotonic() + 5
    while daemon.broadcaster.listening.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.wait_for(daemon.broadcaster.listening.wait(), 10)
    await daemon.set_state(rid, "dialing_agent")
    event = await reader.next_event(timeout=5)
    assert event is not None and event[2]["state"] == "dialing_agent"


async def test_stream_ends_after_max_duration(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(max_stream_seconds=0.3)
    rid = (await create_request(daemon))["id"]
    reader = await open_stream(daemon, rid)
    await reader.next_event()
    assert await reader.next_event(timeout=3) is None
