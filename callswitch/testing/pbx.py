"""Protocol-faithful AMI simulator (asyncio TCP server) for tests, modelled on real Asterisk 22 captures.

What it does, exactly as the captures in the project's shared/asterisk show:

* banner ``Asterisk Call Manager/11.0.0``; ``Login`` (bad secret -> ``Response: Error`` /
  ``Message: Authentication failed``, then the connection is closed); ``Event: FullyBooted`` after login;
  actions before login -> ``Authentication Required``;
* ``Logoff`` (Goodbye + close), ``Ping``, ``Events`` (on/off), ``Filter`` (regex whitelist over the event
  text, Add only), ``CoreShowChannels``, ``Status``, ``Hangup``, ``UserEvent``, ``Command`` (canned
  output), unknown actions;
* ``Originate`` into the shipped agent-first context ``callswitch-agent`` (Async or not), honouring
  ``ChannelId``: a ChannelId still in use is refused (queued, then OriginateResponse Failure Reason 0);
  a context the simulator does not know is refused at once (``Extension does not exist.``); an unknown
  channel technology is queued and fails (Reason 0, ``Uniqueid: <unknown>``).
  The call itself is a replay of the real capture for the scripted phone behaviour of the dialled
  numbers (see :mod:`callswitch.testing.scenarios`), with the identifiers of the simulated call
  substituted (ActionID, ChannelId as Uniqueid/Linkedid, fresh ``<epoch>.<n>`` ids and channel names,
  numbers, endpoint) and the reference dialplan's UserEvents rewritten to the shipped dialplan's
  (``CallswitchAgentAnswered``, ``CallswitchAccepted``, ``CallswitchDeclined``,
  ``CallswitchCustomerDialing``, ``CallswitchCustomerResult``, ``CallswitchLegEnded``). Newexten/VarSet are
  not produced.

* customer-first (``callswitch-customer-first`` + agent legs with ``CS_JOIN``): the visitor's channel
  follows the captured life of an originated channel (ringing, answer, or the busy / no-answer / 404
  captures), then the shipped dialplan's UserEvents (CallswitchCustomerAnswered, ...Waiting,
  ...Released with ``${CONFBRIDGE_RESULT}``) around a modelled two-party ConfBridge; an accepting agent
  with ``CS_JOIN`` replays its capture up to the acceptance, then CallswitchJoined, and whoever hangs
  up first releases the other (``end_marked_any``: Result ENDMARKED). ``ConfbridgeKick`` answers as
  app_confbridge does. This part is NOT from a capture: no ConfBridge events (the daemon's event
  filter drops them), talk time ``TALK_S`` recorded seconds.
* AstDB as the shipped dialplan writes it: ``callswitch-mark-connected`` when an agent-first visitor
  answers (the customer's DialEnd ANSWER) and when a customer-first agent joins; ``DBGet`` answers as
  Asterisk 22's ``manager_dbget()`` does (a list of one DBGetResponse and DBGetComplete, or ``Database
  entry not found``). With ``astdb_file`` the database outlives the simulator, as Asterisk's astdb.sqlite3
  does.

Not simulated: Originate into callswitch-ringall / Local channels (refused with ``Response: Error``),
CEL, RTCP timing accuracy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callswitch.ami.protocol import AmiMessage, AmiParser
from callswitch.testing import scenarios as _scenarios

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_UUID = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"

AGENT_BEHAVIOURS = ("accept", "decline", "noanswer", "busy", "congestion", "hangs_up_in_announcement",
                    "voicemail", "early_dtmf", "unallocated")
CUSTOMER_BEHAVIOURS = ("hangs_up", "stays", "noanswer", "busy", "404")
SIMULATED_CONTEXTS = frozenset({"callswitch-agent", "callswitch-customer-first"})
# ast_cause2str() of the causes the daemon asks for in Action: Hangup
CAUSE_TEXT = {16: "Normal Clearing", 17: "User busy", 19: "No answer", 21: "Call Rejected",
              26: "Answered elsewhere"}
TALK_S = 4.0  # customer-first: recorded seconds a bridged visitor and agent talk
PROMPT_S = 2.0  # customer-first: connect prompt / goodbye prompt
KNOWN_CONTEXTS = frozenset({
    "callswitch-agent", "callswitch-confirm", "callswitch-customer", "callswitch-predial",
    "callswitch-ringall", "callswitch-ringall-member", "callswitch-member-confirm",
    "callswitch-customer-first", "callswitch-leg-ended", "callswitch-from-carrier", "callswitch-mark-connected",
})
KNOWN_TECHS = frozenset({"PJSIP", "Local", "SIP", "IAX2", "DAHDI"})


# a 404 from the carrier: the busy capture with the causes of a 404
_UNALLOCATED = {"Cause: 17": "Cause: 1", "TechCause: 486": "TechCause: 404",
                "DialStatus: BUSY": "DialStatus: NOANSWER", "Disposition: BUSY": "Disposition: NO ANSWER",
                "Cause-txt: User busy": "Cause-txt: Unallocated (unassigned) number"}


def lab_behaviour(number: str) -> str:
    """The lab carrier's number plan (flows/README.md): agents 1312555010X.., customers 1773555020X.."""
    agents = {"0": "accept", "1": "decline", "2": "noanswer", "3": "busy", "4": "congestion",
              "5": "hangs_up_in_announcement", "6": "voicemail", "7": "early_dtmf", "8": "accept"}
    customers = {"0": "hangs_up", "1": "stays", "2": "noanswer", "3": "busy", "4": "404"}
    digits = number.lstrip("+")
    if len(digits) == 11 and digits.startswith("131255501"):
        return agents.get(digits[9], "unallocated")
    if len(digits) == 11 and digits.startswith("177355502"):
        return customers.get(digits[9], "404")
    return "404"


