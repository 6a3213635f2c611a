"""AMI messages -> typed call facts for the legs callswitch originated (pure: no I/O, no clock).

The daemon registers every agent leg before it sends the Originate (:meth:`Interpreter.expect_leg`;
``leg_id`` is the ``ChannelId`` *and* the ``ActionID`` of that Originate) and then passes every AMI
message to :meth:`Interpreter.feed` together with the time it was received. The interpreter

* correlates messages to legs by ``Uniqueid`` / ``DestUniqueid`` (= ChannelId for the agent
  channel), ``ActionID`` (OriginateResponse, the Originate's own ``Response``), ``Linkedid`` (every
  channel of the call has Linkedid = the agent's ChannelId) and, for UserEvents from channels it does
  not know, ``RequestId`` + ``Attempt``;
* discovers the customer channel that the dialplan's ``Dial()`` creates (any channel whose Linkedid
  is an agent leg) and reports it as a leg of role ``customer`` with id :func:`customer_leg_id`;
* turns what it sees into :class:`Fact` objects, each emitted at most once per leg (duplicated
  events give no new facts), and ends every leg with exactly one :class:`LegEnded` holding the final
  classification.

Classification follows the real Asterisk 22 captures (shared/asterisk): never by OriginateResponse
``Reason`` alone (chan_pjsip rejections all give Reason 0); by the dialplan's UserEvents, the Hangup
``Cause`` / ``TechCause`` (SIP status), the ``DialEnd`` ``DialStatus`` and the Cdr ``Disposition``,
in that order. An agent leg ends at its ``Hangup`` (its UserEvents, Newstate and DialEnd come before
its Hangup: they are events of the same channel). A customer leg whose Hangup is inconclusive
(Cause 0 "Unknown" after a Dial timeout, 16 when cancelled) waits for the DialEnd,
``CallswitchCustomerResult`` or the agent's Hangup before it is classified. An Originate that fails
without any channel event (invalid technology, ChannelId in use, ``Response: Error``) ends at the
failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "DISPOSITIONS",
    "AgentAccepted",
    "AgentAnswered",
    "AgentDeclined",
    "AgentJoined",
    "AgentRepeat",
    "CustomerAnswered",
    "CustomerDialing",
    "CustomerLegCreated",
    "CustomerReleased",
    "CustomerResult",
    "CustomerRinging",
    "CustomerWaiting",
    "Fact",
    "Interpreter",
    "LegAnswered",
    "LegCdr",
    "LegEnded",
    "LegHungUp",
    "LegRinging",
    "OriginateFailed",
    "classify_leg",
    "customer_leg_id",
]

AGENT = "agent"
CUSTOMER = "customer"

# call_legs.disposition (migration 0001)
ANSWERED = "answered"
ACCEPTED = "accepted"
DECLINED = "declined"
NO_ANSWER = "no_answer"
BUSY = "busy"
CONGESTION = "congestion"
UNREACHABLE = "unreachable"
CANCELLED = "cancelled"
ANSWERED_ELSEWHERE = "answered_elsewhere"
FAILED = "failed"
DISPOSITIONS = (ANSWERED, ACCEPTED, DECLINED, NO_ANSWER, BUSY, CONGESTION, UNREACHABLE, CANCELLED,
                ANSWERED_ELSEWHERE, FAILED)

# Q.850 hangup cause -> disposition of a leg that was NOT answered. 0 (unknown) and 16 (normal
# clearing) are missing on purpose: they say nothing about why an unanswered leg ended.
_CAUSE_DISPOSITION: dict[int, str] = {
    17: BUSY,  # user busy (SIP 486)
    21: BUSY,  # call rejected (SIP 603 Decline: the phone's reject button)
    18: NO_ANSWER,  # no user responding (SIP 408)
    19: NO_ANSWER,  # no answer (SIP 480; the Originate Timeout expired)
    26: ANSWERED_ELSEWHERE,  # answered elsewhere (ring-all loser, AMI Hangup Cause 26)
    1: UNREACHABLE,  # unallocated number (SIP 404)
    2: UNREACHABLE,  # no route to network
    3: UNREACHABLE,  # no route to destination
    20: UNREACHABLE,  # subscriber absent (SIP 480 on some carriers, unregistered endpoint)
    22: UNREACHABLE,  # number changed (SIP 410)
    27: UNREACHABLE,  # destination out of order (SIP 502)
    28: UNREACHABLE,  # invalid number format (SIP 484)
    34: CONGESTION,  # no circuit available (SIP 503)
    38: CONGESTION,  # network out of order
    41: CONGESTION,  # temporary failure
    42: CONGESTION,  # switching equipment congestion
    44: CONGESTION,  # requested channel not available
    47: CONGESTION,  # resource unavailable
}
# DialEnd DialStatus / ${DIALSTATUS} -> disposition (of an unanswered leg)
_DIALSTATUS_DISPOSITION: dict[str, str] = {
    "BUSY": BUSY,
    "CONGESTION": CONGESTION,
    "CHANUNAVAIL": UNREACHABLE,
    "NOANSWER": NO_ANSWER,
    "CANCEL": CANCELLED,
    "ABORT": DECLINED,
    "INVALIDARGS": FAILED,
}
# Cdr Disposition (only the leg's own record, without DestinationChannel) -> disposition
_CDR_DISPOSITION: dict[str, str] = {
    "BUSY": BUSY,
    "CONGESTION": CONGESTION,
    "NO ANSWER": NO_ANSWER,
    "FAILED": FAILED,
}
# OriginateResponse Reason (ast_control_frame_type) -> disposition; chan_pjsip only ever gives 0 or 3
_REASON_DISPOSITION: dict[int, str] = {3: NO_ANSWER, 5: BUSY, 8: CONGESTION}


def customer_leg_id(agent_leg_id: str) -> str:
    """Leg id under which the customer channel dialled from agent leg ``agent_leg_id`` is reported."""
    return f"{agent_leg_id}-c"


# ---------------------------------------------------------------------------------------- facts
@dataclass(frozen=True, kw_only=True)
class Fact:
    """Something that happened on one leg. ``at`` is the ``now`` passed to :meth:`Interpreter.feed`.

    ``agent_leg_id`` is the agent leg the fact belongs to (``leg_id`` itself for agent legs, the
    agent leg whose dialplan dialled the customer for customer legs). ``channel`` / ``uniqueid`` /
    ``linkedid`` are the Asterisk identifiers of the leg's channel where known.
    """

    leg_id: str
    request_id: str
    attempt: int
    role: str  # "agent" | "customer"
    agent_leg_id: str
    at: datetime
    channel: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None


@dataclass(frozen=True, kw_only=True)
class LegRinging(Fact):
    """The agent's phone rings (Newstate Ringing / DialState RINGING)."""


