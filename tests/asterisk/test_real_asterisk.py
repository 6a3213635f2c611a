"""Against a real Asterisk 20/22 with the shipped configuration (asterisk/) installed.

Run with CALLSWITCH_TEST_AMI=host:port:user:secret (e.g. the lab PBX in ../shared/asterisk/lab); skipped when it
is unset. Verified on Asterisk 22.10.1 (docs/asterisk.md, "Verified on").

The numbers are the lab carrier's number plan (shared/asterisk/flows/README.md): agents 1312555010X accept
(press 1 ~4 s after answering), ...011X decline, ...012X never answer, ...013X are busy, ...015X hang up
after 2 s, ...016X are a voicemail, ...017X press 1 0.2 s after answering, ...018X ring 6 s and accept;
visitors 1773555020X answer and hang up after 5 s, ...021X answer and stay, ...022X never answer, ...023X are
busy, ...024X do not exist (404).
CALLSWITCH_TEST_TRUNK is the dial string template of the trunk towards them (default PJSIP/{number}@carrier).

What the lab needs besides the shipped files:

* callswitch dials E.164 numbers with the '+' (``{number}``); the lab carrier's plan has digits only, so its
  ``[from-pbx]`` needs ``exten => _+X.,1,Goto(${EXTEN:1},1)`` (docs/asterisk.md).
* The scripted agents press their key ~4 s after answering, while a human waits for the beep: with every digit
  of the visitor's number read out (the default) the announcement lasts ~9.5 s and their key is discarded, as
  designed. These tests therefore set the PBX-wide default CS_SAY_DIGITS (a global variable, AMI Setvar;
  restored afterwards) to CALLSWITCH_TEST_SAY_DIGITS (default 2: ~2 s before the beep). Set it to "" to leave
  the PBX's globals alone.
* CALLSWITCH_TEST_CARRIER_CDR: optional path of the carrier's cdr-csv Master.csv; when set, the caller ID the
  visitor was shown is checked there.
"""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
import textwrap
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callswitch.ami.protocol import AmiMessage
from callswitch.config import load_config
from callswitch.db.pool import Database
from callswitch.db.wakeup import WorkSignal
from callswitch.dialer.ami_client import AmiActionFailed, AmiClient, AmiServer
from callswitch.dialer.worker import Dialer, connected_mark_families
from callswitch.routing.reload import RulesHolder

AMI = os.environ.get("CALLSWITCH_TEST_AMI", "")
pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.skipif(not AMI, reason="needs a real Asterisk: set CALLSWITCH_TEST_AMI=host:port:user:secret"),
]
CONTEXTS = ("callswitch-agent", "callswitch-confirm", "callswitch-customer", "callswitch-predial",
            "callswitch-leg-ended", "callswitch-ringall", "callswitch-ringall-member", "callswitch-member-confirm",
            "callswitch-customer-first", "callswitch-from-carrier", "callswitch-mark-connected")
TRUNK = os.environ.get("CALLSWITCH_TEST_TRUNK", "PJSIP/{number}@carrier")
SAY_DIGITS = os.environ.get("CALLSWITCH_TEST_SAY_DIGITS", "2")
CARRIER_CDR = os.environ.get("CALLSWITCH_TEST_CARRIER_CDR", "")
STORE_CALLER_ID = "+13125550000"  # what the visitor must be shown (the trunk's caller_id)

# the lab carrier's number plan
AGENT_ACCEPTS = os.environ.get("CALLSWITCH_TEST_AGENT", "+13125550101")
AGENT_ACCEPTS_2 = "+13125550102"
AGENT_ACCEPTS_SLOWLY = "+13125550181"  # rings 6 s, presses 1 ~4 s after answering
AGENT_DECLINES = "+13125550111"
AGENT_NO_ANSWER = "+13125550121"
AGENT_BUSY = "+13125550131"
AGENT_HANGS_UP = "+13125550151"
AGENT_VOICEMAIL = "+13125550161"
AGENT_EARLY_DTMF = "+13125550171"
VISITOR_ANSWERS = os.environ.get("CALLSWITCH_TEST_VISITOR", "+17735550200")
VISITOR_STAYS = "+17735550210"
VISITOR_NO_ANSWER = "+17735550221"
VISITOR_BUSY = "+17735550231"
VISITOR_UNKNOWN = "+17735550241"

