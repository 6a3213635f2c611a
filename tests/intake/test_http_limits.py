"""The HTTP listener's limits (issue 8): header and body sizes, slow clients, idle connections.

These run the real listener (:mod:`callswitch.ops.httpserver`, as the daemon does) and talk to it
over raw sockets, since what is tested is how the server treats clients that misbehave.
"""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from callswitch.config import Config, load_config
from callswitch.db.pool import Database
from callswitch.intake.app import create_app
from callswitch.ops import httpserver
from tests.intake.helpers import ORIGIN, valid_body
from tests.openapi_check import check_response

HOST = "127.0.0.1"
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 1.0
SLACK = 1.5  # scheduling slack on a loaded test machine

CONFIG = f"""
http:
  public_url: http://callswitch.test
  max_body_bytes: 4096
  header_timeout: {HEADER_TIMEOUT}s
  body_timeout: {BODY_TIMEOUT}s
  max_header_bytes: 2048
  max_headers: 20
database:
  dsn: postgresql://nobody@127.0.0.1:9/none
sites:
  shop:
    site_key: pk_test_shop
    allowed_origins: [https://shop.example]
"""

Server = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """Start the daemon's listener on a free port; returns the port."""
    runners: list[web.AppRunner] = []

    async def start(runner_options: dict[str, Any] | None = None, body_timeout: float = BODY_TIMEOUT) -> int:
        path = tmp_path / "callswitch.yaml"
        text = textwrap.dedent(CONFIG).replace(f"body_timeout: {BODY_TIMEOUT}s", f"body_timeout: {body_timeout}s")
        path.write_text(text)
        config: Config = load_config(path, env={})
        app = create_app(config, Database(config.database))
        if runner_options is not None:  # override what aiohttp itself is told (the guard stays)
            options = {**httpserver.runner_options(config.http), **runner_options}
            monkeypatch.setattr(httpserver, "runner_options", lambda _http: options)
        runner = httpserver.make_runner(app, config.http)
        await runner.setup()
        runners.append(runner)
        site = await httpserver.start_site(runner, config.http, port=0)
        return site.port

    yield start
    for runner in runners:
        await runner.cleanup()