@dataclass(frozen=True, kw_only=True)
class LegAnswered(Fact):
    """The agent leg answered (Newstate Up, DialEnd ANSWER, OriginateResponse Success or the
    dialplan's CallswitchAgentAnswered, whichever comes first)."""


@dataclass(frozen=True, kw_only=True)
class AgentAnswered(Fact):
    """UserEvent CallswitchAgentAnswered: the dialplan runs on the agent leg, announcement starts."""


@dataclass(frozen=True, kw_only=True)
class AgentRepeat(Fact):
    """UserEvent CallswitchRepeat: the agent pressed 3 (``count`` repeats so far)."""

    count: int | None = None


@dataclass(frozen=True, kw_only=True)
class AgentAccepted(Fact):
    """UserEvent CallswitchAccepted: the agent pressed 1 after the beep."""

    digit: str = "1"


@dataclass(frozen=True, kw_only=True)
class AgentDeclined(Fact):
    """UserEvent CallswitchDeclined. ``reason``: DECLINED (2), TIMEOUT (no key, voicemail, key only
    during the announcement), INVALID (other key), TOO_LATE (another agent accepted first)."""

    reason: str
    digit: str = ""
    read_status: str = ""


@dataclass(frozen=True, kw_only=True)
class CustomerDialing(Fact):
    """UserEvent CallswitchCustomerDialing (emitted on the agent channel, reported on the customer leg)."""


@dataclass(frozen=True, kw_only=True)
class CustomerLegCreated(Fact):
    """The customer channel exists (first event of a channel whose Linkedid is the agent leg)."""


@dataclass(frozen=True, kw_only=True)
class CustomerRinging(Fact):
    """The customer's phone rings."""


@dataclass(frozen=True, kw_only=True)
class CustomerAnswered(Fact):
    """The customer answered (Newstate Up of the customer channel / DialEnd ANSWER)."""


@dataclass(frozen=True, kw_only=True)
class CustomerWaiting(Fact):
    """UserEvent CallswitchCustomerWaiting (customer-first): the visitor is on hold in the conference."""


