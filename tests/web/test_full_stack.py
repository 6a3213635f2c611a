"""The whole product in a browser: the demo page, the widget, intake, the dialer and the simulated PBX.

A visitor asks for a call; the simulated PBX (real Asterisk 22 call flows) rings the agent, who
accepts, then the visitor, who answers and later hangs up. The widget must show each step as it
happens: calling our team, connecting, connected, thank you.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from callswitch.config import load_config
from callswitch.daemon import load_rules, serve
from callswitch.pgcluster import free_port
from callswitch.testing.pbx import PbxSimulator, lab_behaviour

CALLING = {"queued", "dialing_agent", "agent_answered"}
CONNECTING = {"accepted", "dialing_customer"}


async def test_visitor_sees_the_call_go_through_every_step(
    new_context: Callable[..., Awaitable[Any]], clean_db: str, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    sim = PbxSimulator(users={"callswitch": "secret"}, time_scale=0.5, default_behaviour=lab_behaviour)
    await sim.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "routing.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults: {timezone: UTC, ring_timeout: 10}
        trunks: {carrier: {dial: "PJSIP/{number}@carrier", caller_id: "+13125550000"}}
        destinations: {store: {members: ["+13125550100"]}}
        default: store
        """))
    (tmp_path / "callswitch.yaml").write_text(textwrap.dedent(f"""\
        http: {{listen: "127.0.0.1:{port}", public_url: "{url}"}}
        database: {{dsn: "{clean_db}", min_connections: 1}}
        ami: {{host: 127.0.0.1, port: {sim.port}, username: callswitch, secret: secret}}
        dialing: {{poll_interval: 0.2s}}
        routing: {{file: routing.yaml}}
        sites:
          shop: {{site_key: pk_shop_123456, allowed_origins: ["{url}"], thank_you_url: "{url}/demo/thanks"}}
        """))
    config = load_config(tmp_path / "callswitch.yaml", env={})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, stop, rules=load_rules(config), demo=True))
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(15):
            while True:
                try:
                    async with http.get(url + "/readyz") as resp:
                        if resp.status == 200 and not (await resp.json())["degraded"]:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        ctx = await new_context()
        page = await ctx.new_page()
        await page.add_init_script("""window.__states = [];
            document.addEventListener("callswitch:status", e => window.__states.push(e.detail.state));""")
        await page.goto(url + "/demo/")
        await page.get_by_role("button", name="Call me back").click()
        dialog = page.get_by_role("dialog", name="Request a call back")
        await dialog.get_by_label("Your name").fill("Grace Hopper")
        await dialog.get_by_label("Phone number").fill("+1 773 555 0200")  # answers, talks, hangs up
        await dialog.get_by_role("button", name="Call me").click()
        message = page.locator(".cs-msg")
        await expect(message).to_have_text("Thank you for your call.", timeout=30_000)
        states = await page.evaluate("window.__states")
        # the visitor saw the call move forward: calling -> connecting -> connected -> completed
        phases = [("calling" if s in CALLING else "connecting" if s in CONNECTING else s) for s in states]
        seen = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
        assert seen == ["calling", "connecting", "connected", "completed"], states
        assert len(sim.originates) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sim.stop()
