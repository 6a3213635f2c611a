"""``GET /v1/callbacks/{id}/events``: the public status as Server-Sent Events.

The stream starts with ``retry:`` and one ``event: status`` carrying the same JSON as
``GET /v1/callbacks/{id}``; another follows whenever that JSON changes (driven by
:class:`callswitch.web.status.StatusBroadcaster`), a ``: ping`` comment every
``heartbeat`` seconds keeps proxies from timing the connection out, and the stream ends
after the first final status (or after ``max_stream_seconds``; EventSource reconnects).
Each event's ``id`` is the state, so a reconnect (``Last-Event-ID``) to a request that
is already final in that state is answered ``204 No Content``: per the SSE spec the
browser then stops reconnecting.

CORS headers are set here before the response starts (the CORS middleware adds its
headers after the handler returns, which is too late for a streamed body); the rule is
the same as for the status endpoint: an ``Origin`` some site allows.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callswitch.config import Config
from callswitch.intake import keys
from callswitch.intake.api import parse_request_id, public_status
from callswitch.intake.http import ApiError
from callswitch.web.status import StatusBroadcaster


@dataclass(frozen=True)
class StreamSettings:
    heartbeat: float = 15.0  # seconds between ": ping" comments
    max_stream_seconds: float = 1800.0  # then the stream ends and EventSource reconnects
    retry_ms: int = 3000  # the reconnection delay suggested to EventSource


BROADCASTER = web.AppKey("status_broadcaster", StatusBroadcaster)
STREAM_SETTINGS = web.AppKey("stream_settings", StreamSettings)


def sse_event(status: dict[str, Any]) -> bytes:
    data = json.dumps(status, separators=(",", ":"), default=str)
    return f"event: status\nid: {status['state']}\ndata: {data}\n\n".encode()


async def callback_events(request: web.Request) -> web.StreamResponse:
    app = request.app
    config: Config = app[keys.CONFIG]
    broadcaster = app[BROADCASTER]
    settings = app[STREAM_SETTINGS]
    request_id = parse_request_id(request)
    with broadcaster.subscribe(request_id) as sub:  # subscribe first: no change can slip in before the read
        rows = await broadcaster.fetch([request_id])  # DatabaseUnavailable -> 503 (middleware)
        row = rows.get(request_id)
        if row is None:
            raise ApiError(404, "not_found", "no such callback request")
        status = public_status(row)
        if status["final"] and request.headers.get("Last-Event-ID") == status["state"]:
            return web.Response(status=204, headers={"Cache-Control": "no-store"})

        response = web.StreamResponse(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Vary"] = "Origin"
            if config.origin_allowed_anywhere(origin):
                response.headers["Access-Control-Allow-Origin"] = origin
        if keys.REQUEST_ID in request:
            response.headers["X-Request-Id"] = request[keys.REQUEST_ID]
        await response.prepare(request)
        deadline = asyncio.get_running_loop().time() + settings.max_stream_seconds
        try:
            await response.write(f"retry: {settings.retry_ms}\n\n".encode() + sse_event(status))
            sent = status
            while not sent["final"] and not sub.closed:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                changed = await sub.wait(min(settings.heartbeat, remaining))
                if sub.closed:
                    break
                if not changed:
                    await response.write(b": ping\n\n")
                elif sub.latest is not None and sub.latest != sent:
                    sent = sub.latest
                    await response.write(sse_event(sent))
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError too
            pass  # the browser went away
        return response
