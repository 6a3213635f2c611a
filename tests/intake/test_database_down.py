"""Postgres unreachable or lost mid-request: 503 with Retry-After, and nothing half-written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from callswitch.pgcluster import free_port
from tests.intake.helpers import browser_headers, valid_body
from tests.openapi_check import check_response
from tests.tcpproxy import TcpProxy


def via(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, f"{netloc[0]}@{host}" if len(netloc) == 2 else host, parts.path, "", ""))


@pytest.fixture
async def proxy(clean_db: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(clean_db)
    p = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await p.start()
    yield p
    await p.stop()


async def count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_unreachable_database_answers_503_with_retry_after(make_client: Any, clean_db: str) -> None:
    client = await make_client(dsn=via(clean_db, free_port()))  # nothing listens there
    resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
    data = await resp.json()
    check_response("POST", "/v1/callbacks", resp.status, resp.headers, data)
    assert (resp.status, data["error"]) == (503, "database_unavailable")
    assert int(resp.headers["Retry-After"]) >= 1
    resp = await client.get("/v1/callbacks/6b1f1b1e-0a7e-4c1e-9b8e-1d2c3b4a5f6e")
    assert resp.status == 503


async def test_connection_lost_mid_transaction_writes_nothing(
    make_client: Any, clean_db: str, proxy: TcpProxy
) -> None:
    client = await make_client(dsn=via(clean_db, proxy.port))
    # The connection dies as the request is sent: the visitor is told to retry and nothing is stored.
    proxy.cut_on = b"callswitch_store_request"
    resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
    assert resp.status == 503, await resp.text()
    assert "Retry-After" in resp.headers
    assert proxy.cuts == 1
    assert await count(clean_db, "callback_requests") == 0
    assert await count(clean_db, "callback_events") == 0
    # Postgres comes back: the retry is stored, whole.
    proxy.cut_on = None
    resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
    assert resp.status == 202, await resp.text()
    assert await count(clean_db, "callback_requests") == 1
    assert await count(clean_db, "callback_events") == 1


async def test_database_refusing_then_back(make_client: Any, clean_db: str, proxy: TcpProxy) -> None:
    client = await make_client(dsn=via(clean_db, proxy.port))
    proxy.refuse = True
    proxy.cut_all()
    resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
    assert resp.status == 503
    proxy.refuse = False
    resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
    assert resp.status == 202
    assert await count(clean_db, "callback_requests") == 1


def test_a_connection_in_a_broken_protocol_state_counts_as_postgres_unavailable() -> None:
    # seen after a Postgres restart: "cannot switch to state 12; another operation (2) is in progress"
    from asyncpg.exceptions._base import InternalClientError

    from callswitch.db.pool import is_unavailable

    assert is_unavailable(InternalClientError("cannot switch to state 12; another operation (2) is in progress"))
    assert not is_unavailable(ValueError("a bug, not an outage"))