@dataclass
class OriginateRecord:
    """One Originate action as received (all headers, Variable values parsed)."""

    headers: dict[str, str]
    variables: dict[str, str]
    received_at: float
    accepted: bool
    session: int


@dataclass
class _Session:
    id: int
    writer: asyncio.StreamWriter
    authenticated: bool = False
    events: bool = True
    filters: list[re.Pattern[str]] = field(default_factory=list)

    def wants(self, raw: str) -> bool:
        if not self.authenticated or not self.events:
            return False
        return not self.filters or any(f.search(raw) for f in self.filters)


@dataclass
class _Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: str = "Down"
    created: float = field(default_factory=time.monotonic)
    call: _Call | None = None


@dataclass
class _Call:
    action_id: str
    channel_id: str
    request_id: str = ""
    attempt: str = "1"
    task: asyncio.Task[None] | None = None
    waits_for_hangup: bool = False
    hangup_requested: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Conference:
    """A customer-first ConfBridge: the waiting visitor and, once one accepted, the agent."""

    name: str
    customer: str | None = None  # channel names
    agent: str | None = None
    agent_joined: asyncio.Event = field(default_factory=asyncio.Event)
    customer_left: asyncio.Event = field(default_factory=asyncio.Event)
    agent_left: asyncio.Event = field(default_factory=asyncio.Event)
    kicked: asyncio.Event = field(default_factory=asyncio.Event)


def _block(*pairs: tuple[str, str]) -> str:
    return "\r\n".join(f"{k}: {v}" for k, v in pairs)


