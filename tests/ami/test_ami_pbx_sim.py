"""The AMI simulator against the real captures: raw socket and panoramisk's Manager."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ami_transcripts import DATA, SHARED, message_name
from panoramisk import Manager

from callswitch.ami import AmiMessage, AmiParser, encode_action
from callswitch.testing.pbx import PbxSimulator
from callswitch.testing.scenarios import load

NOISE = {"Newexten", "VarSet"}
ADDED_USEREVENTS = {"CallswitchCustomerDialing", "CallswitchLegEnded"}


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = AmiParser()
        self.pending: list[AmiMessage] = []

    async def send(self, action: str, **headers: str) -> None:
        self.writer.write(encode_action(action, headers))
        await self.writer.drain()

    async def next(self, timeout: float = 5.0) -> AmiMessage:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    async def until(self, pred: object, timeout: float = 5.0) -> list[AmiMessage]:
        out = []
        while True:
            m = await self.next(timeout)
            out.append(m)
            if pred(m):  # type: ignore[operator]
                return out

    async def eof(self, timeout: float = 2.0) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except ConnectionError:
            return True


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    s = PbxSimulator(users={"callswitch": "secret"}, time_scale=0.002)
    await s.start(host="127.0.0.1", port=0)
    yield s
    await s.stop()


async def connect(sim: PbxSimulator, login: bool = True) -> Client:
    r, w = await asyncio.open_connection("127.0.0.1", sim.port)
    c = Client(r, w)
    if login:
        await c.send("Login", ActionID="l1", Username="callswitch", Secret="secret")
        assert (await c.next()).response == "Success"
        assert (await c.next()).event == "FullyBooted"
    return c


async def test_login_like_capture(sim: PbxSimulator) -> None:
    c = await connect(sim, login=False)
    await c.send("Login", ActionID="login-raw-1", Username="callswitch", Secret="secret")
    got = [await c.next(), await c.next()]
    ref = AmiParser().feed((DATA / "login_raw.txt").read_bytes())
    assert c.parser.banner == "Asterisk Call Manager/11.0.0"
    assert [m.to_dict() for m in got] == [m.to_dict() for m in ref]


async def test_bad_secret_closes(sim: PbxSimulator) -> None:
    c = await connect(sim, login=False)
    await c.send("Login", ActionID="login-raw-1", Username="callswitch", Secret="nope")
    got = await c.next()
    ref = AmiParser().feed((DATA / "login_raw_badsecret.txt").read_bytes())[0]
    assert got.to_dict() == ref.to_dict()
    assert await c.eof()


async def test_simple_actions(sim: PbxSimulator) -> None:
    c = await connect(sim)
    await c.send("Ping", ActionID="act-ping-1")
    ping = await c.next()
    assert list(ping) == ["Response", "ActionID", "Ping", "Timestamp"] and ping["Ping"] == "Pong"
    await c.send("NoSuchThing", ActionID="act-unknown-1")
    assert (await c.next())["Message"] == ("Invalid/unknown command: NoSuchThing. Use Action: ListCommands "
                                           "to show available commands.")
    await c.send("Events", ActionID="off", EventMask="off")
    assert (await c.next()).to_dict() == {"Response": "Success", "ActionID": "off", "Events": "Off"}
    await c.send("UserEvent", ActionID="u1", UserEvent="Probe")
    await c.send("Events", ActionID="on", EventMask="on")
    assert (await c.next()).response == "Success"  # Event Sent
    assert (await c.next())["Events"] == "On"  # the probe was not delivered
    await c.send("UserEvent", ActionID="act-userevent-1", UserEvent="CallbackTest", CB_ID="cbX00",
                 Note="hello from AMI")
    ref = AmiParser().feed((DATA / "userevent.txt").read_bytes())
    assert [(await c.next()).to_dict(), (await c.next()).to_dict()] == [m.to_dict() for m in ref]
    await c.send("Logoff", ActionID="act-logoff-1")
    assert (await c.next()).to_dict() == {"Response": "Goodbye", "ActionID": "act-logoff-1",
                                          "Message": "Thanks for all the fish."}
    assert await c.eof()


async def test_requires_login(sim: PbxSimulator) -> None:
    c = await connect(sim, login=False)
    await c.send("Ping", ActionID="p")
    assert (await c.next())["Message"] == "Authentication Required"


def originate(action_id: str, agent: str, customer: str, **extra: str) -> dict[str, object]:
    headers: dict[str, object] = {
        "ActionID": action_id, "Async": "true", "CallerID": f'"Web Callback" <{customer}>',
        "Channel": f"PJSIP/{agent}@carrier", "ChannelId": f"{action_id}-a1", "Context": "callswitch-agent",
        "Exten": "s", "Priority": "1", "Timeout": "30000",
        "Variable": [f"__CS_REQUEST_ID=req-{action_id}", "__CS_ATTEMPT=1", f"__CS_CUSTOMER={customer}",
                     f"__CS_CUSTOMER_DIAL=PJSIP/{customer}@carrier"],
    }
    headers.update(extra)
    return headers


async def run_call(sim: PbxSimulator, action_id: str, agent: str, customer: str) -> list[AmiMessage]:
    c = await connect(sim)
    c.writer.write(encode_action("Originate", originate(action_id, agent, customer)))  # type: ignore[arg-type]
    msgs = await c.until(lambda m: m.event == "Hangup" and m.get("Uniqueid") == f"{action_id}-a1", timeout=10)
    # the trailing events of the call (Cdr after the last Hangup etc.)
    try:
        while True:
            msgs.append(await c.next(timeout=0.3))
    except (TimeoutError, EOFError):
        pass
    return msgs


def reference_names(capture: str) -> list[str]:
    sc = next(v for v in load().values() if v["capture"] == capture)
    return [message_name(AmiMessage(raw)) for _t, raw in sc["messages"]]


def names(msgs: list[AmiMessage]) -> list[str]:
    return [message_name(m) for m in msgs if not (m.event == "UserEvent" and m["UserEvent"] in ADDED_USEREVENTS)]


CASES = [
    ("A_accept_customer_hangs_up", "13125550101", "17735550201", "Success", "ANSWER"),
    ("A_customer_busy", "13125550101", "17735550231", "Success", "BUSY"),
    ("A_customer_noanswer", "13125550101", "17735550221", "Success", "NOANSWER"),
    ("A_customer_404", "13125550101", "17735550241", "Success", "CHANUNAVAIL"),
    ("A_decline", "13125550111", "17735550201", "Success", None),
    ("A_agent_busy", "13125550131", "17735550201", "Failure", None),
    ("A_agent_congestion", "13125550141", "17735550201", "Failure", None),
    ("A_agent_hangs_up_in_announcement", "13125550151", "17735550201", "Success", None),
    ("A_voicemail_no_key", "13125550161", "17735550201", "Success", None),
    ("A_early_dtmf", "13125550171", "17735550201", "Success", None),
    ("A_agent_noanswer", "13125550121", "17735550201", "Failure", None),
]


@pytest.mark.parametrize(("capture", "agent", "customer", "orig", "custstatus"), CASES, ids=[c[0] for c in CASES])
async def test_agent_first_flows_match_captures(sim: PbxSimulator, capture: str, agent: str, customer: str,
                                                orig: str, custstatus: str | None) -> None:
    aid = "cb" + capture[-6:].replace("_", "")
    msgs = await run_call(sim, aid, agent, customer)
    assert msgs[0].response == "Success" and msgs[0]["Message"] == "Originate successfully queued"
    assert names(msgs[1:]) == reference_names(capture)
    resp = next(m for m in msgs if m.event == "OriginateResponse")
    assert resp["Response"] == orig and resp.action_id == aid and resp["Uniqueid"] == f"{aid}-a1"
    if orig == "Failure":
        assert resp["Channel"] == f"PJSIP/{agent}@carrier"
        assert resp["Reason"] == ("3" if capture == "A_agent_noanswer" else "0")
    else:
        assert resp["Reason"] == "4" and resp["Channel"].startswith("PJSIP/carrier-")
    for m in msgs[1:]:
        if m.get("Linkedid") is not None:
            assert m["Linkedid"] == f"{aid}-a1"
    ues = [m for m in msgs if m.event == "UserEvent"]
    assert all(m["RequestId"] == f"req-{aid}" and m["Attempt"] == "1" for m in ues)
    result = [m for m in ues if m["UserEvent"] == "CallswitchCustomerResult"]
    if custstatus is None:
        assert result == []
    else:
        assert [m["DialStatus"] for m in result] == [custstatus]
    if capture in ("A_voicemail_no_key", "A_early_dtmf", "A_decline"):
        declined = [m for m in ues if m["UserEvent"] == "CallswitchDeclined"]
        assert [m["Reason"] for m in declined] == ["DECLINED" if capture == "A_decline" else "TIMEOUT"]
    assert len(sim.originates) == 1 and sim.originates[0].variables["CS_REQUEST_ID"] == f"req-{aid}"


async def test_customer_stays_until_hangup_action(sim: PbxSimulator) -> None:
    c = await connect(sim)
    c.writer.write(encode_action("Originate", originate("cbA02", "13125550101", "17735550211")))  # type: ignore[arg-type]
    msgs = await c.until(lambda m: m.event == "BridgeEnter" and m.get("Uniqueid") == "cbA02-a1", timeout=10)
    assert [m["UserEvent"] for m in msgs if m.event == "UserEvent"] == [
        "CallswitchAgentAnswered", "CallswitchAccepted", "CallswitchCustomerDialing"]
    quiet: list[AmiMessage] = []
    with pytest.raises(TimeoutError):
        while True:  # the call stays up: events of the running call (RTCP ...), but no hangup
            quiet.append(await c.next(timeout=0.5))
    assert not [m for m in quiet if m.event in ("Hangup", "HangupRequest", "SoftHangupRequest")]
    await c.send("CoreShowChannels", ActionID="csc")
    listing = await c.until(lambda m: m.event == "CoreShowChannelsComplete")
    assert listing[-1]["ListItems"] == "2"
    agent = next(m["Channel"] for m in listing if m.event == "CoreShowChannel" and m["Uniqueid"] == "cbA02-a1")
    await c.send("Hangup", ActionID="cbA02-hangup", Channel=agent)
    rest = await c.until(lambda m: m.event == "Hangup" and m["Uniqueid"] != "cbA02-a1")
    assert rest[0].to_dict() == {"Response": "Success", "ActionID": "cbA02-hangup", "Message": "Channel Hungup"}
    assert [m.event for m in rest if m.event in ("Hangup", "Cdr")] == ["Hangup", "Cdr", "Hangup"]


async def test_originate_refusals(sim: PbxSimulator) -> None:
    c = await connect(sim)
    await c.send("Originate", ActionID="act-orig-noctx", Channel="PJSIP/13125550101@carrier",
                 Context="no-such-context", Exten="s", Priority="1", Async="true")
    assert (await c.next()).to_dict() == {"Response": "Error", "ActionID": "act-orig-noctx",
                                          "Message": "Extension does not exist."}
    await c.send("Originate", ActionID="act-orig-badtech", Channel="Foo/123", Context="callswitch-agent",
                 Exten="s", Priority="1", Async="true", CallerID='"Web Callback" <17735550201>')
    assert (await c.next())["Message"] == "Originate successfully queued"
    fail = await c.next()
    assert (fail.event, fail["Response"], fail["Reason"], fail["Uniqueid"], fail["Channel"]) == (
        "OriginateResponse", "Failure", "0", "<unknown>", "Foo/123")
    # ChannelId still in use: queued, then Failure Reason 0 carrying the duplicate id
    c.writer.write(encode_action("Originate", originate("cbX01", "13125550161", "17735550201")))  # type: ignore[arg-type]
    await c.until(lambda m: m.event == "Newchannel")
    c.writer.write(encode_action("Originate", originate("cbX01", "13125550101", "17735550201",
                                                        ActionID="act-orig-dupid")))  # type: ignore[arg-type]
    got = await c.until(lambda m: m.event == "OriginateResponse" and m.action_id == "act-orig-dupid")
    assert got[-1]["Response"] == "Failure" and got[-1]["Uniqueid"] == "cbX01-a1"
    assert sim.chancount_bug
    assert [o.accepted for o in sim.originates] == [False, False, True, False]


async def test_filter_and_drop(sim: PbxSimulator) -> None:
    c = await connect(sim)
    await c.send("Filter", ActionID="act-filter-1", Filter="Event: UserEvent", Operation="Add")
    assert (await c.next())["Message"] == "Success"
    c.writer.write(encode_action("Originate", originate("cbF1", "13125550111", "17735550201")))  # type: ignore[arg-type]
    msgs = await c.until(lambda m: m.event == "UserEvent" and m["UserEvent"] == "CallswitchLegEnded", timeout=10)
    assert msgs[0].response == "Success"
    assert {m.event for m in msgs[1:]} == {"UserEvent"}
    await sim.drop_connections()
    assert await c.eof()


async def test_with_panoramisk_manager(sim: PbxSimulator) -> None:
    manager = Manager(host="127.0.0.1", port=sim.port, username="callswitch", secret="secret",
                      ping_delay=0, reconnect_timeout=0.1)
    events: list[str] = []
    done = asyncio.Event()

    def on_event(_mgr: object, msg: object) -> None:
        events.append(msg["Event"])  # type: ignore[index]
        if msg["Event"] == "Hangup":  # type: ignore[index]
            done.set()

    manager.register_event("*", on_event)
    await manager.connect()
    try:
        pong = await manager.send_action({"Action": "Ping"})
        assert pong["Ping"] == "Pong"
        resp = await manager.send_action({
            "Action": "Originate", "Channel": "PJSIP/13125550131@carrier", "ChannelId": "cbP1-a1",
            "Context": "callswitch-agent", "Exten": "s", "Priority": "1", "Async": "true",
            "Variable": ["__CS_REQUEST_ID=rP1", "__CS_CUSTOMER=17735550201"],
        })
        # panoramisk returns [Response, OriginateResponse] for an async Originate
        assert [m.get("Response") for m in resp] == ["Success", "Failure"]
        await asyncio.wait_for(done.wait(), 5)
        assert "DialEnd" in events and "Cdr" in events
        assert len(sim.originates_to("13125550131")) == 1
    finally:
        manager.close()


def test_scenarios_bundled_match_shared() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"reference transcripts not present at {SHARED}")
    from callswitch.testing.scenarios import build
    assert build(SHARED) == load()
