"""AmiClient against the PBX simulator (and a raw AMI server for what the simulator cannot do: a silent peer)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import structlog

from callswitch.ami import AmiMessage, AmiParser
from callswitch.dialer.ami_client import (
    DEFAULT_EVENT_FILTERS,
    AmiActionFailed,
    AmiActionTimeout,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
    AmiServer,
)
from callswitch.dialer.worker import connected_mark_families
from callswitch.testing.pbx import PbxSimulator

USER, SECRET = "callswitch", "s3cret-value"
AGENT_BUSY = "13125550131"  # refused at once: OriginateResponse Failure
AGENT_NOANSWER = "13125550121"  # rings until the Originate Timeout
AGENT_ACCEPTS = "13125550101"
AGENT_DECLINES = "13125550111"
CUSTOMER_STAYS = "17735550211"  # stays on the line until a Hangup action


class Pbx(PbxSimulator):
    """The simulator, counting connections, and able to drop every connection when an Originate arrives."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connections = 0
        self.drop_on_originate = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await super()._serve(reader, writer)

    async def _handle(self, s: Any, m: AmiMessage) -> bool:
        if self.drop_on_originate and (m.get_ci("Action") or "").lower() == "originate":
            self.drop_on_originate = False
            await self.drop_connections()  # before any reply: the Originate is received, its response never sent
        return await super()._handle(s, m)