# what the shipped manager_callswitch.conf lets through (its eventfilter lines)
FILTERED_EVENTS = frozenset({
    "OriginateResponse", "Newchannel", "Newstate", "Hangup", "HangupRequest", "SoftHangupRequest", "DialBegin",
    "DialState", "DialEnd", "UserEvent", "Cdr", "DTMFBegin", "DTMFEnd", "BridgeEnter", "BridgeLeave",
    "LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd", "FullyBooted", "Shutdown", "Reload",
})


def server() -> AmiServer:
    host, port, user, secret = AMI.split(":", 3)
    return AmiServer("real", host, int(port), user, secret)


def dial(number: str) -> str:
    return TRUNK.replace("{number}", number)


@pytest.fixture
async def ami() -> AsyncIterator[AmiClient]:
    client = AmiClient(server(), lambda _m: None)
    await client.start()
    assert await client.wait_connected(10), client.last_error
    yield client
    await client.stop()


@pytest.fixture(scope="module")
async def short_announcement() -> AsyncIterator[None]:
    """PBX-wide CS_SAY_DIGITS for the scripted agents (see the module docstring); the old value is restored."""
    if not SAY_DIGITS:
        yield
        return
    client = AmiClient(server(), lambda _m: None, event_filters=())
    await client.start()
    assert await client.wait_connected(10), client.last_error
    (resp, *_) = await client.action("Getvar", {"Variable": "CS_SAY_DIGITS"})
    before = resp.get("Value") or ""
    await client.action("Setvar", {"Variable": "CS_SAY_DIGITS", "Value": SAY_DIGITS})
    try:
        yield
    finally:
        await client.action("Setvar", {"Variable": "CS_SAY_DIGITS", "Value": before})
        await client.stop()


# ------------------------------------------------------------------------------------------- installation
async def test_login_and_version(ami: AmiClient) -> None:
    assert ami.version and ami.version.split(".")[0] in ("20", "21", "22", "23")


@pytest.mark.parametrize("context", CONTEXTS)
async def test_shipped_dialplan_is_installed(ami: AmiClient, context: str) -> None:
    messages = await ami.action("ShowDialPlan", {"Context": context}, complete_event="ShowDialPlanComplete")
    assert any(m.get("Event") == "ListDialplan" and m.get("Context") == context for m in messages)


async def test_ringall_member_extension_matches_a_one_digit_index(ami: AmiClient) -> None:
    """Members are dialled as Local/<index>@callswitch-ringall-member: "_X." would not match "1"."""
    messages = await ami.action("ShowDialPlan", {"Context": "callswitch-ringall-member", "Extension": "1"},
                                complete_event="ShowDialPlanComplete")
    assert any(m.get("Event") == "ListDialplan" for m in messages), [m.raw for m in messages]


# ------------------------------------------------------------------------------------------- AMI calls
@dataclass
class Call:
    """Every event of one originated call (Linkedid = the ChannelId), in arrival order."""

    rid: str
    channel_id: str
    events: list[AmiMessage] = field(default_factory=list)
    all_names: set[str] = field(default_factory=set)  # every event name this connection received meanwhile

    def named(self, name: str) -> list[AmiMessage]:
        return [e for e in self.events if e.event == name]

    def user(self, name: str | None = None) -> list[AmiMessage]:
        return [e for e in self.named("UserEvent") if name is None or e.get("UserEvent") == name]

    def user_names(self) -> list[str]:
        return [e.get("UserEvent") or "" for e in self.user()]

    def originate_response(self) -> AmiMessage:
        (resp,) = self.named("OriginateResponse")
        return resp


