"""Faults mid-call: AMI connection lost, Asterisk restarted, the daemon SIGKILLed, Postgres restarted.

Each ends with the request in a final state, its legs recorded, and no leg originated twice
(asserted on the simulator's own record of the Originates it received).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from callswitch.dialer.ami_client import AmiClient, AmiServer
from callswitch.dialer.worker import TAKEN_OVER_BY_MARK
from callswitch.pgcluster import LocalCluster
from callswitch.testing.pbx import PbxSimulator, lab_behaviour
from tests.conftest import with_database
from tests.dialer.conftest import Stack, StackFactory

STAYS = "+17735550210"  # the visitor stays on the line until the other side hangs up
ROOT = Path(__file__).resolve().parents[2]


async def wait_for_state(st: Stack, rid: str, state: str, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            rows = await st.fetch("SELECT state FROM callback_requests WHERE id = $1::uuid", rid)
            if rows and rows[0]["state"] == state:
                return
            await asyncio.sleep(0.05)


async def hang_up_everything(port: int) -> int:
    """What a person hanging up does: ask the PBX to hang up every channel."""
    client = AmiClient(AmiServer("ops", "127.0.0.1", port, "callswitch", "secret"), lambda _m: None)
    await client.start()
    try:
        assert await client.wait_connected(5)
        channels = await client.channels()
        for ch in channels:
            await client.action("Hangup", {"Channel": ch["Channel"]})
        return len(channels)
    finally:
        await client.stop()


def assert_no_leg_originated_twice(sim: PbxSimulator) -> None:
    ids = [o.headers.get("ChannelId") for o in sim.originates]
    assert len(ids) == len(set(ids)), ids


async def go_deaf_once_accepted(st: Stack, rid: str) -> None:
    """Once the agent accepted, nothing more reaches the daemon over AMI (the link is half dead)."""
    async with asyncio.timeout(30):
        while (await st.fetch("SELECT state FROM callback_requests WHERE id = $1::uuid", rid))[0]["state"] not in (
                "accepted", "dialing_customer"):
            await asyncio.sleep(0.02)
    for session in st.sim._sessions.values():
        session.events = False


async def test_ami_connection_lost_mid_call(stack: StackFactory) -> None:
    st = await stack()
    rid = await st.post(STAYS)
    await wait_for_state(st, rid, "connected")
    client = st.dialer.clients[0]
    await st.sim.drop_connections()
    async with asyncio.timeout(10):
        while client.reconnects < 1 or not client.connected:
            await asyncio.sleep(0.05)
    assert await hang_up_everything(st.sim.port) >= 1
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("completed", "connected")
    assert len(st.sim.originates) == 1
    legs = await st.fetch("SELECT leg, ended_at FROM call_legs WHERE request_id = $1::uuid", rid)
    assert sorted(leg["leg"] for leg in legs) == ["agent", "customer"] and all(leg["ended_at"] for leg in legs)


async def test_visitor_answering_while_the_events_are_lost_is_known_after_the_reconnect(stack: StackFactory) -> None:
    """The AMI connection is deaf while the visitor answers: after the reconnect CoreShowChannels says the
    visitor's channel is Up, so the call counts as connected (and the visitor is not dialled again)."""
    st = await stack()
    st.sim.time_scale = 0.3  # slow enough to go deaf between the acceptance and the visitor's answer
    rid = await st.post(STAYS)
    await go_deaf_once_accepted(st, rid)
    async with asyncio.timeout(20):  # the visitor's channel (Linkedid: the agent's) is answered
        while not any(ch.state == "Up" and ch.uniqueid != ch.linkedid for ch in st.sim.channels.values()):
            await asyncio.sleep(0.05)
    assert await st.fetch("SELECT state FROM callback_requests WHERE id = $1::uuid AND state = 'connected'",
                          rid) == []  # the daemon did not hear the answer
    client = st.dialer.clients[0]
    await st.sim.drop_connections()
    async with asyncio.timeout(10):
        while client.reconnects < 1 or not client.connected:
            await asyncio.sleep(0.05)
    await wait_for_state(st, rid, "connected")
    assert await hang_up_everything(st.sim.port) >= 1
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("completed", "connected")
    assert len(st.sim.originates) == 1
    legs = await st.fetch("SELECT leg, answered_at, disposition FROM call_legs WHERE request_id = $1::uuid", rid)
    assert sorted((r["leg"], r["disposition"]) for r in legs) == [("agent", "accepted"), ("customer", "answered")]


