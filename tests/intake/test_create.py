"""POST /v1/callbacks: acceptance, storage, and every rejection path."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from callswitch.db.pool import init_connection
from tests.intake.helpers import API_KEY, ORIGIN, browser_headers, valid_body
from tests.openapi_check import check_response

PATH = "/v1/callbacks"


async def post(client: TestClient, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any, Any]:
    resp = await client.post(PATH, json=body, headers=browser_headers() if headers is None else headers, **kw)
    data = await resp.json() if resp.content_type == "application/json" else await resp.text()
    if resp.content_type == "application/json":
        check_response("POST", PATH, resp.status, resp.headers, data)
    return resp.status, data, resp.headers


async def rows(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_accepts_and_stores_request_with_first_event(client: TestClient, clean_db: str) -> None:
    status, data, headers = await post(client, valid_body())
    assert status == 202
    request_id = uuid.UUID(data["id"])
    assert request_id.version == 4  # random, not a sequence
    assert data["state"] == "queued"
    assert data["status_url"] == f"http://callswitch.test/v1/callbacks/{request_id}"
    assert headers["Location"] == data["status_url"]
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    (row,) = await rows(clean_db, "SELECT * FROM callback_requests")
    assert row["id"] == request_id
    assert row["site"] == "shop"
    assert row["phone_given"] == "(312) 555-0142"
    assert row["phone_e164"] == "+13125550142"
    assert row["phone_country"] == "US"
    assert row["pages_visited"] == ["https://shop.example/", "https://shop.example/products/widget"]
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == ("google", "cpc", "spring")
    assert (row["product"], row["postal_code"], row["company_size"]) == ("widget", "60601", 250)
    assert row["attributes"]["color"] == "blue"
    assert row["language"] == "en"
    assert row["consent"] is True
    assert str(row["client_ip"]) == "127.0.0.1"
    assert row["state"] == "queued" and row["finished_at"] is None
    (event,) = await rows(clean_db, "SELECT * FROM callback_events")
    assert (event["request_id"], event["event"], event["to_state"], event["actor"]) == (
        request_id, "accepted", "queued", "intake")


async def test_preferred_time_schedules_the_request(client: TestClient, clean_db: str) -> None:
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    status, data, _ = await post(client, valid_body(preferred_time=at.isoformat()))
    assert status == 202
    assert data["state"] == "scheduled"
    assert datetime.fromisoformat(data["scheduled_for"]) == at
    (row,) = await rows(clean_db, "SELECT state, due_at, preferred_at FROM callback_requests")
    assert row["due_at"] == at and row["preferred_at"] == at


async def test_server_to_server_with_api_key_needs_no_origin(client: TestClient) -> None:
    body = valid_body()
    del body["site_key"]
    status, data, headers = await post(client, body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert status == 202, data
    assert "Access-Control-Allow-Origin" not in headers


async def test_site_key_header_is_accepted(client: TestClient) -> None:
    body = valid_body()
    del body["site_key"]
    status, _, _ = await post(client, body, headers=browser_headers(**{"X-Callswitch-Site-Key": "pk_test_shop"}))
    assert status == 202


@pytest.mark.parametrize(
    ("headers", "body_changes", "status", "code"),
    [
        ({"Origin": ORIGIN}, {"site_key": None}, 401, "missing_site_key"),
        ({"Origin": ORIGIN}, {"site_key": "pk_nope_nope"}, 401, "unknown_site_key"),
        ({}, {}, 403, "origin_required"),
        ({"Origin": "https://evil.example"}, {}, 403, "origin_not_allowed"),
        ({"Origin": "https://consent.example"}, {}, 403, "origin_not_allowed"),  # another site's origin
        ({"Authorization": "Bearer sk_wrong_wrong_wrong_wrong"}, {"site_key": None}, 401, "invalid_api_key"),
        ({"Authorization": "Basic abc"}, {}, 401, "invalid_api_key"),
    ],
)
async def test_site_authentication_rejections(
    client: TestClient, clean_db: str, headers: dict[str, str], body_changes: dict[str, Any], status: int, code: str
) -> None:
    body = valid_body(**body_changes)
    body = {k: v for k, v in body.items() if v is not None}
    got, data, _ = await post(client, body, headers=headers)
    assert (got, data["error"]) == (status, code)
    assert await rows(clean_db, "SELECT id FROM callback_requests") == []


@pytest.mark.parametrize(
    ("changes", "field", "reason_part"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "x" * 101}, "name", "longer than 100"),
        ({"name": "bad\x07name"}, "name", "control characters"),
        ({"phone": ""}, "phone", "required"),
        ({"phone": 3125550142}, "phone", "must be a string"),
        ({"phone": "12"}, "phone", "not a valid phone number"),
        ({"phone": "hello"}, "phone", "not a phone number"),
        ({"phone": "+44 20 7946 0958"}, "phone", "this country"),  # GB not allowed for this site
        ({"phone": "+1 900 555 0199"}, "phone", "premium-rate"),  # US premium rate
        ({"phone": "+49 900 1234567"}, "phone", "premium-rate"),  # DE premium rate (allowed country)
        ({"phone": "+13125550000"}, "phone", "own numbers"),
        ({"page_url": "javascript:alert(1)"}, "page_url", "http(s) URL"),
        ({"page_url": "https://x/" + "a" * 2100}, "page_url", "longer than"),
        ({"pages": "https://shop.example/"}, "pages", "list"),
        ({"pages": ["https://shop.example/", "ftp://x"]}, "pages[1]", "http(s) URL"),
        ({"pages": ["https://shop.example/"] * 51}, "pages", "at most 50"),
        ({"utm": {"source": "a", "bogus": "b"}}, "utm.bogus", "unknown field"),
        ({"utm": "spring"}, "utm", "object"),
        ({"attributes": {"company_size": -5}}, "attributes.company_size", "whole number"),
        ({"attributes": {"company_size": "big"}}, "attributes.company_size", "whole number"),
        ({"attributes": {"bad key": 1}}, "attributes.bad key", "attribute names"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes.nested", "string, number or boolean"),
        ({"attributes": {f"a{i}": i for i in range(31)}}, "attributes", "at most 30"),
        ({"language": "en_US!"}, "language", "language tag"),
        ({"preferred_time": "tomorrow"}, "preferred_time", "ISO 8601"),
        ({"preferred_time": "2030-01-01T10:00:00"}, "preferred_time", "UTC offset"),
        ({"preferred_time": "2099-01-01T10:00:00Z"}, "preferred_time", "within 14 days"),
        ({"consent": "yes"}, "consent", "true or false"),
        ({"surprise": 1}, "surprise", "unknown field"),
    ],
)
async def test_invalid_fields_are_named(
    client: TestClient, clean_db: str, changes: dict[str, Any], field: str, reason_part: str
) -> None:
    status, data, _ = await post(client, valid_body(**changes))
    assert status == 422, data
    assert data["error"] == "validation_failed"
    reasons = {f["field"]: f["reason"] for f in data["fields"]}
    assert field in reasons, data
    assert reason_part in reasons[field]
    assert await rows(clean_db, "SELECT id FROM callback_requests") == []


async def test_blocked_prefix_is_refused(make_client: Any) -> None:
    client = await make_client()
    # +881 (Global Mobile Satellite System) is a toll-fraud range blocked by default;
    # this site allows any country so only the prefix rule can refuse it.
    status, data, _ = await post(
        client,
        valid_body(site_key="pk_test_consent", phone="+881 6 1234 5678"),
        headers={"Origin": "https://consent.example"},
    )
    assert status == 422
    assert data["fields"][0]["field"] == "phone"


async def test_consent_required_by_site(client: TestClient) -> None:
    body = valid_body(site_key="pk_test_consent", phone="030 1234567", consent=False)
    status, data, _ = await post(client, body, headers={"Origin": "https://consent.example"})
    assert status == 422
    assert data["fields"] == [{"field": "consent", "reason": "required: the visitor must agree to be called"}]
    body["consent"] = True
    status, data, _ = await post(client, body, headers={"Origin": "https://consent.example"})
    assert status == 202, data


async def test_reports_every_invalid_field_at_once(client: TestClient) -> None:
    status, data, _ = await post(client, valid_body(name="", phone="nope", page_url="x"))
    assert status == 422
    assert {f["field"] for f in data["fields"]} == {"name", "phone", "page_url"}


async def test_malformed_json_is_400(client: TestClient) -> None:
    resp = await client.post(PATH, data=b"{not json", headers=browser_headers(**{"Content-Type": "application/json"}))
    data = await resp.json()
    check_response("POST", PATH, resp.status, resp.headers, data)
    assert (resp.status, data["error"]) == (400, "invalid_json")
    resp = await client.post(PATH, data=b"[1, 2]", headers=browser_headers(**{"Content-Type": "application/json"}))
    assert resp.status == 400


async def test_wrong_content_type_is_415(client: TestClient) -> None:
    resp = await client.post(PATH, data=b"name=x", headers=browser_headers(**{"Content-Type": "text/plain"}))
    data = await resp.json()
    check_response("POST", PATH, resp.status, resp.headers, data)
    assert (resp.status, data["error"]) == (415, "unsupported_media_type")


async def test_oversize_body_is_413(client: TestClient, clean_db: str) -> None:
    body = valid_body(attributes={"note": "x" * 150, **{f"k{i}": "y" * 150 for i in range(28)}})
    status, data, _ = await post(client, body)
    assert (status, data["error"]) == (413, "body_too_large")
    # chunked upload without Content-Length is cut off too
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    resp = await client.post(PATH, data=chunks(), headers=browser_headers(**{"Content-Type": "application/json"}))
    assert resp.status == 413
    assert (await resp.json())["error"] == "body_too_large"
    assert await rows(clean_db, "SELECT id FROM callback_requests") == []


async def test_per_ip_limit_answers_429_with_retry_after(make_client: Any) -> None:
    client = await make_client(per_ip="2/minute")
    for phone in ("312 555 0101", "312 555 0102"):
        status, _, _ = await post(client, valid_body(phone=phone))
        assert status == 202
    status, data, headers = await post(client, valid_body(phone="312 555 0103"))
    assert (status, data["error"]) == (429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_per_site_limit(make_client: Any) -> None:
    client = await make_client(per_site="1/hour")
    assert (await post(client, valid_body(phone="312 555 0101")))[0] == 202
    status, data, headers = await post(client, valid_body(phone="312 555 0102"))
    assert status == 429 and "site" in data["message"]
    assert int(headers["Retry-After"]) > 60


async def test_per_phone_limit_counts_stored_requests(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_phone="2/hour")
    for _ in range(2):
        status, data, _ = await post(client, valid_body())
        assert status == 202
        resp = await client.post(f"{PATH}/{data['id']}/cancel")
        assert resp.status == 200
    status, data, headers = await post(client, valid_body())
    assert status == 429
    assert data["fields"][0]["field"] == "phone"
    assert int(headers["Retry-After"]) > 3000
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 2


async def test_pending_duplicate_returns_the_existing_request(client: TestClient, clean_db: str) -> None:
    status1, first, _ = await post(client, valid_body())
    status2, second, _ = await post(client, valid_body(name="Ada L.", phone="+1 312-555-0142"))
    assert (status1, status2) == (202, 200)
    assert second["id"] == first["id"] and second["duplicate"] is True
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 1


async def test_concurrent_identical_requests_make_one_row(client: TestClient, clean_db: str) -> None:
    results = await asyncio.gather(*(post(client, valid_body()) for _ in range(8)))
    ids = {data["id"] for _, data, _ in results}
    assert len(ids) == 1
    assert sorted(status for status, _, _ in results) == [200] * 7 + [202]
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 1
    assert len(await rows(clean_db, "SELECT id FROM callback_events")) == 1


async def test_idempotency_key_replays_and_detects_reuse(client: TestClient, clean_db: str) -> None:
    headers = browser_headers(**{"Idempotency-Key": "abc-123"})
    s1, d1, h1 = await post(client, valid_body(), headers=headers)
    s2, d2, h2 = await post(client, valid_body(), headers=headers)
    assert (s1, s2) == (202, 202)
    assert d1["id"] == d2["id"]
    assert h2["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in h1
    s3, d3, _ = await post(client, valid_body(name="Someone Else"), headers=headers)
    assert (s3, d3["error"]) == (422, "idempotency_key_reused")
    s4, d4, _ = await post(client, valid_body(), headers=browser_headers(**{"Idempotency-Key": "x" * 201}))
    assert (s4, d4["error"]) == (400, "invalid_idempotency_key")
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 1


async def test_concurrent_retries_with_one_idempotency_key(client: TestClient, clean_db: str) -> None:
    headers = browser_headers(**{"Idempotency-Key": "k-1"})
    results = await asyncio.gather(*(post(client, valid_body(), headers=headers) for _ in range(5)))
    assert len({d["id"] for _, d, _ in results}) == 1
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 1
