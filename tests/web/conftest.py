"""Fixtures for the widget tests: the intake app with ``setup_web`` on a real port, and a browser."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callswitch.config import Config, load_config
from callswitch.db.pool import Database
from callswitch.intake.app import create_app
from callswitch.web import setup_web
from callswitch.web.events import BROADCASTER, StreamSettings
from callswitch.web.status import StatusBroadcaster

SITE_KEY = "pk_web_shop"
CHROMIUM = os.environ.get("CALLSWITCH_TEST_CHROMIUM", "/usr/bin/chromium")  # Debian's package; never downloaded
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

CONFIG = """
http:
  listen: 127.0.0.1:{port}
  public_url: http://127.0.0.1:{port}
database:
  dsn: ${TEST_DSN}
  min_connections: 1
  max_connections: 6
  connect_timeout: 2s
intake:
  rate_limits: {per_ip: 1000/minute, per_phone: 50/hour, per_site: 1000/minute}
sites:
  shop:
    name: Example Shop
    site_key: pk_web_shop
    allowed_origins: [http://127.0.0.1:{port}, http://localhost:{port}, http://127.0.0.1:{other}]
    thank_you_url: http://localhost:{port}/demo/thanks
    time_zone: America/Chicago
    phone:
      default_region: US
      allowed_countries: [US, CA]
  consent:
    name: Consent GmbH
    site_key: pk_web_consent
    allowed_origins: [https://consent.example]
    require_consent: true
    max_preferred_days: 7
    phone:
      default_region: DE
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    """The intake app with the widget on a real port (browsers need one)."""

    config: Config
    db: Database
    server: TestServer
    client: TestClient
    dsn: str
    port: int
    other_port: int  # a second allowed origin, for a page on another origin

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def broadcaster(self) -> StatusBroadcaster:
        return self.server.app[BROADCASTER]

    async def set_state(self, request_id: str, state: str, notify: bool = True, **extra: Any) -> None:
        """What the dialer will do: change the state, then NOTIFY callswitch_status (delivered at commit)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            async with conn.transaction():
                final = state in ("completed", "failed", "cancelled", "expired", "rejected")
                await conn.execute(
                    "UPDATE callback_requests SET state = $2, state_changed_at = now(),"
                    " finished_at = CASE WHEN $3 THEN now() END, outcome = COALESCE($4, outcome) WHERE id = $1",
                    request_id, state, final, extra.get("outcome"),
                )
                if notify:
                    await conn.execute("SELECT pg_notify('callswitch_status', $1)", request_id)
        finally:
            await conn.close()


DaemonFactory = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def make_daemon(clean_db: str, tmp_path: Path) -> AsyncIterator[DaemonFactory]:
    started: list[Daemon] = []

    async def factory(demo: bool = True, poll_interval: float = 5.0, heartbeat: float = 15.0,
                      max_stream_seconds: float = 1800.0) -> Daemon:
        port, other = free_port(), free_port()
        path = tmp_path / f"callswitch-{len(started)}.yaml"
        path.write_text(textwrap.dedent(CONFIG).replace("{port}", str(port)).replace("{other}", str(other)))
        config = load_config(path, env={"TEST_DSN": clean_db})
        db = Database(config.database)
        await db.connect()
        app = create_app(config, db)
        setup_web(app, demo=demo, poll_interval=poll_interval,
                  stream=StreamSettings(heartbeat=heartbeat, max_stream_seconds=max_stream_seconds, retry_ms=500))
        server = TestServer(app, host="127.0.0.1", port=port)
        client = TestClient(server)
        await client.start_server()
        daemon = Daemon(config, db, server, client, clean_db, port, other)
        started.append(daemon)
        await asyncio.wait_for(daemon.broadcaster.listening.wait(), 10)
        return daemon

    yield factory
    for daemon in started:
        await daemon.client.close()
        await daemon.db.close()


@pytest.fixture
async def daemon(make_daemon: DaemonFactory) -> Daemon:
    return await make_daemon()


# ---------------------------------------------------------------------------------------------- browser


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium driven by Playwright; skipped when either is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright; no browser download needed)")
    async with async_playwright() as pw:
        try:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # e.g. a driver/browser mismatch
            pytest.skip(f"cannot launch {CHROMIUM}: {exc}")
        yield browser
        await browser.close()


@pytest.fixture
async def new_context(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Browser contexts for one test; on failure every open page is saved to test-artifacts/."""
    contexts: list[Any] = []
    console: list[str] = []

    async def factory(**options: Any) -> Any:
        ctx = await browser.new_context(**options)
        ctx.set_default_timeout(10_000)
        ctx.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        contexts.append(ctx)
        return ctx

    yield factory
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for c, ctx in enumerate(contexts):
            for i, page in enumerate(ctx.pages):
                with contextlib.suppress(Exception):
                    await page.screenshot(path=str(ARTIFACTS / f"{name}-{c}-{i}.png"), full_page=True)
        (ARTIFACTS / f"{name}-console.txt").write_text("\n".join(console))
    for ctx in contexts:
        await ctx.close()


@pytest.fixture
async def page(new_context: Callable[..., Awaitable[Any]]) -> Any:
    ctx = await new_context()
    return await ctx.new_page()


def axe_source() -> str | None:
    """axe-core as shipped by the axe-playwright-python package (MPL-2.0), if installed."""
    try:
        import axe_playwright_python
    except ImportError:
        return None
    path = Path(axe_playwright_python.__file__).with_name("axe.min.js")
    return path.read_text(encoding="utf-8") if path.exists() else None


async def serve_page(html: str, port: int) -> web.AppRunner:
    """A customer's page on another origin (the second allowed origin of the test config)."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