async def originate(
    channel: str,
    context: str,
    variables: Mapping[str, str],
    *,
    timeout_ms: int = 20000,
    other_channel: bool = False,
    caller_id: str | None = None,
    limit: float = 90.0,
) -> Call:
    """Originate one call with fresh ids, return when every channel of it has hung up (plus a second)."""
    rid = "t" + uuid.uuid4().hex[:12]
    call = Call(rid, rid + "-a1")
    live: set[str] = set()
    seen_channel = asyncio.Event()
    done = asyncio.Event()
    finished = {"originate": False}

    def on_event(m: AmiMessage) -> None:
        if m.event:
            call.all_names.add(m.event)
        mine = (call.channel_id in (m.get("Linkedid"), m.get("DestLinkedid"), m.get("Uniqueid"))
                or m.get("ActionID") == rid or m.get("RequestId") == rid)
        if not mine:
            return
        call.events.append(m)
        if m.event == "Newchannel":
            live.add(m.get("Uniqueid") or "")
            seen_channel.set()
        elif m.event == "Hangup":
            live.discard(m.get("Uniqueid") or "")
        elif m.event == "OriginateResponse":
            finished["originate"] = True
        if finished["originate"] and seen_channel.is_set() and not live:
            done.set()

    client = AmiClient(server(), on_event, event_filters=())
    await client.start()
    try:
        assert await client.wait_connected(10), client.last_error
        await client.originate(
            action_id=rid, channel=channel, context=context, exten="s", timeout_ms=timeout_ms,
            channel_id=call.channel_id, other_channel_id=rid + "-a2" if other_channel else None,
            caller_id=caller_id,
            variables={"__CS_REQUEST_ID": rid, "__CS_ATTEMPT": "1", **variables},
        )
        async with asyncio.timeout(limit):
            await done.wait()
        await asyncio.sleep(1.0)  # late Cdr / hangup-handler events
    finally:
        await client.stop()
    return call


def agent_vars(visitor: str = VISITOR_ANSWERS, **extra: str) -> dict[str, str]:
    v = {"__CS_CUSTOMER": visitor.lstrip("+"), "__CS_CUSTOMER_DIAL": dial(visitor),
         "__CS_CUSTOMER_CALLERID_NUM": STORE_CALLER_ID, "__CS_CUSTOMER_CALLERID_NAME": "Lab Store",
         "__CS_CONFIRM_TIMEOUT": "4", "__CS_CUST_TIMEOUT": "8"}
    v.update({f"__CS_{k}": val for k, val in extra.items()})
    return v


async def agent_call(agent: str, visitor: str = VISITOR_ANSWERS, *, timeout_ms: int = 20000, **extra: str) -> Call:
    return await originate(dial(agent), "callswitch-agent", agent_vars(visitor, **extra), timeout_ms=timeout_ms,
                           caller_id=visitor)


@pytest.mark.usefixtures("short_announcement")
async def test_agent_accepts_and_visitor_is_connected() -> None:
    call = await agent_call(AGENT_ACCEPTS, VISITOR_ANSWERS)
    assert call.originate_response().get("Response") == "Success"
    assert call.user_names()[:4] == ["CallswitchAgentAnswered", "CallswitchAccepted", "CallswitchCustomerDialing",
                                     "CallswitchCustomerResult"]
    (result,) = call.user("CallswitchCustomerResult")
    assert result.get("DialStatus") == "ANSWER"
    (ended,) = call.user("CallswitchLegEnded")
    assert (ended.get("Leg"), ended.get("Step")) == ("agent", "customer-done")
    assert {e.get("RequestId") for e in call.user()} == {call.rid}
    # the visitor's channel was dialled from the agent's dialplan: same Linkedid, caller ID from the pre-dial
    # handler as its connected line (what chan_pjsip puts into From / P-Asserted-Identity)
    visitor_states = [e for e in call.named("Newstate") if e.get("Uniqueid") != call.channel_id]
    assert visitor_states and visitor_states[0].get("ConnectedLineNum") == STORE_CALLER_ID