@dataclass(frozen=True, kw_only=True)
class CustomerReleased(Fact):
    """UserEvent CallswitchCustomerReleased (customer-first): the visitor left the conference;
    ``result`` is ``${CONFBRIDGE_RESULT}`` (ENDMARKED, KICKED, TIMEOUT, HANGUP)."""

    result: str


@dataclass(frozen=True, kw_only=True)
class AgentJoined(Fact):
    """UserEvent CallswitchJoined (customer-first): the accepting agent joins the visitor's conference;
    ``parties`` = users already in it (1: the visitor is there)."""

    parties: int | None = None


@dataclass(frozen=True, kw_only=True)
class CustomerResult(Fact):
    """UserEvent CallswitchCustomerResult: the dialplan's Dial() to the customer returned.

    ``dial_status`` is ``${DIALSTATUS}`` (ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, CANCEL);
    note a 404 customer gives CHANUNAVAIL here but NOANSWER in the DialEnd event."""

    dial_status: str
    cause: int | None = None


@dataclass(frozen=True, kw_only=True)
class LegHungUp(Fact):
    """The leg's channel hung up (AMI Hangup). ``sip_status`` from TechCause when Asterisk gives it."""

    cause: int | None
    cause_text: str | None = None
    sip_status: int | None = None


@dataclass(frozen=True, kw_only=True)
class OriginateFailed(Fact):
    """The Originate failed: OriginateResponse Failure (``reason`` = Reason header: 0 for every
    chan_pjsip rejection, 3 for the Originate Timeout) or a ``Response: Error`` to the action
    (``reason`` None, ``message`` the error text). Informational: the classification is in LegEnded."""

    reason: int | None
    dial_string: str | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class LegCdr(Fact):
    """One Cdr event of the leg's channel (a channel can have several: one per Dial() and one for
    the rest of its dialplan). Times are the PBX's local time, naive. For an agent channel whose
    dialplan dialled the customer, the record with ``destination_channel`` = the customer channel is
    the Dial() to the customer: its disposition is the customer's result, its billsec counts from the
    AGENT's answer."""

    disposition: str
    duration: int | None = None
    billsec: int | None = None
    start: datetime | None = None
    answer: datetime | None = None
    end: datetime | None = None
    destination_channel: str | None = None
    last_application: str | None = None


@dataclass(frozen=True, kw_only=True)
class LegEnded(Fact):
    """The leg is over; its final classification (exactly one per leg).

    ``disposition`` is one of :data:`DISPOSITIONS`. ``step`` is the dialplan step reported by the
    CallswitchLegEnded hangup handler (announce, menu, declined, customer, ...) when it was seen."""

    disposition: str
    cause: int | None = None
    cause_text: str | None = None
    sip_status: int | None = None
    answered: bool = False
    accepted: bool = False
    step: str | None = None


# ---------------------------------------------------------------------------------------- state
@dataclass
class _Leg:
    leg_id: str
    role: str
    request_id: str
    attempt: int
    agent_leg_id: str
    uniqueid: str | None = None
    channel: str | None = None
    linkedid: str | None = None
    emitted: set[str] = field(default_factory=set)  # kinds of once-only facts already emitted
    cdrs: set[tuple[str | None, ...]] = field(default_factory=set)
    seen_channel: bool = False
    answered: bool = False
    up_seen: bool = False  # the channel's own events said it answered (they follow its ringing events)
    accepted: bool = False
    decline_reason: str | None = None
    dial_status: str | None = None  # DialEnd of this leg as the destination
    cdr_disposition: str | None = None  # own Cdr record (no DestinationChannel)
    originate_reason: int | None = None  # OriginateResponse Failure reason
    customer_status: str | None = None  # agent legs: ${DIALSTATUS} of the customer Dial
    hung_up: bool = False
    cause: int | None = None
    cause_text: str | None = None
    sip_status: int | None = None
    step: str | None = None
    ended: bool = False
    customer: str | None = None  # agent legs: the customer leg id, once there is one
    originated: bool = False  # customer legs: originated by callswitch (customer-first), not dialled by an agent
    joins: bool = False  # agent legs of customer-first: an acceptance joins the visitor, nothing is dialled


