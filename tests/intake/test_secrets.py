"""Secrets and personal data (issue 8): constant-time token checks, nothing sensitive in the logs."""

from __future__ import annotations

import asyncio
import hmac
import io
import json
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient

from callswitch.logs import configure
from tests.intake.helpers import ADMIN_TOKEN, API_KEY, valid_body
from tests.intake.test_create import PATH

PHONE_DIGITS = "3125550142"


async def test_admin_token_and_api_key_are_compared_in_constant_time(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    resp = await client.get("/v1/admin/callbacks", headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert resp.status == 403
    assert (b"wrong-token-wrong-token", ADMIN_TOKEN.encode()) in calls
    resp = await client.get("/v1/admin/callbacks", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert resp.status == 200
    calls.clear()
    resp = await client.post(PATH, json=valid_body(phone="312 555 0177"),
                             headers={"Authorization": "Bearer sk_wrong_0123456789abcdef"})
    assert resp.status == 401
    assert (API_KEY.encode(), b"sk_wrong_0123456789abcdef") in calls


async def raw_request(client: TestClient, raw: bytes) -> bytes:
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_tokens_that_are_not_utf8_are_refused_not_a_server_error(client: TestClient) -> None:
    admin = (b"GET /v1/admin/callbacks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             b"Authorization: Bearer \xff\xfeadmin-token-0123456789\r\n\r\n")
    assert (await raw_request(client, admin)).startswith(b"HTTP/1.1 403")
    body = json.dumps(valid_body(phone="312 555 0178")).encode()
    server = (b"POST /v1/callbacks HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer \xff\xfe" + API_KEY.encode() + b"\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert (await raw_request(client, server)).startswith(b"HTTP/1.1 401")


async def test_no_phone_number_or_secret_reaches_the_log(client: TestClient) -> None:
    out = io.StringIO()
    configure("debug", "json", stream=out)
    try:
        # a browser request, a server request with the API key, a refused one, admin reads with and
        # without the right token, filtered by the number
        resp = await client.post(PATH, json=valid_body(phone="+1 312 555 0142"),
                                 headers={"Origin": "https://shop.example"})
        assert resp.status == 202
        resp = await client.post(PATH, json=valid_body(phone="(312) 555-0143"),
                                 headers={"Authorization": f"Bearer {API_KEY}"})
        assert resp.status == 202
        resp = await client.post(PATH, json=valid_body(phone="+1 900 555 0144"),
                                 headers={"Origin": "https://shop.example"})
        assert resp.status == 422
        for token in (ADMIN_TOKEN, "not-the-admin-token-123"):
            resp = await client.get("/v1/admin/callbacks", params={"phone": "+13125550142"},
                                    headers={"Authorization": f"Bearer {token}"})
            assert resp.status in (200, 403)
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    accepted = [line for line in lines if line.get("event") == "callback_accepted"]
    assert len(accepted) == 2 and accepted[0]["phone"].endswith("142")  # the test sees what was logged
    for secret in (PHONE_DIGITS, "3125550143", "9005550144", "312 555 0142", "555-0143", "555 0144",
                   API_KEY, ADMIN_TOKEN, "not-the-admin-token-123"):
        assert secret not in text, secret


def test_phone_numbers_in_exceptions_and_library_records_are_masked() -> None:
    import logging

    from callswitch.logs import get_logger

    out = io.StringIO()
    configure("debug", "json", stream=out)
    try:
        try:
            raise ValueError("cannot store +13125550142")
        except ValueError:
            get_logger("t").exception("unhandled_error")
        logging.getLogger("asyncpg").warning("lost the connection while storing +13125550142")
    finally:
        structlog.reset_defaults()
    assert "unhandled_error" in out.getvalue()
    assert PHONE_DIGITS not in out.getvalue()
