"""Against a real Asterisk 20/22 with the shipped dialplan (asterisk/) installed.

Run with CALLSWITCH_TEST_AMI=host:port:user:secret (e.g. the lab PBX in ../shared/asterisk/lab).
Numbers default to the lab carrier's plan: agent +13125550101 answers and presses 1, visitor
+17735550200 answers and hangs up after 5 s; CALLSWITCH_TEST_TRUNK is the dial string template of
the trunk towards them (default PJSIP/{number}@carrier). Skipped when CALLSWITCH_TEST_AMI is unset.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from callswitch.config import load_config
from callswitch.db.pool import Database
from callswitch.db.wakeup import WorkSignal
from callswitch.dialer.ami_client import AmiClient, AmiServer
from callswitch.dialer.worker import Dialer
from callswitch.routing.reload import RulesHolder

AMI = os.environ.get("CALLSWITCH_TEST_AMI", "")
pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.skipif(not AMI, reason="needs a real Asterisk: set CALLSWITCH_TEST_AMI=host:port:user:secret"),
]
CONTEXTS = ("callswitch-agent", "callswitch-confirm", "callswitch-customer", "callswitch-predial",
            "callswitch-leg-ended")


def server() -> AmiServer:
    host, port, user, secret = AMI.split(":", 3)
    return AmiServer("real", host, int(port), user, secret)


@pytest.fixture
async def ami() -> AsyncIterator[AmiClient]:
    client = AmiClient(server(), lambda _m: None)
    await client.start()
    assert await client.wait_connected(10), client.last_error
    yield client
    await client.stop()


async def test_login_and_version(ami: AmiClient) -> None:
    assert ami.version and ami.version.split(".")[0] in ("20", "21", "22", "23")


@pytest.mark.parametrize("context", CONTEXTS)
async def test_shipped_dialplan_is_installed(ami: AmiClient, context: str) -> None:
    messages = await ami.action("ShowDialPlan", {"Context": context}, complete_event="ShowDialPlanComplete")
    assert any(m.get("Event") == "ListDialplan" and m.get("Context") == context for m in messages)


async def test_agent_first_call_through_the_shipped_dialplan(clean_db: str, tmp_path: Path) -> None:
    s = server()
    trunk = os.environ.get("CALLSWITCH_TEST_TRUNK", "PJSIP/{number}@carrier")
    agent = os.environ.get("CALLSWITCH_TEST_AGENT", "+13125550101")
    visitor = os.environ.get("CALLSWITCH_TEST_VISITOR", "+17735550200")
    (tmp_path / "routing.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{timezone: UTC, ring_timeout: 20}}
        trunks: {{carrier: {{dial: "{trunk}", caller_id: "+13125550000"}}}}
        destinations: {{store: {{members: ["{agent}"]}}}}
        default: store
        """))
    (tmp_path / "callswitch.yaml").write_text(textwrap.dedent(f"""\
        database: {{dsn: "{clean_db}"}}
        ami: {{host: "{s.host}", port: {s.port}, username: "{s.username}", secret: "{s.secret}"}}
        routing: {{file: routing.yaml}}
        sites: {{shop: {{site_key: pk_shop_123456}}}}
        """))
    config = load_config(tmp_path / "callswitch.yaml", env={})
    db = Database(config.database)
    await db.connect()
    rules = RulesHolder(tmp_path / "routing.yaml")
    assert rules.reload(), rules.last_error
    dialer = Dialer(config, db, rules, work=WorkSignal(db), node="real-asterisk-test")
    await dialer.start()
    conn = await asyncpg.connect(clean_db)
    try:
        assert await dialer.clients[0].wait_connected(10)
        rid = await conn.fetchval(
            """INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country,
                   request_fingerprint) VALUES (gen_random_uuid(), 'shop', 'Test', $1, $1, 'US', 'x') RETURNING id""",
            visitor)
        dialer.wake()
        import asyncio

        async with asyncio.timeout(120):
            while await conn.fetchval("SELECT finished_at FROM callback_requests WHERE id = $1", rid) is None:
                await asyncio.sleep(0.5)
        row = await conn.fetchrow("SELECT state, outcome FROM callback_requests WHERE id = $1", rid)
        legs = await conn.fetch("SELECT leg, disposition FROM call_legs WHERE request_id = $1 ORDER BY id", rid)
        assert (row["state"], row["outcome"]) == ("completed", "connected")
        assert [(r["leg"], r["disposition"]) for r in legs] == [("agent", "accepted"), ("customer", "answered")]
    finally:
        await conn.close()
        await dialer.stop(10)
        await db.close()