@pytest.mark.usefixtures("short_announcement")
async def test_agent_declines_with_2() -> None:
    call = await agent_call(AGENT_DECLINES)
    (declined,) = call.user("CallswitchDeclined")
    assert (declined.get("Reason"), declined.get("Digit"), declined.get("ReadStatus")) == ("DECLINED", "2", "OK")
    assert not call.user("CallswitchAccepted") and not call.user("CallswitchCustomerDialing")
    (ended,) = call.user("CallswitchLegEnded")
    assert (ended.get("Step"), ended.get("Cause")) == ("declined", "16")


@pytest.mark.usefixtures("short_announcement")
async def test_early_dtmf_is_not_acceptance() -> None:
    """The key pressed 0.2 s after answering (during the announcement) reaches AMI but is discarded."""
    call = await agent_call(AGENT_EARLY_DTMF)
    dtmf = call.named("DTMFEnd")
    assert dtmf and dtmf[0].get("Digit") == "1" and dtmf[0].get("Direction") == "Received"
    assert not call.user("CallswitchAccepted")
    (declined,) = call.user("CallswitchDeclined")
    assert (declined.get("Reason"), declined.get("Digit"), declined.get("ReadStatus")) == ("TIMEOUT", "", "TIMEOUT")
    assert not any(e.get("Uniqueid") != call.channel_id for e in call.named("Newchannel")), "visitor was dialled"


@pytest.mark.usefixtures("short_announcement")
async def test_voicemail_never_accepts() -> None:
    call = await agent_call(AGENT_VOICEMAIL)
    assert call.originate_response().get("Reason") == "4"
    (declined,) = call.user("CallswitchDeclined")
    assert declined.get("Reason") == "TIMEOUT"
    assert not call.user("CallswitchAccepted")


async def test_agent_hangs_up_during_the_announcement() -> None:
    call = await agent_call(AGENT_HANGS_UP)
    assert call.user_names() == ["CallswitchAgentAnswered", "CallswitchLegEnded"]
    (ended,) = call.user("CallswitchLegEnded")
    assert ended.get("Step") in ("announce", "menu") and ended.get("Cause") == "16"
    (hangup,) = call.named("Hangup")
    assert hangup.get("Cause") == "16"


async def test_agent_busy() -> None:
    call = await agent_call(AGENT_BUSY)
    resp = call.originate_response()
    assert (resp.get("Response"), resp.get("Reason")) == ("Failure", "0")
    (hangup,) = call.named("Hangup")
    assert (hangup.get("Cause"), hangup.get("TechCause")) == ("17", "486")
    assert [e.get("DialStatus") for e in call.named("DialEnd")] == ["BUSY"]
    assert not call.user()


async def test_agent_no_answer() -> None:
    call = await agent_call(AGENT_NO_ANSWER, timeout_ms=5000)
    resp = call.originate_response()
    assert (resp.get("Response"), resp.get("Reason")) == ("Failure", "3")
    (hangup,) = call.named("Hangup")
    assert hangup.get("Cause") == "19"
    assert not call.named("DialEnd")
    assert not call.user()


@pytest.mark.usefixtures("short_announcement")
@pytest.mark.parametrize(("visitor", "dial_status", "cause"), [
    (VISITOR_BUSY, "BUSY", "17"),
    (VISITOR_NO_ANSWER, "NOANSWER", "0"),
    (VISITOR_UNKNOWN, "CHANUNAVAIL", "1"),
])
async def test_visitor_not_reached(visitor: str, dial_status: str, cause: str) -> None:
    call = await agent_call(AGENT_ACCEPTS, visitor, CUST_TIMEOUT="5")
    (result,) = call.user("CallswitchCustomerResult")
    assert (result.get("DialStatus"), result.get("Cause")) == (dial_status, cause)
    (ended,) = call.user("CallswitchLegEnded")
    assert (ended.get("Leg"), ended.get("Step")) == ("agent", "customer-done")