def classify_leg(
    *,
    role: str,
    answered: bool,
    accepted: bool = False,
    decline_reason: str | None = None,
    cause: int | None = None,
    dial_status: str | None = None,
    cdr_disposition: str | None = None,
    originate_reason: int | None = None,
    customer_status: str | None = None,
) -> str:
    """Final disposition of a leg from everything seen about it (see the module docstring).

    Agent legs: accepted > declined (TOO_LATE: answered_elsewhere; TIMEOUT, i.e. no key at all:
    answered) > answered (Cause 26: answered_elsewhere) > why an unanswered leg failed (Hangup cause,
    DialEnd status, own Cdr disposition, OriginateResponse reason; 0/16 with nothing else known:
    cancelled). Customer legs: answered > the same chain, then the dialplan's ``${DIALSTATUS}``.
    """
    if role == AGENT:
        if accepted:
            return ACCEPTED
        if decline_reason is not None:
            if decline_reason == "TOO_LATE":
                return ANSWERED_ELSEWHERE
            return ANSWERED if decline_reason == "TIMEOUT" else DECLINED
        if answered:
            return ANSWERED_ELSEWHERE if cause == 26 else ANSWERED
    elif answered:
        return ANSWERED
    if cause is not None and cause in _CAUSE_DISPOSITION:
        return _CAUSE_DISPOSITION[cause]
    if dial_status and dial_status in _DIALSTATUS_DISPOSITION and dial_status != "ABORT":
        return _DIALSTATUS_DISPOSITION[dial_status]
    if role == CUSTOMER and customer_status and customer_status in _DIALSTATUS_DISPOSITION:
        return _DIALSTATUS_DISPOSITION[customer_status]
    if cdr_disposition and cdr_disposition in _CDR_DISPOSITION:
        return _CDR_DISPOSITION[cdr_disposition]
    if originate_reason is not None and originate_reason in _REASON_DISPOSITION:
        return _REASON_DISPOSITION[originate_reason]
    if cause in (0, 16):
        return CANCELLED
    return FAILED


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _cdr_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _nonempty(value: str | None) -> str | None:
    return value if value and value != "<unknown>" else None