async def exchange(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send ``raw`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def get_ok(port: int) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"http://{HOST}:{port}/healthz") as resp:
        return resp.status


async def slow_client(port: int, first: bytes, *, every: float = 1.0, give_up: float = 15.0,
                      then: bytes = b"a") -> tuple[float, bytes]:
    """Send ``first``, then ``then`` every ``every`` seconds; return (seconds until disconnected, bytes read)."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(HOST, port)
    started = loop.time()
    received = b""
    try:
        writer.write(first)
        while loop.time() - started < give_up:
            try:
                data = await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                writer.write(then)
                await writer.drain()
                continue
            if not data:
                return loop.time() - started, received
            received += data
    except (ConnectionResetError, BrokenPipeError):
        return loop.time() - started, received
    finally:
        writer.close()
    raise AssertionError(f"still connected after {give_up}s (received {received[:80]!r})")


# ------------------------------------------------------------------------------------- sizes


async def test_oversized_header_line_request_line_and_too_many_headers_are_400(
    serve: Server, caplog: pytest.LogCaptureFixture
) -> None:
    port = await serve()
    caplog.set_level(logging.DEBUG)
    big_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    long_url = b"GET /healthz?" + b"q" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(30)) + b"\r\n"
    for raw in (big_header, long_url, many):
        response = await exchange(port, raw)  # answered, then the connection is closed
        assert status_of(response) == 400, response[:200]
    # just under the limits is served
    fine = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 1900 + b"\r\n"
            + b"".join(b"X-H%d: 1\r\n" % i for i in range(15)) + b"\r\n")
    assert status_of(await exchange(port, fine)) == 200
    # aiohttp's traceback (with the first bytes of the offending line) is not logged for each bad request
    noisy = [r for r in caplog.records if r.name == httpserver.SERVER_LOGGER]
    assert noisy == []


async def test_oversized_body_is_413_before_it_is_read(serve: Server) -> None:
    port = await serve()
    body = json.dumps(valid_body(attributes={"note": "x" * 5000})).encode()
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(
        f"http://{HOST}:{port}/v1/callbacks", data=body, headers=headers
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"] == "body_too_large"


# ------------------------------------------------------------------------------------- slow clients


async def test_slowloris_is_disconnected_while_other_clients_are_served(serve: Server) -> None:
    port = await serve()
    slow = [
        asyncio.ensure_future(slow_client(port, b"POST /v1/callb")),  # half a request line, a byte a second
        asyncio.ensure_future(slow_client(port, b"POST /v1/callbacks HTTP/1.1\r\nHost: x\r\nX-Slow: ")),  # headers
    ]
    await asyncio.sleep(0.3)
    for _ in range(5):  # meanwhile, normal clients get their answers
        assert await get_ok(port) == 200
    for elapsed, received in await asyncio.gather(*slow):
        assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + SLACK, elapsed
        assert received == b""  # dropped, not answered


async def test_head_deadline_holds_even_if_aiohttp_keeps_idle_connections_for_an_hour(serve: Server) -> None:
    # aiohttp < 3.14 never timed out a connection that had not finished its first request head;
    # the guard does not depend on that.
    port = await serve(runner_options={"keepalive_timeout": 3600})
    elapsed, _ = await slow_client(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", every=0.5)
    assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + SLACK, elapsed


async def test_connection_that_sends_nothing_is_closed(serve: Server) -> None:
    port = await serve(runner_options={"keepalive_timeout": 3600})
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(HOST, port)
    started = loop.time()
    try:
        assert await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + SLACK + 1) == b""
    finally:
        writer.close()
    assert loop.time() - started <= HEADER_TIMEOUT + SLACK


async def test_keep_alive_works_and_an_idle_connection_is_closed_after_the_head_timeout(serve: Server) -> None:
    port = await serve(runner_options={"keepalive_timeout": 3600})
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(HOST, port)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(3):  # each request restarts the deadline
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            await asyncio.sleep(HEADER_TIMEOUT * 0.6)
        idle_since = loop.time()
        assert await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + SLACK + 1) == b""
        assert loop.time() - idle_since <= HEADER_TIMEOUT + SLACK - HEADER_TIMEOUT * 0.6 + 0.5
    finally:
        writer.close()


async def test_trickling_body_gets_408_and_is_cut_off(serve: Server) -> None:
    port = await serve()
    head = (b"POST /v1/callbacks HTTP/1.1\r\nHost: x\r\nOrigin: " + ORIGIN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n{")
    elapsed, received = await slow_client(port, head, every=0.2, then=b" ")
    # answered 408 after the body timeout, then disconnected (after at most the lingering time)
    assert BODY_TIMEOUT <= elapsed <= BODY_TIMEOUT + min(httpserver.LINGERING_TIME, HEADER_TIMEOUT) + SLACK, elapsed
    assert status_of(received) == 408, received[:200]
    body = json.loads(received.split(b"\r\n\r\n", 1)[1])
    check_response("POST", "/v1/callbacks", 408, {}, body)
    assert body["error"] == "body_timeout" and body["fields"][0]["field"] == "body"


async def test_a_request_in_progress_has_no_head_deadline(serve: Server) -> None:
    # a body sent slowly, over longer than the head timeout but within the body timeout, is read
    port = await serve(body_timeout=HEADER_TIMEOUT * 2)
    payload = json.dumps({"site_key": "pk_test_shop"}).encode()
    head = (b"POST /v1/callbacks HTTP/1.1\r\nHost: x\r\nOrigin: " + ORIGIN.encode()
            + b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
            + str(len(payload)).encode() + b"\r\n\r\n")
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(head)
        step = len(payload) // 4 + 1
        for i in range(0, len(payload), step):
            writer.write(payload[i:i + step])
            await asyncio.sleep(HEADER_TIMEOUT * 1.5 / 4)
        response = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert status_of(response) == 422  # read completely and validated (name and phone are missing)