@pytest.mark.usefixtures("short_announcement")
async def test_ringall_a_decliner_drops_out_and_a_later_acceptor_wins() -> None:
    """The decliner's key (~6 s) comes before the slow acceptor's (~10 s): the group keeps ringing."""
    call = await originate(
        "Local/s@callswitch-ringall/n", "callswitch-customer",
        {**agent_vars(VISITOR_ANSWERS), "__CS_MEMBERS": f"{dial(AGENT_DECLINES)}&{dial(AGENT_ACCEPTS_SLOWLY)}"},
        other_channel=True)
    assert call.originate_response().get("Response") == "Success"
    assert len(call.user("CallswitchAgentAnswered")) == 2
    (declined,) = call.user("CallswitchDeclined")
    assert declined.get("Reason") == "DECLINED"
    assert len(call.user("CallswitchAccepted")) == 1
    (result,) = call.user("CallswitchCustomerResult")
    assert result.get("DialStatus") == "ANSWER"
    assert "ABORT" in [e.get("DialStatus") for e in call.named("DialEnd")]


@pytest.mark.usefixtures("short_announcement")
async def test_ringall_two_acceptors_only_one_wins() -> None:
    """Both press 1 at the same moment: one wins; the other is TOO_LATE (keys within the same instant) or
    has already been cancelled by the group's Dial (Hangup cause 26)."""
    call = await originate(
        "Local/s@callswitch-ringall/n", "callswitch-customer",
        {**agent_vars(VISITOR_ANSWERS), "__CS_MEMBERS": f"{dial(AGENT_ACCEPTS)}&{dial(AGENT_ACCEPTS_2)}"},
        other_channel=True)
    (accepted,) = call.user("CallswitchAccepted")
    assert [e.get("Reason") for e in call.user("CallswitchDeclined")] in ([], ["TOO_LATE"])
    loser_agent = [e for e in call.user("CallswitchAgentAnswered") if e.get("Uniqueid") != accepted.get("Uniqueid")]
    assert len(loser_agent) == 1
    loser_hangups = [e for e in call.named("Hangup") if e.get("Uniqueid") == loser_agent[0].get("Uniqueid")]
    assert call.user("CallswitchDeclined") or [e.get("Cause") for e in loser_hangups] == ["26"]
    assert len(call.user("CallswitchCustomerDialing")) == 1


async def test_manager_user_gets_only_the_filtered_events() -> None:
    """The eventfilter lines of manager_callswitch.conf are in force (skipped for a user with more rights)."""
    probe = AmiClient(server(), lambda _m: None, event_filters=())
    await probe.start()
    try:
        assert await probe.wait_connected(10), probe.last_error
        try:
            await probe.action("Command", {"Command": "core show uptime"})
        except AmiActionFailed:
            pass  # no "command" write class: the shipped least-privilege user
        else:
            pytest.skip("the AMI user is not the shipped manager_callswitch.conf user")
    finally:
        await probe.stop()
    call = await agent_call(AGENT_HANGS_UP)
    assert call.user("CallswitchLegEnded")
    assert call.all_names <= FILTERED_EVENTS, call.all_names - FILTERED_EVENTS


# ------------------------------------------------------------------------------------------- the dialer
@dataclass
class Outcome:
    state: str
    outcome: str | None
    legs: list[tuple[str, str | None]]
    attempts: list[tuple[str | None, str | None]]
    started: datetime
    marked: bool  # Asterisk's AstDB holds callswitch-mark-connected's entry for attempt 1 (read with DBGet)