# ---------------------------------------------------------------------------------------- interpreter
class Interpreter:
    """Tracks the legs it owns and turns AMI messages about them into :class:`Fact` objects."""

    def __init__(self) -> None:
        self._legs: dict[str, _Leg] = {}
        self._by_uniqueid: dict[str, str] = {}
        self._by_request: dict[tuple[str, int], list[str]] = {}

    # -- registration ---------------------------------------------------------------------------
    def expect_leg(self, leg_id: str, *, request_id: str, attempt: int, role: str = AGENT,
                   joins: bool = False) -> None:
        """Register a leg before its Originate is sent (ChannelId = ActionID = ``leg_id``).

        Agent legs, and in customer-first mode the customer leg (``role="customer"``; its facts carry
        ``agent_leg_id == leg_id``). ``joins``: an agent leg of customer-first, whose acceptance joins
        the waiting visitor instead of dialling them."""
        if role not in (AGENT, CUSTOMER):
            raise ValueError(f"unknown leg role {role!r}")
        if leg_id in self._legs:
            return
        leg = _Leg(leg_id, role, request_id, attempt, leg_id, uniqueid=leg_id, linkedid=leg_id,
                   originated=role == CUSTOMER, joins=joins and role == AGENT)
        self._legs[leg_id] = leg
        self._by_uniqueid[leg_id] = leg_id
        self._by_request.setdefault((request_id, attempt), []).append(leg_id)

    def forget(self, request_id: str, attempt: int) -> None:
        """Drop every leg of one attempt (after the flow finished); later events for it are ignored."""
        for leg_id in self._by_request.pop((request_id, attempt), []):
            for lid in (leg_id, customer_leg_id(leg_id)):
                leg = self._legs.pop(lid, None)
                if leg is not None and leg.uniqueid:
                    self._by_uniqueid.pop(leg.uniqueid, None)

    def owns(self, leg_id: str) -> bool:
        return leg_id in self._legs

    def __len__(self) -> int:
        return len(self._legs)

    # -- input ----------------------------------------------------------------------------------
    def feed(self, msg: Mapping[str, str], now: datetime) -> list[Fact]:
        """Facts from one AMI message received at ``now``; [] for anything not about our legs."""
        event = msg.get("Event")
        if event is None:
            return self._response(msg, now)
        if event == "OriginateResponse":
            return self._originate_response(msg, now)
        if event == "Cdr":
            return self._cdr(msg, now)
        if event in ("DialBegin", "DialState", "DialEnd"):
            return self._dial(event, msg, now)
        if event == "UserEvent":
            return self._user_event(msg, now)
        leg = self._channel_leg(msg.get("Uniqueid"), msg.get("Linkedid"), msg.get("Channel"))
        if leg is None:
            return []
        out: list[Fact] = []
        self._discovered(leg, now, out)
        if event == "Newstate":
            state = msg.get("ChannelStateDesc")
            if state == "Up":
                self._answered(leg, now, out)
            elif state in ("Ringing", "Ring"):
                self._ringing(leg, now, out)
        elif event == "Hangup":
            self._hangup(leg, msg, now, out)
        return out

    # -- lookup -----------------------------------------------------------------------------------
    def _channel_leg(self, uniqueid: str | None, linkedid: str | None, channel: str | None) -> _Leg | None:
        """The leg a channel event is about; discovers the customer channel by its Linkedid."""
        if not uniqueid:
            return None
        leg_id = self._by_uniqueid.get(uniqueid)
        if leg_id is not None:
            leg = self._legs[leg_id]
            if channel and leg.channel is None:
                leg.channel = channel
            return leg
        if not linkedid or linkedid == uniqueid:
            return None
        agent_id = self._by_uniqueid.get(linkedid)
        if agent_id is None:
            return None
        agent = self._legs[agent_id]
        if agent.role != AGENT or agent.joins:
            return None
        cust = self._customer(agent)
        if cust.uniqueid is not None:
            return None  # another channel of the call (not the customer leg we track)
        cust.uniqueid = uniqueid
        cust.channel = channel
        cust.linkedid = linkedid
        self._by_uniqueid[uniqueid] = cust.leg_id
        return cust

    def _customer(self, agent: _Leg) -> _Leg:
        cid = customer_leg_id(agent.leg_id)
        leg = self._legs.get(cid)
        if leg is None:
            leg = _Leg(cid, CUSTOMER, agent.request_id, agent.attempt, agent.leg_id, linkedid=agent.uniqueid)
            self._legs[cid] = leg
            agent.customer = cid
        return leg

    def _user_event_leg(self, msg: Mapping[str, str]) -> _Leg | None:
        leg = self._channel_leg(msg.get("Uniqueid"), msg.get("Linkedid"), msg.get("Channel"))
        if leg is not None:
            if leg.role == CUSTOMER:  # a UserEvent from the customer channel: report on the agent leg
                return self._legs.get(leg.agent_leg_id)
            return leg
        attempt = _int(msg.get("Attempt"))
        request_id = msg.get("RequestId")
        if request_id is None or attempt is None:
            return None
        live = [self._legs[i] for i in self._by_request.get((request_id, attempt), []) if i in self._legs]
        live = [lg for lg in live if not lg.ended] or live
        return live[0] if len(live) == 1 else None

    # -- fact helpers -------------------------------------------------------------------------------
    def _fact(self, cls: type[Fact], leg: _Leg, now: datetime, **kw: object) -> Fact:
        return cls(leg_id=leg.leg_id, request_id=leg.request_id, attempt=leg.attempt, role=leg.role,
                   agent_leg_id=leg.agent_leg_id, at=now, channel=leg.channel, uniqueid=leg.uniqueid,
                   linkedid=leg.linkedid, **kw)

    def _once(self, kind: str, cls: type[Fact], leg: _Leg, now: datetime, out: list[Fact], *,
              after_end: bool = False, **kw: object) -> bool:
        if kind in leg.emitted or (leg.ended and not after_end):
            return False
        leg.emitted.add(kind)
        out.append(self._fact(cls, leg, now, **kw))
        return True

    def _discovered(self, leg: _Leg, now: datetime, out: list[Fact]) -> None:
        leg.seen_channel = True
        if leg.role == CUSTOMER and leg.uniqueid is not None:
            self._once("created", CustomerLegCreated, leg, now, out)

    def _ringing(self, leg: _Leg, now: datetime, out: list[Fact]) -> None:
        if leg.up_seen:  # (an OriginateResponse Success is no proof: it may overtake the ringing events)
            return
        self._once("ringing", LegRinging if leg.role == AGENT else CustomerRinging, leg, now, out)

    def _answered(self, leg: _Leg, now: datetime, out: list[Fact], *, own: bool = True) -> None:
        leg.answered = True
        leg.up_seen = leg.up_seen or own
        self._once("answered", LegAnswered if leg.role == AGENT else CustomerAnswered, leg, now, out)

    # -- handlers -----------------------------------------------------------------------------------
    def _response(self, msg: Mapping[str, str], now: datetime) -> list[Fact]:
        """``Response: Error`` to our Originate (e.g. "Extension does not exist.") ends the leg."""
        leg = self._legs.get(msg.get("ActionID") or "")
        if leg is None or not (leg.role == AGENT or leg.originated) or msg.get("Response") != "Error":
            return []
        out: list[Fact] = []
        self._once("originate", OriginateFailed, leg, now, out, after_end=True, reason=None,
                   message=msg.get("Message"))
        if not leg.seen_channel:
            self._end(leg, now, out)
        return out

    def _originate_response(self, msg: Mapping[str, str], now: datetime) -> list[Fact]:
        leg = self._legs.get(msg.get("ActionID") or "")
        if leg is None:
            uid = msg.get("Uniqueid") or ""
            leg = self._legs.get(self._by_uniqueid.get(uid, "")) if uid else None
        if leg is None or not (leg.role == AGENT or leg.originated):
            return []
        out: list[Fact] = []
        if msg.get("Response") == "Success":
            if leg.channel is None:
                leg.channel = _nonempty(msg.get("Channel"))
            self._answered(leg, now, out, own=False)
            return out
        reason = _int(msg.get("Reason"))
        leg.originate_reason = reason
        self._once("originate", OriginateFailed, leg, now, out, after_end=True, reason=reason,
                   dial_string=msg.get("Channel"))
        if not leg.seen_channel:  # no channel was ever created: nothing else will come
            self._end(leg, now, out)
        return out

    def _dial(self, event: str, msg: Mapping[str, str], now: datetime) -> list[Fact]:
        out: list[Fact] = []
        dest = self._channel_leg(msg.get("DestUniqueid"), msg.get("DestLinkedid"), msg.get("DestChannel"))
        if dest is not None:
            self._discovered(dest, now, out)
            status = msg.get("DialStatus") or ""
            if event == "DialState" and status in ("RINGING", "PROCEEDING"):
                self._ringing(dest, now, out)
            elif event == "DialEnd":
                if status == "ANSWER":
                    self._answered(dest, now, out)
                elif status:
                    dest.dial_status = status
                    self._maybe_end_customer(dest, now, out)
        return out

    def _user_event(self, msg: Mapping[str, str], now: datetime) -> list[Fact]:
        name = msg.get("UserEvent") or ""
        if not name.startswith("Callswitch"):
            return []
        leg = self._user_event_leg(msg)
        if leg is None:
            return []
        out: list[Fact] = []
        if name == "CallswitchAgentAnswered":
            self._answered(leg, now, out)
            self._once("agent_answered", AgentAnswered, leg, now, out)
        elif name == "CallswitchRepeat":
            count = _int(msg.get("Count"))
            self._once(f"repeat:{count}", AgentRepeat, leg, now, out, count=count)
        elif name == "CallswitchAccepted":
            self._answered(leg, now, out)
            leg.accepted = True
            self._once("accepted", AgentAccepted, leg, now, out, digit=msg.get("Digit") or "1")
        elif name == "CallswitchDeclined":
            reason = msg.get("Reason") or "DECLINED"
            self._answered(leg, now, out)
            if leg.decline_reason is None and not leg.accepted:
                leg.decline_reason = reason
            self._once("declined", AgentDeclined, leg, now, out, reason=reason, digit=msg.get("Digit") or "",
                       read_status=msg.get("ReadStatus") or "")
        elif name == "CallswitchCustomerWaiting":
            self._answered(leg, now, out)
            self._once("waiting", CustomerWaiting, leg, now, out)
        elif name == "CallswitchCustomerReleased":
            self._once("released", CustomerReleased, leg, now, out, after_end=True,
                       result=msg.get("Result") or "")
        elif name == "CallswitchJoined":
            self._once("joined", AgentJoined, leg, now, out, parties=_int(msg.get("Parties")))
        elif name == "CallswitchCustomerAnswered":
            self._answered(leg, now, out)
        elif name in ("CallswitchCustomerDialing", "CallswitchCustomerResult") and (leg.joins or leg.originated):
            pass  # customer-first: no customer is dialled from an agent leg
        elif name == "CallswitchCustomerDialing":
            cust = self._customer(leg)
            self._once("dialing", CustomerDialing, cust, now, out, after_end=True)
        elif name == "CallswitchCustomerResult":
            cust = self._customer(leg)
            status = msg.get("DialStatus") or ""
            leg.customer_status = cust.customer_status = status
            self._once("result", CustomerResult, cust, now, out, after_end=True, dial_status=status,
                       cause=_int(msg.get("Cause")))
            if status == "ANSWER":
                cust.answered = True
            self._maybe_end_customer(cust, now, out)
        elif name == "CallswitchLegEnded":
            target = leg
            if (msg.get("Leg") or "") == CUSTOMER and leg.customer:
                target = self._legs[leg.customer]
            target.step = msg.get("Step") or target.step
        return out

    def _hangup(self, leg: _Leg, msg: Mapping[str, str], now: datetime, out: list[Fact]) -> None:
        if leg.hung_up:
            return
        leg.hung_up = True
        leg.cause = _int(msg.get("Cause"))
        leg.cause_text = _nonempty(msg.get("Cause-txt"))
        leg.sip_status = _int(msg.get("TechCause"))
        self._once("hungup", LegHungUp, leg, now, out, cause=leg.cause, cause_text=leg.cause_text,
                   sip_status=leg.sip_status)
        if leg.role == AGENT:
            self._end(leg, now, out)
            if leg.customer is not None:
                cust = self._legs[leg.customer]
                if cust.uniqueid is None and cust.customer_status is None:
                    cust.dial_status = "CANCEL"  # the agent left before the customer channel existed
                if cust.uniqueid is None or cust.hung_up:  # never created, or waiting for this hangup
                    self._end(cust, now, out)
        else:
            self._maybe_end_customer(leg, now, out)

    def _maybe_end_customer(self, leg: _Leg, now: datetime, out: list[Fact]) -> None:
        """End a hung-up customer leg once its classification is conclusive."""
        if leg.role != CUSTOMER or leg.ended or not leg.hung_up:
            return
        agent = self._legs.get(leg.agent_leg_id)
        conclusive = (
            leg.answered
            or (leg.cause is not None and leg.cause in _CAUSE_DISPOSITION)
            or leg.dial_status is not None
            or leg.customer_status is not None
            or agent is None
            or agent.hung_up
        )
        if conclusive:
            self._end(leg, now, out)

    def _end(self, leg: _Leg, now: datetime, out: list[Fact]) -> None:
        if leg.ended:
            return
        disposition = classify_leg(
            role=leg.role, answered=leg.answered, accepted=leg.accepted, decline_reason=leg.decline_reason,
            cause=leg.cause, dial_status=leg.dial_status, cdr_disposition=leg.cdr_disposition,
            originate_reason=leg.originate_reason, customer_status=leg.customer_status,
        )
        out.append(self._fact(LegEnded, leg, now, disposition=disposition, cause=leg.cause,
                              cause_text=leg.cause_text, sip_status=leg.sip_status, answered=leg.answered,
                              accepted=leg.accepted, step=leg.step))
        leg.ended = True

    def _cdr(self, msg: Mapping[str, str], now: datetime) -> list[Fact]:
        uid = msg.get("UniqueID") or msg.get("Uniqueid") or ""
        leg_id = self._by_uniqueid.get(uid)
        if leg_id is None:
            return []
        leg = self._legs[leg_id]
        disposition = msg.get("Disposition") or ""
        dest = _nonempty(msg.get("DestinationChannel"))
        key = (disposition, msg.get("StartTime"), msg.get("AnswerTime"), msg.get("EndTime"), dest,
               msg.get("Duration"), msg.get("BillableSeconds"), msg.get("LastApplication"))
        if key in leg.cdrs:
            return []
        leg.cdrs.add(key)
        if dest is None and leg.cdr_disposition is None:
            leg.cdr_disposition = disposition
        if leg.channel is None:
            leg.channel = _nonempty(msg.get("Channel"))
        return [self._fact(LegCdr, leg, now, disposition=disposition, duration=_int(msg.get("Duration")),
                           billsec=_int(msg.get("BillableSeconds")), start=_cdr_time(msg.get("StartTime")),
                           answer=_cdr_time(msg.get("AnswerTime")), end=_cdr_time(msg.get("EndTime")),
                           destination_channel=dest, last_application=_nonempty(msg.get("LastApplication")))]