class RawAmi:
    """A bare AMI server: banner, Login, CoreSettings, Filter, Ping, Logoff. Records every action; never answers
    the actions named in ``unanswered``; connections in ``silent`` stop answering anything (a dead peer)."""

    def __init__(self, secret: str = SECRET, version: str = "22.10.1") -> None:
        self.secret = secret
        self.version = version
        self.actions: list[AmiMessage] = []
        self.unanswered = {"NoAnswer"}
        self.silent: set[int] = set()
        self.closed: dict[int, asyncio.Event] = {}
        self.port = 0
        self._ids = itertools.count(1)
        self._open: set[int] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def silence_open_connections(self) -> list[int]:
        self.silent |= self._open
        return sorted(self._open)

    def names(self) -> list[str]:
        return [m.get_ci("Action") or "" for m in self.actions]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self._ids)
        self.closed[conn] = asyncio.Event()
        self._open.add(conn)
        self._writers.add(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        parser = AmiParser(expect_banner=False)
        try:
            while data := await reader.read(65536):
                for m in parser.feed(data):
                    self.actions.append(m)
                    if conn not in self.silent and not self._answer(m, writer):
                        await writer.drain()
                        return
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._open.discard(conn)
            self._writers.discard(writer)
            self.closed[conn].set()
            writer.close()

    def _answer(self, m: AmiMessage, writer: asyncio.StreamWriter) -> bool:
        name = m.get_ci("Action") or ""

        def reply(*lines: str) -> None:
            writer.write("\r\n".join((*lines[:1], f"ActionID: {m.action_id}", *lines[1:])).encode() + b"\r\n\r\n")

        if name in self.unanswered:
            return True
        if name == "Login":
            if m.get("Secret") != self.secret:
                reply("Response: Error", "Message: Authentication failed")
                return False
            reply("Response: Success", "Message: Authentication accepted")
            writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
        elif name == "CoreSettings":
            reply("Response: Success", "AMIversion: 11.0.0", f"AsteriskVersion: {self.version}", "SystemName: lab")
        elif name == "Filter":
            reply("Response: Success", "Message: Success")
        elif name == "Ping":
            reply("Response: Success", "Ping: Pong", "Timestamp: 1795403834.525729")
        elif name == "Logoff":
            reply("Response: Goodbye", "Message: Thanks for all the fish.")
            return False
        else:
            reply("Response: Error", f"Message: Invalid/unknown command: {name}.")
        return True


async def eventually(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def sim() -> AsyncIterator[Pbx]:
    s = Pbx(users={USER: SECRET}, time_scale=0.01)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def raw() -> AsyncIterator[RawAmi]:
    s = RawAmi()
    await s.start()
    yield s
    await s.stop()


MakeClient = Callable[..., AmiClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[AmiClient] = []

    def make(port: int, events: list[AmiMessage] | None = None, *, secret: str = SECRET, **options: Any) -> AmiClient:
        opts: dict[str, Any] = {"ping_interval": 0.2, "ping_timeout": 0.2, "backoff_initial": 0.05,
                                "backoff_max": 0.2, "connect_timeout": 1.0}
        opts.update(options)
        sink = events.append if events is not None else (lambda _m: None)
        client = AmiClient(AmiServer("lab", "127.0.0.1", port, USER, secret), sink, **opts)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop()


def originate_args(action_id: str, agent: str, customer: str = "17735550201", **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "action_id": action_id, "channel": f"PJSIP/{agent}@carrier", "context": "callswitch-agent", "exten": "s",
        "timeout_ms": 30000, "channel_id": f"{action_id}-a1", "caller_id": f'"Web Callback" <{customer}>',
        "variables": {"__CS_REQUEST_ID": f"req-{action_id}", "__CS_ATTEMPT": "1", "__CS_CUSTOMER": customer},
    }
    args.update(extra)
    return args


def originate_responses(events: list[AmiMessage], action_id: str) -> list[AmiMessage]:
    return [m for m in events if m.event == "OriginateResponse" and m.action_id == action_id]


# ---------------------------------------------------------------------------------------------- login
async def test_login_version_and_on_connected(sim: Pbx, make_client: MakeClient) -> None:
    events: list[AmiMessage] = []
    seen: list[tuple[str, int]] = []
    client: AmiClient

    async def on_connected() -> None:  # actions work here; callers of wait_connected are not released yet
        seen.append((client.state, len(await client.channels())))

    client = make_client(sim.port, events, on_connected=on_connected)
    assert client.state == "disconnected" and not client.connected
    await client.start()
    assert await client.wait_connected(5)
    assert client.state == "connected" and client.connected
    assert client.version == "22.10.1"  # the simulator has no CoreSettings: from "core show version"
    assert client.ami_version == "11.0.0"
    assert seen == [("connecting", 0)]
    assert client.reconnects == 0 and client.last_error is None
    assert [m.event for m in events] == ["FullyBooted"]
    assert client.last_event_at is not None
    assert SECRET not in repr(client.server)


async def test_version_from_coresettings_and_filters_after_login(raw: RawAmi, make_client: MakeClient) -> None:
    raw.version = "22.10.1-lab"
    client = make_client(raw.port)
    await client.start()
    assert await client.wait_connected(5)
    assert client.version == "22.10.1-lab" and client.ami_version == "11.0.0"
    names = raw.names()
    assert names[:2] == ["Login", "CoreSettings"]
    assert raw.actions[0]["Username"] == USER and raw.actions[0]["Secret"] == SECRET
    filters = [m for m in raw.actions if m["Action"] == "Filter"]
    assert [(m["Operation"], m["Filter"]) for m in filters] == [("Add", f) for f in DEFAULT_EVENT_FILTERS]
    assert names.index("Filter") > names.index("Login")
    await client.stop()
    assert client.state == "stopped"
    assert raw.names()[-1] == "Logoff"
    assert not await client.wait_connected(0.01)
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")


def test_default_filter_whitelists_the_dialer_events_and_list_items() -> None:
    import re

    (regex,) = DEFAULT_EVENT_FILTERS
    for name in ("OriginateResponse", "Newchannel", "Hangup", "HangupRequest", "Cdr", "UserEvent", "BridgeEnter",
                 "CoreShowChannel", "CoreShowChannelsComplete", "Status", "StatusComplete", "DialEnd"):
        assert re.search(regex, f"Event: {name}\r\nPrivilege: call,all\r\n"), name
    for name in ("Newexten", "VarSet", "DeviceStateChange", "RTCPSent", "NewCallerid", "BridgeCreate"):
        assert not re.search(regex, f"Event: {name}\r\nPrivilege: call,all\r\n"), name


@pytest.mark.parametrize("filtered", [True, False])
async def test_filter_takes_effect(sim: Pbx, make_client: MakeClient, filtered: bool) -> None:
    events: list[AmiMessage] = []
    client = make_client(sim.port, events, **({} if filtered else {"event_filters": ()}))
    await client.start()
    assert await client.wait_connected(5)
    await client.originate(**originate_args("cbF1", AGENT_ACCEPTS, "17735550201"))
    await eventually(lambda: any(m.event == "Cdr" for m in events) and len(sim.channels) == 0)
    names = {m.event for m in events}
    assert {"OriginateResponse", "Newchannel", "DialEnd", "BridgeEnter", "Hangup", "Cdr", "UserEvent"} <= names
    noise = {"DeviceStateChange", "NewCallerid", "NewConnectedLine", "RTCPSent", "BridgeCreate"}
    if filtered:
        assert names & noise == set()
    else:
        assert noise <= names


async def test_bad_secret_login_failed_then_fixed(sim: Pbx, make_client: MakeClient) -> None:
    sim.users[USER] = "another"
    with structlog.testing.capture_logs() as logs:
        client = make_client(sim.port, secret=SECRET, backoff_initial=0.01, backoff_max=0.3)
        await client.start()
        assert await client.wait_for_state("login_failed", timeout=5)
        assert client.last_error == f"AMI login failed for user {USER} at 127.0.0.1:{sim.port}: Authentication failed"
        with pytest.raises(AmiNotConnected):
            await client.originate(**originate_args("cbL1", AGENT_BUSY))
        await asyncio.sleep(0.45)  # no tight loop: retried about every backoff_max (0.3 s)
        assert 1 <= sim.connections <= 3
        assert not client.connected and sim.originates == []
        sim.users[USER] = SECRET  # credentials fixed on the PBX
        assert await client.wait_connected(5)
    failures = [e for e in logs if e["event"] == "ami_login_failed"]
    assert failures and failures[0]["log_level"] == "error"
    assert failures[0]["error"] == f"AMI login failed for user {USER} at 127.0.0.1:{sim.port}: Authentication failed"
    assert not any(SECRET in repr(e) for e in logs)


async def test_on_connected_failure_drops_and_retries(sim: Pbx, make_client: MakeClient) -> None:
    calls = 0

    async def on_connected() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database down")

    client = make_client(sim.port, on_connected=on_connected)
    await client.start()
    assert await client.wait_connected(5)
    assert calls == 2 and sim.connections == 2 and client.reconnects == 0


# ---------------------------------------------------------------------------------------------- originate
async def test_originate_returns_when_queued_and_response_comes_as_event(sim: Pbx, make_client: MakeClient) -> None:
    events: list[AmiMessage] = []
    client = make_client(sim.port, events)
    await client.start()
    assert await client.wait_connected(5)
    # no answer: the OriginateResponse comes only when the 30 s Timeout expires (0.3 s at this time scale)
    await client.originate(**originate_args("cbO1", AGENT_NOANSWER, account="shop-1"))
    assert originate_responses(events, "cbO1") == []  # returned at "Originate successfully queued"
    await eventually(lambda: len(originate_responses(events, "cbO1")) == 1)  # then delivered as an event
    (resp,) = originate_responses(events, "cbO1")
    assert resp["Response"] == "Failure" and resp["Uniqueid"] == "cbO1-a1"
    (rec,) = sim.originates
    assert rec.headers["ActionID"] == "cbO1" and rec.headers["Async"] == "true"
    assert rec.headers["ChannelId"] == "cbO1-a1" and rec.headers["Timeout"] == "30000"
    assert rec.headers["Account"] == "shop-1" and rec.headers["CallerID"] == '"Web Callback" <17735550201>'
    assert rec.variables == {"CS_REQUEST_ID": "req-cbO1", "CS_ATTEMPT": "1", "CS_CUSTOMER": "17735550201"}


async def test_originate_unknown_context_raises(sim: Pbx, make_client: MakeClient) -> None:
    client = make_client(sim.port)
    await client.start()
    assert await client.wait_connected(5)
    with pytest.raises(AmiActionFailed) as info:
        await client.originate(**originate_args("cbX1", AGENT_BUSY, context="cs-nonexistent"))
    assert info.value.message == "Extension does not exist."
    assert info.value.response["Response"] == "Error" and info.value.response.action_id == "cbX1"
    assert "Extension does not exist." in str(info.value)
    assert len(sim.originates) == 1 and client.connected


async def test_originate_when_not_connected_is_never_sent(sim: Pbx, make_client: MakeClient) -> None:
    idle = make_client(sim.port)
    with pytest.raises(AmiNotConnected):
        await idle.originate(**originate_args("cbN1", AGENT_BUSY))
    port = sim.port
    await sim.stop()  # nothing listens any more
    client = make_client(port)
    await client.start()
    assert not await client.wait_connected(0.2)
    with pytest.raises(AmiNotConnected):
        await client.originate(**originate_args("cbN2", AGENT_BUSY))
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")
    assert client.last_error is not None and "Connect" in client.last_error
    assert sim.originates == []


async def test_originate_rejects_header_and_variable_injection(sim: Pbx, make_client: MakeClient) -> None:
    client = make_client(sim.port)
    await client.start()
    assert await client.wait_connected(5)
    with pytest.raises(ValueError, match="CR or LF"):
        await client.originate(**originate_args("cbI1", AGENT_BUSY, caller_id='"x"\r\nAction: Hangup <1>'))
    with pytest.raises(ValueError, match="must not contain ','"):
        await client.originate(**originate_args("cbI2", AGENT_BUSY, variables={"CS_NAME": "a,CS_CUSTOMER_DIAL=x"}))
    with pytest.raises(ValueError, match="variable name"):
        await client.originate(**originate_args("cbI3", AGENT_BUSY, variables={"A=B": "1"}))
    await client.action("Ping")
    assert sim.originates == [] and client.connected


async def test_connection_drop_fails_pending_originate_without_resend(sim: Pbx, make_client: MakeClient) -> None:
    events: list[AmiMessage] = []
    connected_calls = 0

    async def on_connected() -> None:
        nonlocal connected_calls
        connected_calls += 1

    client = make_client(sim.port, events, on_connected=on_connected)
    await client.start()
    assert await client.wait_connected(5)
    sim.drop_on_originate = True
    with pytest.raises(AmiConnectionLost):
        await client.originate(**originate_args("cbD1", AGENT_BUSY))
    assert len(sim.originates) == 1
    await eventually(lambda: client.connected and client.reconnects == 1)
    assert connected_calls == 2 and sim.connections == 2
    await client.originate(**originate_args("cbD2", AGENT_BUSY))
    await client.action("Ping")  # one more round trip: a re-sent action would have arrived before its answer
    assert [o.headers["ActionID"] for o in sim.originates] == ["cbD1", "cbD2"]
    await eventually(lambda: len(originate_responses(events, "cbD2")) == 1)
    assert client._manager is not None and not client._manager.awaiting_actions


# ---------------------------------------------------------------------------------------------- reconnect, keepalive
async def test_reconnects_after_pbx_restart_on_same_port(sim: Pbx, make_client: MakeClient) -> None:
    connected_calls = 0

    async def on_connected() -> None:
        nonlocal connected_calls
        connected_calls += 1

    client = make_client(sim.port, on_connected=on_connected)
    await client.start()
    assert await client.wait_connected(5)
    port = sim.port
    await sim.stop()
    await eventually(lambda: not client.connected)
    with pytest.raises(AmiNotConnected):
        await client.originate(**originate_args("cbR0", AGENT_BUSY))
    await asyncio.sleep(0.3)  # a few refused attempts
    restarted = Pbx(users={USER: SECRET}, time_scale=0.01)
    await restarted.start(port=port)
    try:
        await eventually(lambda: client.connected)
        assert client.reconnects == 1 and connected_calls == 2
        (pong,) = await client.action("Ping")
        assert pong["Ping"] == "Pong"
        await client.originate(**originate_args("cbR1", AGENT_BUSY))
        assert [o.headers["ActionID"] for o in restarted.originates] == ["cbR1"]
    finally:
        await restarted.stop()


async def test_keepalive_detects_silent_peer(raw: RawAmi, make_client: MakeClient) -> None:
    ping_interval, ping_timeout = 0.1, 0.2
    client = make_client(raw.port, ping_interval=ping_interval, ping_timeout=ping_timeout)
    await client.start()
    assert await client.wait_connected(5)
    loop = asyncio.get_running_loop()
    (conn,) = raw.silence_open_connections()  # the socket stays open, nothing is answered any more
    started = loop.time()
    await asyncio.wait_for(raw.closed[conn].wait(), 5)  # the client gave up and closed it
    assert loop.time() - started < ping_interval + ping_timeout + 0.5  # slack for a loaded machine
    assert client.last_error == "no answer to Ping within 0.2 s"
    await eventually(lambda: client.connected and client.reconnects == 1)
    assert raw.names().count("Login") == 2


async def test_action_timeout_keeps_connection(raw: RawAmi, make_client: MakeClient) -> None:
    client = make_client(raw.port)
    await client.start()
    assert await client.wait_connected(5)
    with pytest.raises(AmiActionTimeout):
        await client.action("NoAnswer", timeout=0.05)
    (pong,) = await client.action("Ping")
    assert pong["Ping"] == "Pong" and client.connected


# ---------------------------------------------------------------------------------------------- list actions
async def test_list_actions_collect_their_events(sim: Pbx, make_client: MakeClient) -> None:
    events: list[AmiMessage] = []
    client = make_client(sim.port, events)
    await client.start()
    assert await client.wait_connected(5)
    assert await client.channels() == []
    await client.originate(**originate_args("cbC1", AGENT_ACCEPTS, CUSTOMER_STAYS))
    await eventually(lambda: sum(m.event == "BridgeEnter" for m in events) == 2)

    chans = await client.channels()
    assert [m.event for m in chans] == ["CoreShowChannel", "CoreShowChannel"]
    assert all(m.action_id == chans[0].action_id for m in chans)
    assert {m["Linkedid"] for m in chans} == {"cbC1-a1"}
    agent = next(m for m in chans if m["Uniqueid"] == "cbC1-a1")

    status = await client.action("Status")
    assert [m.event or m.response for m in status] == ["Success", "Status", "Status", "StatusComplete"]
    assert status[0]["EventList"] == "start"

    assert not any(m.event in ("CoreShowChannel", "CoreShowChannelsComplete", "Status", "StatusComplete")
                   for m in events)  # list items are the action's answer, not events

    await client.action("Hangup", {"Channel": agent["Channel"]})
    await eventually(lambda: any(m.event == "Hangup" and m.get("Uniqueid") == "cbC1-a1" for m in events))
    await eventually(lambda: sim.channels == {})
    assert await client.channels() == []

    with pytest.raises(AmiActionFailed, match="Invalid/unknown command"):
        await client.action("NoSuchThing")
    with pytest.raises(AmiActionFailed, match="No such channel"):
        await client.action("Status", {"Channel": "PJSIP/nobody-00000000"})
    assert client.connected


async def test_db_get_reads_the_dialplans_connected_mark(sim: Pbx, make_client: MakeClient) -> None:
    """The visitor answering writes callswitch-mark-connected's AstDB entry; DBGet reads it back as Asterisk 22's
    manager_dbget() answers (a one-item list), and an entry that isn't there is None, not an error."""
    events: list[AmiMessage] = []
    client = make_client(sim.port, events)
    await client.start()
    assert await client.wait_connected(5)
    day = time.strftime("%Y%m%d", time.gmtime())
    family = f"callswitch-connected-{day}"
    assert await client.db_get(family, "req-cbD1-1") is None  # not answered yet

    await client.originate(**originate_args("cbD1", AGENT_ACCEPTS, CUSTOMER_STAYS))
    await eventually(lambda: sum(m.event == "BridgeEnter" for m in events) == 2)
    value = await client.db_get(family, "req-cbD1-1")
    assert value is not None and abs(int(value) - time.time()) < 60
    answer = await client.action("DBGet", {"Family": family, "Key": "req-cbD1-1"}, complete_event="DBGetComplete")
    assert [m.event or m.response for m in answer] == ["Success", "DBGetResponse", "DBGetComplete"]
    assert (answer[0]["EventList"], answer[0]["Message"]) == ("start", "Result will follow")
    assert (answer[1]["Family"], answer[1]["Key"], answer[2]["ListItems"]) == (family, "req-cbD1-1", "1")
    assert await client.db_get(family, "req-cbD1-2") is None  # another attempt of the request
    with pytest.raises(AmiActionFailed, match="No key specified"):
        await client.action("DBGet", {"Family": family})

    # an agent who declines connects nobody: no mark
    await client.originate(**originate_args("cbD2", AGENT_DECLINES))
    await eventually(lambda: any(m.get("UserEvent") == "CallswitchLegEnded" and m.get("RequestId") == "req-cbD2"
                                 for m in events))
    assert await client.db_get(family, "req-cbD2-1") is None


def test_connected_mark_families_cover_every_utc_day_of_the_attempt() -> None:
    start = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
    assert connected_mark_families(start, start + timedelta(minutes=2)) == [
        "callswitch-connected-20261123", "callswitch-connected-20261122"]
    berlin = timezone(timedelta(hours=1))
    assert connected_mark_families(datetime(2026, 11, 23, 0, 30, tzinfo=berlin),
                                   datetime(2026, 11, 23, 0, 40, tzinfo=berlin)) == ["callswitch-connected-20261122"]
    assert len(connected_mark_families(start, start + timedelta(days=9))) == 4  # the dialplan keeps ~3 days