@pytest.mark.parametrize("mark_kept", [True, False], ids=["astdb-mark", "mark-lost"])
async def test_call_that_connected_and_ended_while_the_events_were_lost(stack: StackFactory, mark_kept: bool) -> None:
    """The AMI link is deaf from the acceptance until after the call ended: after the reconnect no channel is
    left to ask, and only the dialplan's AstDB mark says the visitor answered. With it the call counts as
    connected; without it (``mark-lost``, the control) the agent's vanished leg ends the attempt as not
    reached and the visitor is dialled again."""
    st = await stack(retries=1)
    st.sim.time_scale = 0.3  # slow enough to go deaf between the acceptance and the visitor's answer
    rid = await st.post(STAYS)
    await go_deaf_once_accepted(st, rid)
    async with asyncio.timeout(20):
        while not any(f"{rid}-1" in keys for keys in st.sim.astdb.values()):  # the visitor answered
            await asyncio.sleep(0.05)
    for ch in list(st.sim.channels.values()):  # the call ends, unheard
        st.sim._hangup(ch)
    async with asyncio.timeout(10):
        while st.sim.channels:
            await asyncio.sleep(0.05)
    if not mark_kept:
        st.sim.astdb.clear()
    client = st.dialer.clients[0]
    await st.sim.drop_connections()
    async with asyncio.timeout(10):
        while client.reconnects < 1 or not client.connected:
            await asyncio.sleep(0.05)
    if mark_kept:
        row = await st.wait_final(rid)
        assert (row["state"], row["outcome"]) == ("completed", "connected")
        assert len(st.sim.originates) == 1
        legs = await st.fetch("SELECT leg, disposition, answered_at, ended_at FROM call_legs "
                              "WHERE request_id = $1::uuid ORDER BY leg", rid)
        assert [(r["leg"], r["disposition"]) for r in legs] == [("agent", "accepted"), ("customer", "answered")]
        assert all(r["answered_at"] and r["ended_at"] for r in legs)
    else:
        async with asyncio.timeout(20):
            while len(st.sim.originates) < 2:
                await asyncio.sleep(0.05)
        attempt = await st.fetch("SELECT outcome FROM call_attempts WHERE request_id = $1::uuid AND attempt = 1", rid)
        assert attempt[0]["outcome"] != "connected"


async def test_asterisk_restarted_mid_call(stack: StackFactory) -> None:
    st = await stack()
    rid = await st.post(STAYS)
    await wait_for_state(st, rid, "connected")
    port = st.sim.port
    await st.sim.stop()  # the PBX dies: its calls vanish without a single event
    restarted = PbxSimulator(users={"callswitch": "secret"}, time_scale=0.01, default_behaviour=lab_behaviour)
    await restarted.start(port=port)
    originates_before = list(st.sim.originates)
    st.sim = restarted
    row = await st.wait_final(rid)
    # the visitor had answered: the call counts as connected, and nobody is dialled again
    assert (row["state"], row["outcome"]) == ("completed", "connected")
    assert len(originates_before) == 1 and restarted.originates == []
    assert await st.fetch("SELECT * FROM dialer_channels") == []