async def run_request(
    db_dsn: str, tmp_path: Path, agent: str | list[str], visitor: str, *, ring_timeout: int = 20,
    customer_timeout: int = 30, mode: str = "agent_first", hang_up_connected_after: float | None = None,
    tts_dir: str | None = None,
) -> Outcome:
    """One request through the whole dialer (one attempt, no retry) until it is finished.

    ``hang_up_connected_after``: once the request is connected, hang the visitor's channel up after that
    many seconds (for visitors of the lab who would stay on the line for two minutes)."""
    s = server()
    members = ", ".join(f'"{a}"' for a in ([agent] if isinstance(agent, str) else agent))
    (tmp_path / "routing.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{timezone: UTC, ring_timeout: {ring_timeout}}}
        trunks: {{carrier: {{dial: "{TRUNK}", caller_id: "{STORE_CALLER_ID}"}}}}
        destinations: {{store: {{members: [{members}], mode: {mode}}}}}
        default: store
        """))
    (tmp_path / "callswitch.yaml").write_text(textwrap.dedent(f"""\
        database: {{dsn: "{db_dsn}"}}
        ami: {{host: "{s.host}", port: {s.port}, username: "{s.username}", secret: "{s.secret}"}}
        routing: {{file: routing.yaml}}
        sites: {{shop: {{site_key: pk_shop_123456}}}}
        dialing: {{customer_retries: 0, customer_timeout: {customer_timeout}, say_digits: {SAY_DIGITS or 0}}}
        """))
    if tts_dir:
        digits = f"say_digits: {SAY_DIGITS or 0}"
        (tmp_path / "callswitch.yaml").write_text((tmp_path / "callswitch.yaml").read_text().replace(
            digits + "}", digits + f", tts: {{sounds_dir: {tts_dir}, text: '{{name}}'}}}}"))
    config = load_config(tmp_path / "callswitch.yaml", env={})
    db = Database(config.database)
    await db.connect()
    rules = RulesHolder(tmp_path / "routing.yaml")
    assert rules.reload(), rules.last_error
    dialer = Dialer(config, db, rules, work=WorkSignal(db), node="real-asterisk-test")
    started = datetime.now(UTC)
    await dialer.start()
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await dialer.clients[0].wait_connected(10)
        rid = await conn.fetchval(
            """INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country,
                   request_fingerprint) VALUES (gen_random_uuid(), 'shop', 'Test', $1, $1, 'US', 'x') RETURNING id""",
            visitor)
        dialer.wake()
        hung_up = False
        async with asyncio.timeout(150):
            while await conn.fetchval("SELECT finished_at FROM callback_requests WHERE id = $1", rid) is None:
                await asyncio.sleep(0.5)
                if hang_up_connected_after is None or hung_up:
                    continue
                if await conn.fetchval("SELECT state FROM callback_requests WHERE id = $1", rid) == "connected":
                    await asyncio.sleep(hang_up_connected_after)
                    channel = await conn.fetchval("SELECT channel FROM call_legs WHERE request_id = $1 "
                                                  "AND leg = 'customer'", rid)
                    await dialer.clients[0].action("Hangup", {"Channel": channel, "Cause": "16"})
                    hung_up = True
        row = await conn.fetchrow("SELECT state, outcome FROM callback_requests WHERE id = $1", rid)
        legs = await conn.fetch("SELECT leg, disposition FROM call_legs WHERE request_id = $1 ORDER BY id", rid)
        attempts = await conn.fetch("SELECT outcome, outcome_detail FROM call_attempts WHERE request_id = $1", rid)
        marked = False
        for family in connected_mark_families(started, datetime.now(UTC)):
            marked = marked or await dialer.clients[0].db_get(family, f"{rid}-1") is not None
        return Outcome(row["state"], row["outcome"], [(r["leg"], r["disposition"]) for r in legs],
                       [(r["outcome"], r["outcome_detail"]) for r in attempts], started, marked)
    finally:
        await conn.close()
        await dialer.stop(10)
        await db.close()


def carrier_cdr_row(visitor: str, since: datetime) -> dict[str, Any] | None:
    """The carrier's record of the call to ``visitor`` that started after ``since`` (cdr-csv, GMT)."""
    cols = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
            "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield")
    found = None
    with open(CARRIER_CDR, newline="") as f:
        for values in csv.reader(f):
            row = dict(zip(cols, values, strict=False))
            start = datetime.strptime(row["start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            if row["dst"].lstrip("+") == visitor.lstrip("+") and start >= since.replace(microsecond=0):
                found = row
    return found


@pytest.mark.usefixtures("short_announcement")
async def test_agent_first_call_through_the_shipped_dialplan(clean_db: str, tmp_path: Path) -> None:
    result = await run_request(clean_db, tmp_path, AGENT_ACCEPTS, VISITOR_ANSWERS)
    assert (result.state, result.outcome) == ("completed", "connected"), result.attempts
    assert result.legs == [("agent", "accepted"), ("customer", "answered")]
    assert result.marked  # Dial U(callswitch-mark-connected) on the visitor's channel wrote the AstDB entry
    if CARRIER_CDR:
        await asyncio.sleep(0.5)
        row = carrier_cdr_row(VISITOR_ANSWERS, result.started)
        assert row is not None, f"no call to {VISITOR_ANSWERS} in {CARRIER_CDR}"
        assert row["src"].lstrip("+") == STORE_CALLER_ID.lstrip("+"), row  # the pre-dial handler's caller ID
        assert row["disposition"] == "ANSWERED"


@pytest.mark.usefixtures("short_announcement")
@pytest.mark.parametrize(("agent", "visitor", "outcome", "legs"), [
    pytest.param(AGENT_DECLINES, VISITOR_ANSWERS, "no_agent", [("agent", "declined")], id="agent-declines"),
    pytest.param(AGENT_BUSY, VISITOR_ANSWERS, "no_agent", [("agent", "busy")], id="agent-busy"),
    pytest.param(AGENT_NO_ANSWER, VISITOR_ANSWERS, "no_agent", [("agent", "no_answer")], id="agent-no-answer"),
    pytest.param(AGENT_EARLY_DTMF, VISITOR_ANSWERS, "no_agent", [("agent", "answered")], id="early-dtmf"),
    pytest.param(AGENT_VOICEMAIL, VISITOR_ANSWERS, "no_agent", [("agent", "answered")], id="voicemail"),
    pytest.param(AGENT_HANGS_UP, VISITOR_ANSWERS, "no_agent", [("agent", "answered")], id="agent-hangs-up"),
    pytest.param(AGENT_ACCEPTS, VISITOR_BUSY, "customer_busy", [("agent", "accepted"), ("customer", "busy")],
                 id="visitor-busy"),
    pytest.param(AGENT_ACCEPTS, VISITOR_NO_ANSWER, "customer_no_answer",
                 [("agent", "accepted"), ("customer", "no_answer")], id="visitor-no-answer"),
    pytest.param(AGENT_ACCEPTS, VISITOR_UNKNOWN, "customer_unreachable",
                 [("agent", "accepted"), ("customer", "unreachable")], id="visitor-404"),
])
async def test_dialer_outcome(clean_db: str, tmp_path: Path, agent: str, visitor: str, outcome: str,
                              legs: list[tuple[str, str]]) -> None:
    result = await run_request(clean_db, tmp_path, agent, visitor, ring_timeout=6, customer_timeout=6)
    assert (result.state, result.outcome) == ("failed", outcome), result.attempts
    assert result.legs == legs, result.attempts
    assert not result.marked  # nobody was connected: no AstDB entry


@pytest.mark.usefixtures("short_announcement")
@pytest.mark.parametrize(("agents", "visitor", "state", "outcome", "legs"), [
    pytest.param([AGENT_DECLINES, AGENT_ACCEPTS], VISITOR_STAYS, "completed", "connected",
                 [("customer", "answered"), ("agent", "declined"), ("agent", "accepted")], id="decline-then-accept"),
    pytest.param([AGENT_DECLINES], VISITOR_STAYS, "failed", "no_agent",
                 [("customer", "answered"), ("agent", "declined")], id="nobody-accepts-visitor-released"),
    pytest.param([AGENT_ACCEPTS], VISITOR_BUSY, "failed", "customer_busy", [("customer", "busy")],
                 id="visitor-busy"),
])
async def test_customer_first_through_the_shipped_dialplan(
    clean_db: str, tmp_path: Path, agents: list[str], visitor: str, state: str, outcome: str,
    legs: list[tuple[str, str]],
) -> None:
    """customer_first: the visitor is called, waits in the ConfBridge, the agents are rung by the daemon; an
    accepting agent joins; when nobody accepts the daemon's ConfbridgeKick lets the visitor go (else the
    request would only finish after CS_HOLD_TIMEOUT, far beyond this test's limit). The connected visitor
    is one who stays (the lab's 020X hangs up 5 s after answering: before any agent could accept); the
    test hangs them up 3 s after the connection, and the agent is then released by end_marked_any."""
    result = await run_request(clean_db, tmp_path, agents, visitor, ring_timeout=8, customer_timeout=8,
                               mode="customer_first", hang_up_connected_after=3)
    assert (result.state, result.outcome) == (state, outcome), result.attempts
    assert result.legs == legs, result.attempts
    assert result.marked == (outcome == "connected")  # the joining agent's Gosub(callswitch-mark-connected)
    if CARRIER_CDR and outcome == "connected":
        await asyncio.sleep(0.5)
        row = carrier_cdr_row(visitor, result.started)
        assert row is not None and row["disposition"] == "ANSWERED", row
        assert row["src"].lstrip("+") == STORE_CALLER_ID.lstrip("+"), row  # the Originate's CallerID


TTS_DIR = os.environ.get("CALLSWITCH_TEST_TTS_DIR")  # <Asterisk's sounds dir>/callswitch-tts, writable by the test
ASTERISK_LOG = os.environ.get("CALLSWITCH_TEST_ASTERISK_LOG")  # e.g. <lab>/asterisk/var/log/asterisk/full.log


@pytest.mark.skipif(not TTS_DIR or not shutil.which("espeak-ng") or not shutil.which("sox"),
                    reason="needs CALLSWITCH_TEST_TTS_DIR and espeak-ng + sox on the PBX host")
@pytest.mark.usefixtures("short_announcement")
async def test_per_request_announcement_is_rendered_and_played(clean_db: str, tmp_path: Path) -> None:
    """dialing.tts with the default commands (espeak-ng, sox): the agent hears the rendered file. The text is
    just the visitor's name: the lab's agents press 1 at a fixed time after answering, and a key pressed while
    the announcement still plays is (rightly) not taken."""
    log_size = os.path.getsize(ASTERISK_LOG) if ASTERISK_LOG else 0
    result = await run_request(clean_db, tmp_path, AGENT_ACCEPTS, VISITOR_ANSWERS, tts_dir=TTS_DIR)
    assert (result.state, result.outcome) == ("completed", "connected"), result.attempts
    assert TTS_DIR and not list(Path(TTS_DIR).glob("*.wav"))  # removed after the call
    if ASTERISK_LOG:
        with open(ASTERISK_LOG, errors="replace") as f:
            f.seek(log_size)
            text = f.read()
        played = [line for line in text.splitlines() if "callswitch-tts/" in line]
        assert any("Playing 'callswitch-tts/" in line for line in played), played[-5:]
        assert not any("Unable to open" in line or "Playback failed" in line for line in played), played