class PbxSimulator:
    """Asyncio AMI server. ``time_scale`` multiplies every recorded delay (0.01 = 100x faster)."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        time_scale: float = 0.01,
        behaviours: dict[str, str] | None = None,
        default_behaviour: Callable[[str], str] = lab_behaviour,
        reorder: float = 0.0,
        seed: int = 0,
        endpoints: tuple[str, ...] = ("carrier", "trunk"),
        contexts: frozenset[str] = KNOWN_CONTEXTS,
        astdb_file: Path | None = None,
    ) -> None:
        self.users = dict(users or {"callswitch": "secret"})
        self.endpoints = set(endpoints)  # PJSIP endpoints that "exist" (PJSIPShowEndpoint)
        self.contexts = set(contexts)  # dialplan contexts that "exist" (ShowDialPlan, Originate)
        self.time_scale = time_scale
        self.behaviours = dict(behaviours or {})
        self.default_behaviour = default_behaviour
        self.reorder = reorder  # probability that two adjacent events of a call swap places
        self.originates: list[OriginateRecord] = []
        self.channels: dict[str, _Channel] = {}  # by name
        self.chancount_bug = False  # set when a duplicate ChannelId was refused (Asterisk 22.10.1 bug)
        self._rnd = random.Random(seed)
        self._scen = _scenarios.load()
        self._sessions: dict[int, _Session] = {}
        self._server: asyncio.base_events.Server | None = None
        self._ids = itertools.count(1)
        self._chan_seq = itertools.count(0x20)
        self._epoch = int(time.time())
        self._active_ids: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.conferences: dict[str, _Conference] = {}
        # AstDB: family -> key -> value, as written by the shipped dialplan (callswitch-mark-connected); kept in
        # ``astdb_file`` (JSON) if given, so that it outlives a restart of the simulator as Asterisk's does
        self.astdb_file = astdb_file
        self.astdb: dict[str, dict[str, str]] = json.loads(astdb_file.read_text()) if (
            astdb_file is not None and astdb_file.exists()) else {}
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def drop_connections(self) -> None:
        """Close every client connection abruptly (calls keep running, like a PBX behind a flaky link)."""
        for s in list(self._sessions.values()):
            s.writer.transport.abort()
        self._sessions.clear()

    def behaviour(self, number: str) -> str:
        return self.behaviours.get(number) or self.default_behaviour(number)

    def originates_to(self, number: str) -> list[OriginateRecord]:
        return [o for o in self.originates if number in o.headers.get("Channel", "")]

    # ------------------------------------------------------------------ wire
    def _send(self, session: _Session, raw: str) -> None:
        if not session.writer.is_closing():
            session.writer.write(raw.encode() + b"\r\n\r\n")

    def _broadcast(self, raw: str) -> None:
        self._track(raw)
        for s in list(self._sessions.values()):
            if s.wants(raw):
                self._send(s, raw)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(next(self._ids), writer)
        self._sessions[session.id] = session
        writer.write(BANNER)
        parser = AmiParser(expect_banner=False)
        try:
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    if not await self._handle(session, action):
                        return
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._sessions.pop(session.id, None)
            with contextlib.suppress(Exception):
                writer.close()

    # ------------------------------------------------------------------ actions
    async def _handle(self, s: _Session, m: AmiMessage) -> bool:
        name = (m.get_ci("Action") or "").strip()
        aid = m.action_id
        ahdr: tuple[tuple[str, str], ...] = (("ActionID", aid),) if aid is not None else ()
        lname = name.lower()

        def reply(response: str, *pairs: tuple[str, str]) -> None:
            self._send(s, _block(("Response", response), *ahdr, *pairs))

        if lname == "login":
            user, secret = m.get_ci("Username"), m.get_ci("Secret")
            if user in self.users and self.users[user] == secret:
                s.authenticated = True
                reply("Success", ("Message", "Authentication accepted"))
                self._send(s, _block(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "6"),
                                     ("LastReload", "6"), ("Status", "Fully Booted")))
                return True
            reply("Error", ("Message", "Authentication failed"))
            await s.writer.drain()
            s.writer.close()
            return False
        if lname == "logoff":
            reply("Goodbye", ("Message", "Thanks for all the fish."))
            await s.writer.drain()
            s.writer.close()
            return False
        if not s.authenticated:
            reply("Error", ("Message", "Authentication Required"))
            return True
        if lname == "ping":
            reply("Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))
        elif lname == "events":
            on = (m.get_ci("EventMask") or "").lower() not in ("off", "none")
            s.events = on
            reply("Success", ("Events", "On" if on else "Off"))
        elif lname == "filter":
            if (m.get_ci("Operation") or "Add").lower() != "add":
                reply("Error", ("Message", "Unknown operation"))
            else:
                try:
                    s.filters.append(re.compile(m.get_ci("Filter") or ""))
                    reply("Success", ("Message", "Success"))
                except re.error:
                    reply("Error", ("Message", "Filter Not Added"))
        elif lname == "userevent":
            reply("Success", ("Message", "Event Sent"))
            pairs = [("Event", "UserEvent"), ("Privilege", "user,all"), ("UserEvent", m.get_ci("UserEvent") or "")]
            pairs += [(k, v) for k, v in m.items() if k.lower() not in ("action", "userevent")]
            self._broadcast(_block(*pairs))
        elif lname == "coreshowchannels":
            reply("Success", ("EventList", "start"), ("Message", "Channels will follow"))
            for ch in list(self.channels.values()):
                self._send(s, _block(("Event", "CoreShowChannel"), *ahdr, *self._chan_fields(ch),
                                     ("Duration", self._duration(ch)), ("BridgeId", "")))
            self._send(s, _block(("Event", "CoreShowChannelsComplete"), *ahdr, ("EventList", "Complete"),
                                 ("ListItems", str(len(self.channels)))))
        elif lname == "status":
            wanted = m.get_ci("Channel")
            chans = [c for c in self.channels.values() if wanted in (None, "", c.name)]
            if wanted and not chans:
                reply("Error", ("Message", "No such channel"))
                return True
            reply("Success", ("EventList", "start"), ("Message", "Channel status will follow"))
            for ch in chans:
                self._send(s, _block(("Event", "Status"), ("Privilege", "Call"), *self._chan_fields(ch),
                                     ("Type", ch.name.split("/", 1)[0]), ("Seconds", self._duration(ch, True)),
                                     *ahdr))
            self._send(s, _block(("Event", "StatusComplete"), *ahdr, ("EventList", "Complete"),
                                 ("ListItems", str(len(chans))), ("Items", str(len(chans)))))
        elif lname == "showdialplan":
            # as showdialplan_cs-ref-whisper.txt; one priority per context (the simulator keeps no dialplan)
            wanted = m.get_ci("Context") or ""
            found = sorted(c for c in self.contexts if wanted in ("", c))
            if not found:
                reply("Error", ("Message", f"Did not find context {wanted}"))
                return True
            reply("Success", ("EventList", "start"), ("Message", "DialPlan list will follow"))
            for ctx in found:
                self._send(s, _block(("Event", "ListDialplan"), *ahdr, ("Context", ctx), ("Extension", "s"),
                                     ("Priority", "1"), ("Application", "NoOp"), ("AppData", ctx),
                                     ("Registrar", "pbx_config")))
            n = str(len(found))
            self._send(s, _block(("Event", "ShowDialPlanComplete"), *ahdr, ("EventList", "Complete"),
                                 ("ListItems", n), ("ListExtensions", n), ("ListPriorities", n), ("ListContexts", n)))
        elif lname == "pjsipshowendpoint":
            # as pjsipshowendpoint_carrier.txt, abridged to the identifying fields
            name = m.get_ci("Endpoint") or ""
            if name not in self.endpoints:
                reply("Error", ("Message", f"Unable to retrieve endpoint {name}"))
                return True
            reply("Success", ("EventList", "start"),
                  ("Message", "Following are Events for each object associated with the Endpoint"))
            self._send(s, _block(("Event", "EndpointDetail"), *ahdr, ("ObjectType", "endpoint"),
                                 ("ObjectName", name), ("Context", "callswitch-from-carrier")))
            self._send(s, _block(("Event", "EndpointDetailComplete"), *ahdr, ("EventList", "Complete"),
                                 ("ListItems", "1")))
        elif lname == "hangup":
            target = self.channels.get(m.get_ci("Channel") or "")
            if target is None:
                reply("Error", ("Message", "No such channel"))
            else:
                reply("Success", ("Message", "Channel Hungup"))
                cause = (m.get_ci("Cause") or "16").strip()
                self._hangup(target, int(cause) if cause.isdigit() else 16)
        elif lname == "command":
            cmd = (m.get_ci("Command") or "").strip()
            out = {"core show version": ["Asterisk 22.10.1 (callswitch simulator)"]}.get(cmd)
            if out is None:
                reply("Error", ("Message", "Command output follows"), ("Output", f"No such command '{cmd}'"))
            else:
                reply("Success", ("Message", "Command output follows"), *[("Output", line) for line in out])
        elif lname == "dbget":
            # as manager_dbget() in Asterisk 22's main/db.c
            family, key = m.get_ci("Family") or "", m.get_ci("Key") or ""
            value = self.astdb.get(family, {}).get(key)
            if not family:
                reply("Error", ("Message", "No family specified."))
            elif not key:
                reply("Error", ("Message", "No key specified."))
            elif value is None:
                reply("Error", ("Message", "Database entry not found"))
            else:
                reply("Success", ("EventList", "start"), ("Message", "Result will follow"))
                self._send(s, _block(("Event", "DBGetResponse"), ("Family", family), ("Key", key), ("Val", value),
                                     *ahdr))
                self._send(s, _block(("Event", "DBGetComplete"), *ahdr, ("EventList", "Complete"),
                                     ("ListItems", "1")))
        elif lname == "originate":
            self._originate(s, m, reply)
        elif lname == "confbridgekick":
            conf_name, chan = m.get_ci("Conference") or "", m.get_ci("Channel") or ""
            conf = self.conferences.get(conf_name)
            if not conf_name:
                reply("Error", ("Message", "No Conference name provided."))
            elif not self.conferences:
                reply("Error", ("Message", "No active conferences."))
            elif conf is None:
                reply("Error", ("Message", "No Conference by that name found."))
            elif chan not in (conf.customer, conf.agent, "all"):
                reply("Error", ("Message", "No Channel by that name found in Conference."))
            else:
                reply("Success", ("Message", "All participants kicked" if chan == "all" else "User kicked"))
                conf.kicked.set()
        else:
            reply("Error", ("Message", f"Invalid/unknown command: {name}. Use Action: ListCommands to show "
                                       "available commands."))
        return True

    # ------------------------------------------------------------------ channels
    def _chan_fields(self, ch: _Channel) -> tuple[tuple[str, str], ...]:
        state = {"Down": "0", "Ringing": "5", "Up": "6"}.get(ch.state, "0")
        return (("Channel", ch.name), ("ChannelState", state), ("ChannelStateDesc", ch.state),
                ("Uniqueid", ch.uniqueid), ("Linkedid", ch.linkedid))

    @staticmethod
    def _duration(ch: _Channel, seconds: bool = False) -> str:
        d = int(time.monotonic() - ch.created)
        return str(d) if seconds else time.strftime("%H:%M:%S", time.gmtime(d))

    def _track(self, raw: str) -> None:
        m = AmiMessage(raw)
        ev = m.event
        name = m.get("Channel")
        if ev == "Newchannel" and name:
            self.channels[name] = _Channel(name, m.get("Uniqueid") or "", m.get("Linkedid") or "",
                                           m.get("ChannelStateDesc") or "Down", call=self._current_call)
        elif ev == "Newstate" and name in self.channels:
            self.channels[name].state = m.get("ChannelStateDesc") or ""
        elif ev == "Hangup" and name:
            gone = self.channels.pop(name, None)
            if gone is not None:
                self._active_ids.discard(gone.uniqueid)

    _current_call: _Call | None = None

    def _hangup(self, ch: _Channel, cause: int = 16) -> None:
        call = ch.call
        if call is not None and call.task is not None and not call.task.done():
            call.hangup_requested.set()
            if not call.waits_for_hangup:
                call.task.cancel()
                self._force_hangup(call, cause)
            return
        self._force_hangup_channel(ch, cause)

    def _force_hangup(self, call: _Call, cause: int = 16) -> None:
        for ch in [c for c in self.channels.values() if c.call is call]:
            self._force_hangup_channel(ch, cause)

    def _force_hangup_channel(self, ch: _Channel, cause: int = 16) -> None:
        """As Asterisk after ``Action: Hangup`` with ``Cause``: the channel's hangup cause is the one asked."""
        base = self._chan_fields(ch)
        self._broadcast(_block(("Event", "SoftHangupRequest"), ("Privilege", "call,all"), *base,
                               ("Cause", str(cause))))
        self._broadcast(_block(("Event", "Hangup"), ("Privilege", "call,all"), *base, ("Cause", str(cause)),
                               ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))))

    # ------------------------------------------------------------------ originate
    def _originate(self, s: _Session, m: AmiMessage, reply: Callable[..., None]) -> None:
        headers = m.to_dict()
        variables: dict[str, str] = {}
        for item in m.getall("Variable"):
            for part in item.split(","):  # Asterisk also accepts "A=1,B=2" in one header
                k, _, v = part.partition("=")
                variables[k.lstrip("_")] = v
        rec = OriginateRecord(headers, variables, time.monotonic(), accepted=False, session=s.id)
        self.originates.append(rec)
        channel = m.get_ci("Channel") or ""
        context = m.get_ci("Context") or ""
        asynchronous = (m.get_ci("Async") or "").lower() in ("true", "yes", "1")
        chan_id = m.get_ci("ChannelId")
        aid = m.action_id or ""
        tech = channel.split("/", 1)[0]
        fail_uid = chan_id or "<unknown>"

        def failure_event(reason: str = "0") -> str:
            return _block(("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", aid),
                          ("Response", "Failure"), ("Channel", channel), ("Context", context),
                          ("Exten", m.get_ci("Exten") or ""), ("Reason", reason), ("Uniqueid", fail_uid),
                          *self._callerid(m))

        if context not in self.contexts:
            reply("Error", ("Message", "Extension does not exist."))
            return
        if tech not in KNOWN_TECHS or (chan_id is not None and chan_id in self._active_ids):
            if chan_id is not None and chan_id in self._active_ids:
                self.chancount_bug = True
            if asynchronous:
                reply("Success", ("Message", "Originate successfully queued"))
                self._broadcast(failure_event())
            else:
                reply("Error", ("Message", "Originate failed"))
            return
        if context not in SIMULATED_CONTEXTS or tech != "PJSIP":
            reply("Error", ("Message", f"callswitch simulator: Originate of {tech} into {context} is not simulated"))
            return
        rec.accepted = True
        chan_id = chan_id or f"{self._epoch}.{next(self._ids)}"
        self._active_ids.add(chan_id)
        if asynchronous:
            reply("Success", ("Message", "Originate successfully queued"))
        call = _Call(aid, chan_id, variables.get("CS_REQUEST_ID", aid), variables.get("CS_ATTEMPT", "1"))
        if context == "callswitch-customer-first":
            call.task = self._spawn(self._run_customer_first(call, m, variables, asynchronous, reply))
        else:
            call.task = self._spawn(self._run_call(call, m, variables, asynchronous, reply))

    @staticmethod
    def _callerid(m: AmiMessage) -> tuple[tuple[str, str], ...]:
        cid = m.get_ci("CallerID") or ""
        mt = re.match(r'\s*"?([^"<]*)"?\s*<([^>]*)>', cid)
        if mt:
            return (("CallerIDNum", mt.group(2)), ("CallerIDName", mt.group(1).strip()))
        return (("CallerIDNum", cid or "<unknown>"), ("CallerIDName", "<unknown>"))

    def _pick_scenario(self, agent: str, customer: str) -> tuple[str, dict[str, str]]:
        a = self.behaviour(agent)
        if a in ("accept",):
            c = self.behaviour(customer)
            key = {"hangs_up": "accept/customer_hangs_up", "stays": "accept/customer_stays",
                   "noanswer": "accept/customer_noanswer", "busy": "accept/customer_busy"}.get(c, "accept/customer_404")
            return key, {}
        if a == "unallocated":  # carrier rejects the agent with 404: the busy capture, causes swapped
            return "busy", dict(_UNALLOCATED)
        if a not in AGENT_BEHAVIOURS:
            raise ValueError(f"unknown agent behaviour {a!r}")
        return a, {}

    def _script(self, call: _Call, m: AmiMessage, key: str, extra: dict[str, str], agent: str, endpoint: str,
                customer: str, cust_dest: str, variables: dict[str, str], leg: str = "agent",
                context: str = "callswitch-agent") -> list[tuple[float, str]]:
        """The messages of capture ``key`` with the simulated call's identifiers substituted."""
        sc = self._scen[key]
        subst = self._substitutions(sc, call, m, agent, endpoint, customer, cust_dest)
        subst.update(extra)
        subst["Context: cs-ref-whisper"] = f"Context: {context}"
        pattern = re.compile("|".join(re.escape(k) for k in sorted(subst, key=len, reverse=True)))
        request_id = variables.get("CS_REQUEST_ID", call.action_id)
        attempt = variables.get("CS_ATTEMPT", "1")
        messages: list[tuple[float, str]] = []
        for t, raw in sc["messages"]:
            raw = pattern.sub(lambda mt: subst[mt.group(0)], raw)
            for out in self._rewrite_userevents(raw, request_id, attempt, call.channel_id, leg):
                messages.append((t, out))
        if self.reorder:
            for i in range(len(messages) - 1):
                if self._rnd.random() < self.reorder:
                    (t1, r1), (t2, r2) = messages[i], messages[i + 1]
                    messages[i], messages[i + 1] = (t1, r2), (t2, r1)  # keep the times, swap the events
        return messages

    async def _play(self, call: _Call, messages: list[tuple[float, str]], asynchronous: bool,
                    reply: Callable[..., None], *, stretch: float = 1.0, wait_index: int | None = None) -> None:
        """Send ``messages`` at their recorded times (scaled); pause before ``wait_index`` for a Hangup."""
        prev = 0.0
        resumed_offset = 0.0
        for i, (t, raw) in enumerate(messages):
            if wait_index is not None and i == wait_index:
                await call.hangup_requested.wait()
                resumed_offset = t - prev
            delay = max(0.0, (t - prev - resumed_offset) * stretch * self.time_scale)
            resumed_offset = 0.0
            prev = t
            if delay:
                await asyncio.sleep(delay)
            if not asynchronous and raw.startswith("Event: OriginateResponse"):
                if "Response: Success" in raw:
                    reply("Success", ("Message", "Originate successfully queued"))
                else:
                    reply("Error", ("Message", "Originate failed"))
                continue
            self._emit(call, raw)

    def _emit(self, call: _Call, raw: str) -> None:
        self._current_call = call
        try:
            self._broadcast(raw)
        finally:
            self._current_call = None
        # the customer's Dial() (it has a calling Channel, the agent's own Originate has none) answered: the
        # dialplan's U(callswitch-mark-connected) runs on the customer's channel
        if raw.startswith("Event: DialEnd\r\n"):
            m = AmiMessage(raw)
            if m.get("Channel") and m.get("DialStatus") == "ANSWER":
                self.mark_connected(call.request_id, call.attempt)

    def mark_connected(self, request_id: str, attempt: str) -> None:
        """callswitch-mark-connected of the shipped dialplan: today's mark, the marks of 2 and 3 days ago deleted."""
        now = int(time.time())

        def family(at: int) -> str:
            return f"callswitch-connected-{time.strftime('%Y%m%d', time.gmtime(at))}"

        self.astdb.setdefault(family(now), {})[f"{request_id}-{attempt}"] = str(now)
        for days in (2, 3):
            self.astdb.pop(family(now - days * 86400), None)
        if self.astdb_file is not None:
            tmp = self.astdb_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.astdb))
            tmp.replace(self.astdb_file)

    async def _run_call(self, call: _Call, m: AmiMessage, variables: dict[str, str], asynchronous: bool,
                        reply: Callable[..., None]) -> None:
        channel = m.get_ci("Channel") or ""
        dest = channel.split("/", 1)[1]
        agent, _, endpoint = dest.partition("@")
        endpoint = endpoint or agent
        customer = variables.get("CS_CUSTOMER", "")
        cust_dial = variables.get("CS_CUSTOMER_DIAL", "")
        cust_dest = cust_dial.split("/", 1)[1] if "/" in cust_dial else f"{customer}@{endpoint}"
        customer = customer or cust_dest.split("@", 1)[0]
        key, extra = self._pick_scenario(agent, customer)
        join = variables.get("CS_JOIN")
        if join and key.startswith("accept/"):
            key = "accept/customer_stays"
        sc = self._scen[key]
        messages = self._script(call, m, key, extra, agent, endpoint, customer, cust_dest, variables)
        timeout_ms = m.get_ci("Timeout")
        stretch = 1.0
        if key == "noanswer" and timeout_ms and timeout_ms.isdigit():
            stretch = int(timeout_ms) / 8000.0
        try:
            if join and key.startswith("accept/"):
                await self._agent_joins(call, messages, asynchronous, reply, join, variables)
                return
            wait_at = sc.get("wait_for_hangup_at")
            call.waits_for_hangup = wait_at is not None
            wait_index = self._index_after(sc, wait_at, messages) if wait_at is not None else None
            await self._play(call, messages, asynchronous, reply, stretch=stretch, wait_index=wait_index)
        finally:
            self._active_ids.discard(call.channel_id)

    # ------------------------------------------------------------------ customer-first
    def _call_channel(self, call: _Call) -> _Channel | None:
        """The originated channel of ``call`` (Uniqueid = its ChannelId), while it exists."""
        return next((c for c in self.channels.values() if c.uniqueid == call.channel_id), None)

    def _user_event(self, call: _Call, name: str, fields: list[tuple[str, str]]) -> None:
        ch = self._call_channel(call)
        if ch is None:
            return
        self._emit(call, _block(("Event", "UserEvent"), ("Privilege", "user,all"), *self._chan_fields(ch),
                                ("UserEvent", name), *fields))

    def _end_channel(self, call: _Call, leg: str, step: str, ids: list[tuple[str, str]]) -> None:
        """The dialplan's hangup handler, then the Hangup (cause 16) of the call's channel."""
        ch = self._call_channel(call)
        if ch is None:
            return
        self._user_event(call, "CallswitchLegEnded", [*ids, ("Leg", leg), ("Step", step), ("Cause", "16")])
        self._emit(call, _block(("Event", "Hangup"), ("Privilege", "call,all"), *self._chan_fields(ch),
                                ("Cause", "16"), ("Cause-txt", "Normal Clearing")))

    async def _wait_first(self, *events: asyncio.Event, within: float | None = None) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _agent_joins(self, call: _Call, messages: list[tuple[float, str]], asynchronous: bool,
                           reply: Callable[..., None], join: str, variables: dict[str, str]) -> None:
        """Customer-first agent: the capture up to the acceptance, then into the visitor's conference."""
        cut = next((i for i, (_t, raw) in enumerate(messages) if "UserEvent: CallswitchAccepted" in raw), None)
        if cut is None:
            await self._play(call, messages, asynchronous, reply)
            return
        await self._play(call, messages[: cut + 1], asynchronous, reply)
        ids = [("RequestId", variables.get("CS_REQUEST_ID", "")), ("Attempt", variables.get("CS_ATTEMPT", "1"))]
        conf = self.conferences.setdefault(join, _Conference(join))
        ch = self._call_channel(call)
        conf.agent = ch.name if ch else None
        parties = int(conf.customer is not None and not conf.customer_left.is_set())
        self.mark_connected(call.request_id, call.attempt)  # Gosub(callswitch-mark-connected) before the event
        self._user_event(call, "CallswitchJoined", [*ids, ("Parties", str(parties))])
        call.waits_for_hangup = True
        if call.hangup_requested.is_set():
            conf.agent_left.set()
            self._end_channel(call, "agent", "customer", ids)
            return
        conf.agent_joined.set()
        behaviour = self.behaviour(variables.get("CS_CUSTOMER", ""))
        # a visitor who stays on the line is left by the agent; one not yet on hold is still hearing the prompt
        talk = (TALK_S + (0 if parties else PROMPT_S)) * self.time_scale if behaviour == "stays" else None
        await self._wait_first(call.hangup_requested, conf.customer_left, within=talk)
        conf.agent_left.set()
        if conf.customer_left.is_set() and not call.hangup_requested.is_set():  # end_marked_any: released
            self._user_event(call, "CallswitchCustomerResult", [*ids, ("DialStatus", "ANSWER"),
                                                                 ("Result", "ENDMARKED"), ("Cause", "0")])
            self._end_channel(call, "agent", "customer-done", ids)
        else:
            self._end_channel(call, "agent", "customer", ids)

    async def _run_customer_first(self, call: _Call, m: AmiMessage, variables: dict[str, str], asynchronous: bool,
                                  reply: Callable[..., None]) -> None:
        channel = m.get_ci("Channel") or ""
        dest = channel.split("/", 1)[1]
        number, _, endpoint = dest.partition("@")
        endpoint = endpoint or number
        behaviour = self.behaviour(number)
        ids = [("RequestId", variables.get("CS_REQUEST_ID", "")), ("Attempt", variables.get("CS_ATTEMPT", "1"))]
        try:
            if behaviour not in ("hangs_up", "stays"):
                # the captured life of an originated channel that is not answered
                key, extra = {"noanswer": ("noanswer", {}), "busy": ("busy", {})}.get(
                    behaviour, ("busy", dict(_UNALLOCATED)))
                messages = self._script(call, m, key, extra, number, endpoint, "", "", variables, leg="customer",
                                        context="callswitch-customer-first")
                messages = [(t, raw) for t, raw in messages if "UserEvent: CallswitchLegEnded" not in raw]
                timeout_ms = m.get_ci("Timeout") or ""
                stretch = int(timeout_ms) / 8000.0 if key == "noanswer" and timeout_ms.isdigit() else 1.0
                await self._play(call, messages, asynchronous, reply, stretch=stretch)
                return
            messages = self._script(call, m, "accept/customer_stays", {}, number, endpoint, "", "", variables,
                                    leg="customer", context="callswitch-customer-first")
            cut = next(i for i, (_t, raw) in enumerate(messages) if "UserEvent: CallswitchAgentAnswered" in raw)
            await self._play(call, messages[:cut], asynchronous, reply)  # ringing, answer, OriginateResponse
            join = variables.get("CS_JOIN", f"callswitch-{call.channel_id}")
            self._user_event(call, "CallswitchCustomerAnswered", ids)
            call.waits_for_hangup = True
            await self._wait_first(call.hangup_requested, within=PROMPT_S * self.time_scale)
            if call.hangup_requested.is_set():
                self._end_channel(call, "customer", "connect-prompt", ids)
                return
            ch = self._call_channel(call)
            conf = self.conferences.setdefault(join, _Conference(join))
            conf.customer = ch.name if ch else None
            self._user_event(call, "CallswitchCustomerWaiting", ids)
            try:
                hold = float(variables.get("CS_HOLD_TIMEOUT", "180"))
                await self._wait_first(call.hangup_requested, conf.kicked, conf.agent_joined, within=hold)
                result = "TIMEOUT"
                if conf.agent_joined.is_set() and not (call.hangup_requested.is_set() or conf.kicked.is_set()):
                    talk = TALK_S * self.time_scale if behaviour == "hangs_up" else None
                    await self._wait_first(call.hangup_requested, conf.kicked, conf.agent_left, within=talk)
                    result = "ENDMARKED"
                if call.hangup_requested.is_set() or (behaviour == "hangs_up" and not conf.agent_left.is_set()
                                                      and not conf.kicked.is_set() and conf.agent_joined.is_set()):
                    conf.customer_left.set()
                    self._end_channel(call, "customer", "waiting", ids)
                    return
                if conf.kicked.is_set():
                    result = "KICKED"
                conf.customer_left.set()
                self._user_event(call, "CallswitchCustomerReleased", [*ids, ("Result", result)])
                if result != "ENDMARKED":
                    await asyncio.sleep(PROMPT_S * self.time_scale)  # the goodbye prompt
                self._end_channel(call, "customer", "released", ids)
            finally:
                conf.customer_left.set()
                if not (conf.agent and conf.agent in self.channels):
                    self.conferences.pop(join, None)
        finally:
            self._active_ids.discard(call.channel_id)

    @staticmethod
    def _index_after(sc: dict[str, Any], wait_at: int, messages: list[tuple[float, str]]) -> int:
        # wait_for_hangup_at counts original messages; UserEvent rewriting may insert extra ones before it
        original_t = sc["messages"][wait_at][0] if wait_at < len(sc["messages"]) else messages[-1][0]
        for i, (t, _raw) in enumerate(messages):
            if t >= original_t:
                return i
        return len(messages)

    def _substitutions(self, sc: dict[str, Any], call: _Call, m: AmiMessage, agent: str, endpoint: str,
                       customer: str, cust_dest: str) -> dict[str, str]:
        subst: dict[str, str] = {}
        text = "\r\n\r\n".join(raw for _t, raw in sc["messages"])
        for name in sorted(set(re.findall(r"PJSIP/carrier-[0-9a-f]{8}", text))):
            is_agent = f"Uniqueid: {sc['channel_id']}" in text.split(name + "\r\n", 1)[1][:600]
            ep = endpoint if is_agent else cust_dest.split("@", 1)[-1]
            subst[name] = f"PJSIP/{ep}-{next(self._chan_seq):08x}"
        for uid in sorted(set(re.findall(r"\b1795\d{6}\.\d+\b", text))):
            subst[uid] = f"{self._epoch}.{next(self._ids)}"
        for bridge in sorted(set(re.findall(_UUID, text))):
            subst[bridge] = str(uuid.uuid4())
        subst[sc["channel_id"]] = call.channel_id
        subst[f"ActionID: {sc['action_id']}\r\n"] = f"ActionID: {call.action_id}\r\n"
        subst[f"{sc['agent']}@carrier"] = f"{agent}@{endpoint}"
        subst[f"PJSIP/{sc['agent']}@carrier"] = f"PJSIP/{agent}@{endpoint}"
        if sc["customer"] and customer:
            subst[f"{sc['customer']}@carrier"] = cust_dest
            subst[sc["customer"]] = customer
        subst["Device: PJSIP/carrier\r\n"] = f"Device: PJSIP/{endpoint}\r\n"
        cid = dict(self._callerid(m))
        subst["CallerIDName: Web Callback"] = f"CallerIDName: {cid['CallerIDName']}"
        return subst

    @staticmethod
    def _rewrite_userevents(raw: str, request_id: str, attempt: str, channel_id: str,
                            leg: str = "agent") -> list[str]:
        """Reference dialplan UserEvents -> the shipped dialplan's; add the events it emits in addition."""
        ids = f"RequestId: {request_id}\r\nAttempt: {attempt}"
        if raw.startswith("Event: UserEvent") and "\r\nUserEvent: Callback" in raw:
            head, _, tail = raw.partition("\r\nUserEvent: ")
            fields = AmiMessage(tail).to_dict()
            name = tail.split("\r\n", 1)[0]
            if name == "CallbackAgentAnswered":
                return [f"{head}\r\nUserEvent: CallswitchAgentAnswered\r\n{ids}\r\nLeg: agent"]
            if name == "CallbackAccepted":
                return [f"{head}\r\nUserEvent: CallswitchAccepted\r\n{ids}\r\nDigit: 1"]
            if name == "CallbackDeclined":
                digit = fields.get("Digit", "")
                reason = "DECLINED" if digit == "2" else ("TIMEOUT" if digit == "" else "INVALID")
                return [f"{head}\r\nUserEvent: CallswitchDeclined\r\n{ids}\r\nReason: {reason}\r\nDigit: {digit}"
                        f"\r\nReadStatus: {fields.get('ReadStatus', '')}"]
            if name == "CallbackCustomerResult":
                status = fields.get("DIALSTATUS", "")
                cause = {"ANSWER": "16", "BUSY": "17", "NOANSWER": "0", "CHANUNAVAIL": "1"}.get(status, "0")
                return [f"{head}\r\nUserEvent: CallswitchCustomerResult\r\n{ids}\r\nDialStatus: {status}"
                        f"\r\nCause: {cause}"]
        if raw.startswith("Event: DialBegin") and f"\r\nUniqueid: {channel_id}\r\n" in raw and "DestChannel" in raw:
            # agent-first: the agent channel (Channel: ...) dials the customer
            head = raw.split("\r\nDestChannel:", 1)[0].replace("Event: DialBegin", "Event: UserEvent", 1)
            head = head.replace("Privilege: call,all", "Privilege: user,all", 1)
            return [f"{head}\r\nUserEvent: CallswitchCustomerDialing\r\n{ids}", raw]
        if raw.startswith("Event: Hangup\r\n") and f"\r\nUniqueid: {channel_id}\r\n" in raw:
            head = raw.split("\r\nCause:", 1)[0].replace("Event: Hangup", "Event: UserEvent", 1)
            head = head.replace("Privilege: call,all", "Privilege: user,all", 1)
            cause = AmiMessage(raw).get("Cause") or ""
            return [f"{head}\r\nUserEvent: CallswitchLegEnded\r\n{ids}\r\nLeg: {leg}\r\nStep: \r\nCause: {cause}",
                    raw]
        return [raw]
