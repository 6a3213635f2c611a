"""Public status, visitor cancel, CORS preflight, admin API and the OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.intake.helpers import ADMIN_TOKEN, ORIGIN, browser_headers, valid_body
from tests.openapi_check import check_response


async def create(client: TestClient, **changes: Any) -> dict[str, Any]:
    resp = await client.post("/v1/callbacks", json=valid_body(**changes), headers=browser_headers())
    assert resp.status == 202
    return dict(await resp.json())


async def get_json(client: TestClient, path: str, template: str, method: str = "GET", **kw: Any) -> tuple[int, Any]:
    resp = await client.request(method, path, **kw)
    data = await resp.json()
    check_response(method, template, resp.status, resp.headers, data)
    return resp.status, data


async def test_public_status_shows_state_and_message_without_pii(client: TestClient) -> None:
    created = await create(client)
    status, data = await get_json(client, f"/v1/callbacks/{created['id']}", "/v1/callbacks/{id}")
    assert status == 200
    assert data["state"] == "queued" and data["message"] == "We're calling our team now."
    assert data["cancellable"] is True and data["final"] is False
    assert "phone" not in str(data) and "Ada" not in str(data)


async def test_unknown_or_malformed_id_is_404(client: TestClient) -> None:
    for rid in (str(uuid.uuid4()), "not-a-uuid"):
        status, data = await get_json(client, f"/v1/callbacks/{rid}", "/v1/callbacks/{id}")
        assert (status, data["error"]) == (404, "not_found")


async def test_cancel_is_recorded_and_idempotent(client: TestClient, clean_db: str) -> None:
    created = await create(client)
    path = f"/v1/callbacks/{created['id']}/cancel"
    status, data = await get_json(client, path, "/v1/callbacks/{id}/cancel", "POST")
    assert (status, data["state"], data["final"]) == (200, "cancelled", True)
    status, data = await get_json(client, path, "/v1/callbacks/{id}/cancel", "POST")
    assert (status, data["state"]) == (200, "cancelled")
    conn = await asyncpg.connect(clean_db)
    events = await conn.fetch("SELECT event, from_state, to_state, actor FROM callback_events ORDER BY id")
    row = await conn.fetchrow("SELECT state, outcome, finished_at FROM callback_requests")
    await conn.close()
    assert [tuple(e) for e in events] == [
        ("accepted", None, "queued", "intake"), ("cancelled", "queued", "cancelled", "visitor")]
    assert row["outcome"] == "cancelled" and row["finished_at"] is not None
    # after cancelling, the same number may ask again
    again = await create(client)
    assert again["id"] != created["id"]


async def test_cannot_cancel_a_connected_call(client: TestClient, clean_db: str) -> None:
    created = await create(client)
    conn = await asyncpg.connect(clean_db)
    await conn.execute("UPDATE callback_requests SET state = 'connected'")
    await conn.close()
    status, data = await get_json(client, f"/v1/callbacks/{created['id']}/cancel", "/v1/callbacks/{id}/cancel", "POST")
    assert (status, data["error"]) == (409, "not_cancellable")


async def test_cors_preflight_for_allowed_origin_only(client: TestClient) -> None:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    resp = await client.options("/v1/callbacks", headers=headers)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
    assert "Origin" in resp.headers["Vary"]
    resp = await client.options("/v1/callbacks", headers={**headers, "Origin": "https://evil.example"})
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    # status reads from the page get CORS headers too, unknown origins do not
    created = await create(client)
    resp = await client.get(f"/v1/callbacks/{created['id']}", headers={"Origin": ORIGIN})
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    resp = await client.get(f"/v1/callbacks/{created['id']}", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_admin_requires_token(client: TestClient) -> None:
    status, data = await get_json(client, "/v1/admin/callbacks", "/v1/admin/callbacks")
    assert (status, data["error"]) == (401, "admin_token_required")
    status, data = await get_json(client, "/v1/admin/callbacks", "/v1/admin/callbacks",
                                  headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert (status, data["error"]) == (403, "invalid_admin_token")


async def test_admin_lists_filters_pages_and_shows_one(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    first = await create(client, phone="312 555 0101")
    second = await create(client, phone="312 555 0102")
    await client.post(f"/v1/callbacks/{first['id']}/cancel")
    status, data = await get_json(client, "/v1/admin/callbacks", "/v1/admin/callbacks", headers=auth)
    assert status == 200
    assert [i["id"] for i in data["items"]] == [second["id"], first["id"]]
    status, data = await get_json(client, "/v1/admin/callbacks?state=cancelled", "/v1/admin/callbacks", headers=auth)
    assert [i["id"] for i in data["items"]] == [first["id"]]
    status, data = await get_json(client, "/v1/admin/callbacks?limit=1", "/v1/admin/callbacks", headers=auth)
    assert [i["id"] for i in data["items"]] == [second["id"]] and data["next_cursor"]
    status, data = await get_json(
        client, f"/v1/admin/callbacks?limit=1&cursor={data['next_cursor']}", "/v1/admin/callbacks", headers=auth)
    assert [i["id"] for i in data["items"]] == [first["id"]]
    status, data = await get_json(client, "/v1/admin/callbacks?state=bogus&since=yesterday", "/v1/admin/callbacks",
                                  headers=auth)
    assert status == 422 and {f["field"] for f in data["fields"]} == {"state", "since"}
    status, data = await get_json(client, f"/v1/admin/callbacks/{first['id']}", "/v1/admin/callbacks/{id}",
                                  headers=auth)
    assert status == 200
    assert data["phone_e164"] == "+13125550101"
    assert [e["event"] for e in data["events"]] == ["accepted", "cancelled"]
    assert data["legs"] == []


async def test_openapi_document_is_served(client: TestClient) -> None:
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/callbacks", "/v1/callbacks/{id}", "/v1/callbacks/{id}/cancel"} <= set(doc["paths"])


async def test_unknown_path_and_method_are_json(client: TestClient) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.delete("/v1/callbacks")
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"


async def test_admin_sees_notification_deliveries_and_backlog(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, data = await get_json(client, "/v1/admin/deliveries", "/v1/admin/deliveries")
    assert status == 401
    await create(client)  # the request's first event goes to the notification outbox
    status, data = await get_json(client, "/v1/admin/deliveries", "/v1/admin/deliveries", headers=auth)
    assert status == 200 and data["items"] == []  # no notifier ran: nothing fanned out yet
    assert any(isinstance(v, int) and v >= 1 for v in data["summary"].values()), data["summary"]
    status, data = await get_json(client, "/v1/admin/deliveries?status=bogus", "/v1/admin/deliveries", headers=auth)
    assert status == 422
    status, data = await get_json(client, "/v1/admin/deliveries/999/retry", "/v1/admin/deliveries/{id}/retry",
                                  "POST", headers=auth)
    assert (status, data["error"]) == (409, "not_retryable")