CONFIG = """\
http: {{listen: "127.0.0.1:{http_port}"}}
database: {{dsn: "{dsn}", min_connections: 1, max_connections: 5}}
ami: {{host: 127.0.0.1, port: {ami_port}, username: callswitch, secret: secret}}
dialing: {{poll_interval: 0.2s, lease: 1s, customer_retries: 1, retry_backoff: [0.2s], busy_wait: 0.1s}}
routing: {{file: routing.yaml}}
logging: {{level: info, format: json}}
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


def start_daemon(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "callswitch", "serve", "-c", str(cfg)], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def post_when_up(http_port: int, phone: str) -> str:
    """POST a callback request as soon as the daemon answers; its id."""
    import aiohttp

    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            try:
                async with http.post(f"http://127.0.0.1:{http_port}/v1/callbacks",
                                     json={"site_key": "pk_shop_123456", "name": "Ada", "phone": phone},
                                     headers={"Origin": "https://shop.example"}) as resp:
                    if resp.status == 202:
                        return str((await resp.json())["id"])
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30, every: float = 0.05) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(every)


@dataclass
class DaemonRig:
    """Daemons in processes of their own (so that they can be SIGKILLed) on one database and one simulator."""

    sim: PbxSimulator
    cfg: Path
    log: Path
    http_port: int
    conn: asyncpg.Connection
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_daemon(self) -> subprocess.Popen[bytes]:
        proc = start_daemon(self.cfg, self.log)
        self.daemons.append(proc)
        return proc

    async def request_state(self, rid: str) -> str | None:
        return await self.conn.fetchval("SELECT state FROM callback_requests WHERE id = $1::uuid", rid)

    async def finished(self, rid: str) -> bool:
        done = await self.conn.fetchval("SELECT finished_at FROM callback_requests WHERE id = $1::uuid", rid)
        return done is not None


@contextlib.asynccontextmanager
async def daemon_rig(dsn: str, tmp_path: Path, time_scale: float) -> AsyncIterator[DaemonRig]:
    from callswitch.pgcluster import free_port

    sim = PbxSimulator(users={"callswitch": "secret"}, time_scale=time_scale)
    await sim.start()
    (tmp_path / "routing.yaml").write_text(ROUTING)
    cfg = tmp_path / "callswitch.yaml"
    http_port = free_port()
    cfg.write_text(textwrap.dedent(CONFIG.format(http_port=http_port, dsn=dsn, ami_port=sim.port)))
    rig = DaemonRig(sim, cfg, tmp_path / "daemon.log", http_port, await asyncpg.connect(dsn))
    try:
        yield rig
    finally:
        await rig.conn.close()
        for proc in rig.daemons:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:  # draining a call that is still up
                    proc.kill()
                    proc.wait(15)
        await sim.stop()


async def test_daemon_killed_mid_call_is_taken_over_without_dialling_again(clean_db: str, tmp_path: Path) -> None:
    async with daemon_rig(clean_db, tmp_path, time_scale=0.01) as rig:
        first = rig.start_daemon()
        rid = await post_when_up(rig.http_port, STAYS)

        async def connected() -> bool:
            return await rig.request_state(rid) == "connected"

        await wait_until(connected)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        rig.start_daemon()
        await asyncio.sleep(2.0)  # the lease lapses and the second daemon finds the call still up
        assert not await rig.finished(rid)
        assert await hang_up_everything(rig.sim.port) >= 1
        await wait_until(lambda: rig.finished(rid), every=0.1)
        row = await rig.conn.fetchrow("SELECT state, outcome FROM callback_requests WHERE id = $1::uuid", rid)
        assert (row["state"], row["outcome"]) == ("completed", "connected"), rig.log.read_text()[-3000:]
        assert len(rig.sim.originates) == 1  # the visitor was not called again
        assert await rig.conn.fetchval("SELECT count(*) FROM call_legs WHERE ended_at IS NULL") == 0


@pytest.mark.parametrize("mark_kept", [True, False], ids=["astdb-mark", "mark-lost"])
async def test_visitor_who_answered_after_the_daemon_died_is_not_dialled_again(
    clean_db: str, tmp_path: Path, mark_kept: bool
) -> None:
    """The daemon dies after the agent accepted, before the visitor answers; the call goes on in Asterisk and
    ends before another daemon takes the request over. Nothing on record says the visitor answered: only the
    dialplan's AstDB mark (callswitch-mark-connected) does. Without it (``mark-lost``, the control) the
    take-over counts the attempt as failed and dials the visitor again."""
    async with daemon_rig(clean_db, tmp_path, time_scale=0.1) as rig:  # 0.2 s between acceptance and answer
        first = rig.start_daemon()
        rid = await post_when_up(rig.http_port, STAYS)

        async def agent_accepted() -> bool:
            return await rig.request_state(rid) in ("accepted", "dialing_customer")

        await wait_until(agent_accepted, every=0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert await rig.request_state(rid) != "connected"

        async def visitor_answered() -> bool:
            return any(f"{rid}-1" in keys for keys in rig.sim.astdb.values())

        await wait_until(visitor_answered, timeout=10)
        assert await hang_up_everything(rig.sim.port) >= 1  # the call ends while no daemon is alive
        if not mark_kept:
            rig.sim.astdb.clear()
        rig.start_daemon()

        async def settled() -> bool:  # finished, or (the control) dialled again
            return await rig.finished(rid) or len(rig.sim.originates) > 1

        await wait_until(settled, timeout=60, every=0.1)
        first_attempt, detail = await rig.conn.fetchrow(
            "SELECT outcome, outcome_detail FROM call_attempts WHERE request_id = $1::uuid AND attempt = 1", rid)
        if mark_kept:
            row = await rig.conn.fetchrow("SELECT state, outcome FROM callback_requests WHERE id = $1::uuid", rid)
            assert (row["state"], row["outcome"], first_attempt) == ("completed", "connected", "connected"), \
                rig.log.read_text()[-3000:]
            assert detail == TAKEN_OVER_BY_MARK  # analysts can tell why its legs lack the answer
            assert len(rig.sim.originates) == 1  # the visitor was not called again
        else:
            assert first_attempt == "failed", rig.log.read_text()[-3000:]
            assert len(rig.sim.originates) == 2  # dialled again: what the mark prevents


@pytest.mark.slow
async def test_postgres_restarted_mid_call(stack: StackFactory) -> None:
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="callswitch-pgrestart-")))
    await asyncio.to_thread(cluster.start)
    try:
        admin = await asyncpg.connect(cluster.dsn())
        await admin.execute("CREATE DATABASE faults")
        await admin.close()
        dsn = with_database(cluster.dsn(), "faults")
        from callswitch.db.migrate import migrate

        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.close()
        st = await stack(dsn=dsn)
        rid = await st.post(STAYS)
        await wait_for_state(st, rid, "connected")
        await asyncio.to_thread(cluster.stop, "fast")
        assert await hang_up_everything(st.sim.port) >= 1  # the call ends while Postgres is down
        await asyncio.sleep(0.5)
        await asyncio.to_thread(cluster.start)
        row = await st.wait_final(rid)
        assert (row["state"], row["outcome"]) == ("completed", "connected")
        assert len(st.sim.originates) == 1
        legs = await st.fetch("SELECT leg, disposition, ended_at FROM call_legs WHERE request_id = $1::uuid", rid)
        assert sorted(leg["leg"] for leg in legs) == ["agent", "customer"] and all(leg["ended_at"] for leg in legs)
    finally:
        await asyncio.to_thread(cluster.destroy)
