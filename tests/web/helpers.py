"""Helpers for the widget tests: creating requests and reading Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse

from tests.web.conftest import SITE_KEY, Daemon


async def create_request(daemon: Daemon, phone: str = "(312) 555-0142", **extra: Any) -> dict[str, Any]:
    body = {"site_key": SITE_KEY, "name": "Ada Lovelace", "phone": phone, **extra}
    resp = await daemon.client.post("/v1/callbacks", json=body, headers={"Origin": daemon.url})
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


class SSEReader:
    """Reads one text/event-stream response: events as (name, id, data) and comments."""

    def __init__(self, resp: ClientResponse):
        self.resp = resp
        self.comments: list[str] = []
        self.retry: int | None = None

    async def next_event(self, timeout: float = 5.0) -> tuple[str, str | None, dict[str, Any]] | None:
        """The next event, or None when the stream ended."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> tuple[str, str | None, dict[str, Any]] | None:
        name: str = "message"
        event_id: str | None = None
        data: list[str] = []
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    return name, event_id, json.loads("\n".join(data))
                name, event_id = "message", None
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                self.comments.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
            elif field == "retry":
                self.retry = int(value)
