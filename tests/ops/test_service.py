"""The running service: readiness, metrics, and a SIGTERM that lets calls finish."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from callswitch.config import Config, load_config
from callswitch.daemon import load_rules, serve
from callswitch.pgcluster import free_port
from callswitch.testing.pbx import PbxSimulator, lab_behaviour

CONFIG = """\
http: {{listen: "127.0.0.1:{port}", metrics_allow: {allow}}}
database: {{dsn: "{dsn}", min_connections: 1}}
ami: {{host: 127.0.0.1, port: {ami_port}, username: callswitch, secret: secret, ping_interval: 0.5s}}
admin: {{token: admin-token-0123456789}}
dialing: {{poll_interval: 0.2s, lease: 2s, drain_timeout: 20s, busy_wait: 0.2s}}
intake: {{rate_limits: {{per_ip: "off", per_phone: "off", per_site: "off"}}}}
routing: {{file: routing.yaml}}
sites:
  shop: {{site_key: pk_shop_123456, allowed_origins: ["https://shop.example"]}}
"""
ROUTING = """\
version: 1
defaults: {timezone: UTC, ring_timeout: 5}
trunks: {carrier: {dial: "PJSIP/{number}@carrier"}}
destinations: {store: {members: ["+13125550100"]}}
default: store
"""


@dataclass
class Running:
    url: str
    config: Config
    sim: PbxSimulator
    stop: asyncio.Event
    task: asyncio.Task[int]
    dsn: str

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path, **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def post(self, phone: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http, http.post(
            self.url + "/v1/callbacks", json={"site_key": "pk_shop_123456", "name": "Ada", "phone": phone},
            headers={"Origin": "https://shop.example"}) as resp:
            return resp.status, await resp.json()

    async def ready(self, timeout: float = 15) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    status, body = await self.get("/readyz")
                except aiohttp.ClientConnectionError:  # not listening yet
                    status, body = 0, {}
                if status == 200 and not body["degraded"]:
                    return dict(body)
                await asyncio.sleep(0.1)


async def start(clean_db: str, tmp_path: Path, allow: str = '["127.0.0.0/8"]', time_scale: float = 0.01) -> Running:
    sim = PbxSimulator(users={"callswitch": "secret"}, time_scale=time_scale, default_behaviour=lab_behaviour)
    await sim.start()
    port = free_port()
    (tmp_path / "routing.yaml").write_text(ROUTING)
    (tmp_path / "callswitch.yaml").write_text(textwrap.dedent(
        CONFIG.format(port=port, allow=allow, dsn=clean_db, ami_port=sim.port)))
    config = load_config(tmp_path / "callswitch.yaml", env={})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, stop, rules=load_rules(config)))
    return Running(f"http://127.0.0.1:{port}", config, sim, stop, task, clean_db)


@pytest.fixture
async def running(clean_db: str, tmp_path: Path) -> AsyncIterator[Running]:
    r = await start(clean_db, tmp_path)
    yield r
    r.stop.set()
    await asyncio.wait_for(r.task, 30)
    await r.sim.stop()


async def test_readiness_reports_each_dependency_and_degrades_without_asterisk(running: Running) -> None:
    body = await running.ready()
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["schema"]["ok"] and checks["rules"]["ok"]
    assert checks["asterisk:pbx"]["ok"] and "22.10.1" in checks["asterisk:pbx"]["detail"]
    await running.sim.stop()  # Asterisk goes away: still ready for intake, but degraded
    async with asyncio.timeout(10):
        while True:
            status, body = await running.get("/readyz")
            if body["degraded"]:
                break
            await asyncio.sleep(0.1)
    assert status == 200 and body["ready"] and not body["checks"]["asterisk:pbx"]["ok"]
    assert (await running.post("+17735550200"))[0] == 202  # intake keeps accepting
    restarted = PbxSimulator(users={"callswitch": "secret"}, time_scale=0.01)
    await restarted.start(port=running.config.ami.port)
    running.sim = restarted
    await running.ready()


async def test_metrics_are_prometheus_text_for_allowed_addresses(running: Running) -> None:
    await running.ready()
    status, _ = await running.post("+17735550200")
    assert status == 202
    status, text = await running.get("/metrics")
    assert status == 200
    assert 'callswitch_intake_accepted_total{created="true",site="shop"} 1.0' in text
    assert 'callswitch_ami_connected{server="pbx"} 1.0' in text
    assert "callswitch_db_up 1.0" in text and "callswitch_rules_generation 1.0" in text
    async with asyncio.timeout(10):
        while 'callswitch_attempt_outcomes_total{outcome="connected"} 1.0' not in text:
            await asyncio.sleep(0.1)
            _, text = await running.get("/metrics")
    assert "callswitch_leg_outcomes_total{" in text


async def test_metrics_refused_to_other_addresses_without_the_token(clean_db: str, tmp_path: Path) -> None:
    r = await start(clean_db, tmp_path, allow='["10.0.0.0/8"]')
    try:
        await r.ready()
        status, body = await r.get("/metrics")
        assert status == 403 and body["error"] == "forbidden"
        status, _ = await r.get("/metrics", headers={"Authorization": "Bearer admin-token-0123456789"})
        assert status == 200
        # a token that is not UTF-8 is refused, not a server error
        host, port = r.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Authorization: Bearer \xff\xfeadmin-token-0123456789\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 403"), status_line
    finally:
        r.stop.set()
        await asyncio.wait_for(r.task, 30)
        await r.sim.stop()


async def test_sigterm_lets_the_call_finish_and_hands_back_queued_work(clean_db: str, tmp_path: Path) -> None:
    r = await start(clean_db, tmp_path, time_scale=0.1)  # a call lasts about 1.5 s
    conn = await asyncpg.connect(clean_db)
    try:
        await r.ready()
        _, first = await r.post("+17735550200")
        async with asyncio.timeout(10):
            while not r.sim.originates:
                await asyncio.sleep(0.02)
        _, second = await r.post("+17735550201")  # waits: the only agent is on the first call
        r.stop.set()  # what SIGTERM does
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as http, http.post(
                r.url + "/v1/callbacks", json={"site_key": "pk_shop_123456", "name": "Late", "phone": "+17735550202"},
                headers={"Origin": "https://shop.example"}) as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "5"
            assert (await resp.json())["error"] == "shutting_down"
        assert await asyncio.wait_for(r.task, 30) == 0
        row = await conn.fetchrow("SELECT state, outcome FROM callback_requests WHERE id = $1::uuid", first["id"])
        assert (row["state"], row["outcome"]) == ("completed", "connected")
        row = await conn.fetchrow("SELECT state, lease_owner FROM callback_requests WHERE id = $1::uuid", second["id"])
        assert row["state"] == "queued" and row["lease_owner"] is None  # another node can take it at once
    finally:
        await conn.close()
        await r.sim.stop()


async def test_readiness_flips_when_postgres_goes_away_and_comes_back(clean_db: str, tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    from tests.intake.test_database_down import via
    from tests.tcpproxy import TcpProxy

    parts = urlsplit(clean_db)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    r = await start(via(clean_db, proxy.port), tmp_path)
    try:
        await r.ready()
        proxy.refuse = True
        proxy.cut_all()
        async with asyncio.timeout(15):
            while True:
                status, body = await r.get("/readyz")
                if status == 503:
                    break
                await asyncio.sleep(0.1)
        assert not body["ready"] and not body["checks"]["database"]["ok"]
        status, _ = await r.post("+17735550200")
        assert status == 503  # nothing can be stored: the visitor's page is told to retry
        proxy.refuse = False
        body = await r.ready()
        assert body["checks"]["database"]["ok"]
        assert (await r.post("+17735550200"))[0] == 202
    finally:
        r.stop.set()
        await asyncio.wait_for(r.task, 30)
        await r.sim.stop()
        await proxy.stop()
