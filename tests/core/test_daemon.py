"""The daemon: SIGHUP reloads routing rules; a broken file keeps the running rules."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import aiohttp
import asyncpg

from callswitch.config import load_config
from callswitch.daemon import load_rules, serve
from callswitch.pgcluster import free_port

RULES = """\
version: 1
destinations:
  first: {members: [PJSIP/201]}
  second: {members: [PJSIP/202]}
default: %s
"""


async def test_sighup_reloads_rules_and_keeps_them_when_the_file_is_broken(clean_db: str, tmp_path: Path) -> None:
    port = free_port()
    rules_file = tmp_path / "routing.yaml"
    rules_file.write_text(RULES % "first")
    cfg = tmp_path / "callswitch.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        http: {{listen: "127.0.0.1:{port}"}}
        database: {{dsn: "{clean_db}", min_connections: 1}}
        routing: {{file: routing.yaml}}
        sites:
          shop: {{site_key: pk_shop_123456, allowed_origins: [https://shop.example]}}
        """))
    config = load_config(cfg, env={})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, stop, rules=load_rules(config)))

    async def destination_for(phone: str) -> str:
        body = {"site_key": "pk_shop_123456", "name": "Ada", "phone": phone}
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                try:
                    async with http.post(f"http://127.0.0.1:{port}/v1/callbacks", json=body,
                                         headers={"Origin": "https://shop.example"}) as resp:
                        if resp.status == 202:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        conn = await asyncpg.connect(clean_db)
        try:
            return str(await conn.fetchval(
                "SELECT route_destination FROM callback_requests WHERE phone_e164 = $1", phone))
        finally:
            await conn.close()

    async def hangup() -> None:
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.2)  # the handler runs on the loop

    try:
        assert await destination_for("+13125550101") == "first"
        rules_file.write_text(RULES % "nowhere")  # broken: unknown destination
        await hangup()
        assert await destination_for("+13125550102") == "first"
        rules_file.write_text(RULES % "second")
        await hangup()
        assert await destination_for("+13125550103") == "second"
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 15) == 0
