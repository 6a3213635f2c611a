"""Shared set-up of the dialer tests: the whole stack (intake, Postgres, dialer) against the AMI simulator."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from callswitch.config import load_config
from callswitch.db.pool import Database, init_connection
from callswitch.db.wakeup import WorkSignal
from callswitch.dialer.worker import Dialer
from callswitch.intake.app import create_app
from callswitch.routing.reload import RulesHolder
from callswitch.testing.pbx import PbxSimulator, lab_behaviour

# Lab number plan (callswitch.testing.pbx.lab_behaviour), X any digit: agents +1312555010X accept,
# 011X decline, 012X no answer, 013X busy, 014X congestion; customers +1773555020X hang up after
# talking, 021X stay, 022X no answer, 023X busy, 024X unallocated.
ROUTING = """\
version: 1
defaults: {timezone: America/Chicago, ring_timeout: 5}
trunks:
  carrier: {dial: "PJSIP/{number}@carrier", caller_id: "+13125550000"}
destinations:
  store:
    members: [{members}]
    strategy: {strategy}
    mode: {mode}
    overflow: central
  central:
    members: ["+13125550100"]
default: store
"""

CONFIG = """\
database: {{dsn: "{dsn}", min_connections: 1, max_connections: 10}}
ami: {{host: 127.0.0.1, port: {port}, username: callswitch, secret: secret}}
dialing:
  poll_interval: 0.2s
  lease: 5s
  customer_retries: 1
  retry_backoff: [0.3s]
  busy_wait: 0.1s
  customer_timeout: 10
routing: {{file: routing.yaml}}
intake: {{rate_limits: {{per_ip: "off", per_phone: "off", per_site: "off"}}}}
sites:
  shop: {{site_key: pk_shop_123456, allowed_origins: ["https://shop.example"]}}
"""


@dataclass
class Stack:
    sim: PbxSimulator
    http: TestClient
    dialer: Dialer
    dsn: str

    async def post(self, phone: str) -> str:
        resp = await self.http.post("/v1/callbacks", json={"site_key": "pk_shop_123456", "name": "Ada", "phone": phone,
                                                           "page_url": "https://shop.example/pricing"},
                                    headers={"Origin": "https://shop.example"})
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["id"])

    async def wait_final(self, request_id: str, timeout: float = 30) -> asyncpg.Record:
        conn = await asyncpg.connect(self.dsn)
        await init_connection(conn)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    row = await conn.fetchrow("SELECT * FROM callback_requests WHERE id = $1::uuid", request_id)
                    if row["finished_at"] is not None and not self.dialer.active_calls:
                        return row
                    await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        await init_connection(conn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


StackFactory = Callable[..., Awaitable[Stack]]


async def start_stack(dsn: str, directory: Path, routing: str, *, config: str = CONFIG,
                      behaviour: Callable[[str], str] = lab_behaviour, time_scale: float = 0.01) -> Stack:
    """The simulator, intake and the dialer on ``dsn``: ``routing`` (YAML text) and ``config`` (a template like
    :data:`CONFIG`, with ``{dsn}`` and ``{port}``) are written to ``directory``. Stop it with :func:`stop_stack`."""
    sim = PbxSimulator(users={"callswitch": "secret"}, time_scale=time_scale, default_behaviour=behaviour)
    await sim.start()
    (directory / "routing.yaml").write_text(routing)
    (directory / "callswitch.yaml").write_text(textwrap.dedent(config.format(dsn=dsn, port=sim.port)))
    loaded = load_config(directory / "callswitch.yaml", env={})
    db = Database(loaded.database)
    await db.connect()
    rules = RulesHolder(loaded.routing_file or "")
    assert rules.reload(), rules.last_error
    work = WorkSignal(db)
    dialer = Dialer(loaded, db, rules, work=work, node="test-node")
    await dialer.start()
    assert await dialer.clients[0].wait_connected(5)
    http = TestClient(TestServer(create_app(loaded, db, rules=rules, work=work)))
    await http.start_server()
    return Stack(sim, http, dialer, dsn)


async def stop_stack(st: Stack) -> None:
    await st.http.close()
    await st.dialer.stop(deadline=5)
    await st.sim.stop()
    await st.dialer.db.close()


@pytest.fixture
async def stack(clean_db: str, tmp_path: Path) -> AsyncIterator[StackFactory]:
    made: list[Stack] = []

    async def make(members: str = '"+13125550100"', strategy: str = "sequential",
                   behaviour: Callable[[str], str] = lab_behaviour, dsn: str | None = None,
                   mode: str = "agent_first", overflow: bool = True, retries: int = 1) -> Stack:
        routing = ROUTING.replace("{members}", members).replace("{strategy}", strategy).replace("{mode}", mode)
        if not overflow:
            routing = routing.replace("    overflow: central\n", "")
        config = CONFIG.replace("customer_retries: 1", f"customer_retries: {retries}")
        st = await start_stack(dsn or clean_db, tmp_path, routing, behaviour=behaviour, config=config)
        made.append(st)
        return st

    yield make
    for st in made:
        await stop_stack(st)
