"""Accepted requests wake the local dialer at once and other daemons by NOTIFY, after the commit."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from callswitch.db.wakeup import CHANNEL
from callswitch.intake import keys
from tests.intake.helpers import browser_headers, valid_body


async def test_new_request_wakes_local_and_remote_dialers(make_client: Any, clean_db: str) -> None:
    client = await make_client(work=True)
    signal = client.app[keys.WORK]
    listener = await asyncpg.connect(clean_db)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[2]))
    try:
        assert not signal.local.is_set()
        resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
        assert resp.status == 202
        assert signal.local.is_set()
        assert await asyncio.wait_for(heard.get(), 5) == CHANNEL
        # a duplicate creates no work and sends nothing more
        signal.local.clear()
        resp = await client.post("/v1/callbacks", json=valid_body(), headers=browser_headers())
        assert resp.status == 200
        assert not signal.local.is_set()
    finally:
        await listener.close()
