"""The call state machine for ONE attempt of ONE request, agent-first (pure: no I/O, time passed in).

The worker builds an :class:`AttemptFlow` from the request's :class:`~callswitch.routing.model.RoutePlan`,
calls :meth:`AttemptFlow.start`, then feeds it the facts from :class:`~callswitch.dialer.interpret.Interpreter`
(:meth:`AttemptFlow.on_fact`) and wakes it at :attr:`AttemptFlow.next_deadline` (:meth:`AttemptFlow.on_timer`).
Each call returns the commands to carry out, in order:

* :class:`SetState` - the request moved forward (dialing_agent -> agent_answered -> accepted ->
  dialing_customer -> connected -> completed). States only move forward and each is emitted once; a
  skipped state (a fact arrived late or was lost) is emitted just before the later one. After a
  decline the next member is rung while the state stays ``agent_answered``. For failed attempts the flow
  sets no final state: the worker decides (``scheduled`` for a retry, ``failed``) from :class:`AttemptResult`.
* :class:`RecordLeg` (insert a ``call_legs`` row; always before the leg's :class:`Originate`) and
  :class:`UpdateLeg` (the columns that changed) - upsert by ``leg_id``.
* :class:`Originate` - one leg into the shipped dialplan: an agent leg into ``callswitch-agent`` (flow A),
  or, in customer-first mode, first the customer leg into ``callswitch-customer-first`` (flow D). The
  daemon registers ``leg_id`` with the interpreter (``expect_leg``) and uses it as ChannelId and ActionID.
* :class:`Release` - customer-first: nobody accepted, let the waiting visitor go (they hear the goodbye).
* :class:`Hangup` - hang up a leg (losers of a simultaneous ring: cause 26 "answered elsewhere").
* :class:`Finish` - the attempt is over and every leg has ended (or the drain guard gave up on them);
  always the last command.

Customer-first (the first destination's ``mode: customer_first``): the visitor is called first (state
``dialing_customer``); once they answer they hear the connect prompt and wait on hold in a conference named
:attr:`AttemptFlow.conference`, and the agents are rung exactly as below (``dialing_agent`` ...). An agent who
accepts joins the visitor at once (the dialplan does it), so acceptance is the connection (``accepted`` ->
``connected``). The visitor hanging up while waiting ends the attempt (``customer_abandoned``, no retry).

Routing: the destinations of ``plan.chain`` in order (overflow); per destination ``rounds`` rounds; per
round every member once - ``sequential`` in file order, ``round_robin`` / ``longest_idle`` in the order
``member_order(dest)`` returns (called at the start of each round), ``simultaneous`` all members at once.
A member ends its turn when the leg ends, is declined (any reason) or a guard gives up on it. A leg that
ends with congestion / unreachable / failed is re-originated through the destination's next trunk.

Guards (timers): per agent leg ring (Originate timeout + ``ring_margin_s``, then Hangup 19, no answer),
acceptance (``accept_timeout_s`` after answer or a repeat, then Hangup 16, not accepted), customer
(``customer_timeout_s + customer_margin_s`` after acceptance without a connected customer), setup
(``setup_timeout_s`` from start until connected; default: every step running into its ring and acceptance
guards, plus the customer guard and a minute), call (``max_call_s`` once connected) and drain
(``drain_s`` after the outcome is known, for legs that have not reported their end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from callswitch import callback as states
from callswitch.dialer.interpret import (
    AgentAccepted,
    AgentAnswered,
    AgentDeclined,
    AgentRepeat,
    CustomerAnswered,
    CustomerDialing,
    CustomerLegCreated,
    CustomerResult,
    CustomerRinging,
    CustomerWaiting,
    Fact,
    LegAnswered,
    LegEnded,
    LegRinging,
)
from callswitch.routing.model import Destination, Member, RoutePlan, Trunk

__all__ = [
    "OUTCOMES",
    "AttemptFlow",
    "AttemptResult",
    "Command",
    "Finish",
    "Hangup",
    "Originate",
    "RecordLeg",
    "SetState",
    "UpdateLeg",
]

CONNECTED = "connected"
NO_AGENT = "no_agent"
CUSTOMER_BUSY = "customer_busy"
CUSTOMER_NO_ANSWER = "customer_no_answer"
CUSTOMER_UNREACHABLE = "customer_unreachable"
CUSTOMER_ABANDONED = "customer_abandoned"
CANCELLED = "cancelled"
FAILED = "failed"
OUTCOMES = (CONNECTED, NO_AGENT, CUSTOMER_BUSY, CUSTOMER_NO_ANSWER, CUSTOMER_UNREACHABLE, CUSTOMER_ABANDONED,
            CANCELLED, FAILED)

AGENT_CONTEXT = "callswitch-agent"
CUSTOMER_FIRST_CONTEXT = "callswitch-customer-first"

CAUSE_NORMAL = 16
CAUSE_NO_ANSWER = 19
CAUSE_ANSWERED_ELSEWHERE = 26

_STATE_ORDER = (states.DIALING_AGENT, states.AGENT_ANSWERED, states.ACCEPTED, states.DIALING_CUSTOMER,
                states.CONNECTED, states.COMPLETED)
_CUSTOMER_FIRST_ORDER = (states.DIALING_CUSTOMER, states.DIALING_AGENT, states.AGENT_ANSWERED, states.ACCEPTED,
                         states.CONNECTED, states.COMPLETED)
_FAILOVER_DISPOSITIONS = frozenset({"congestion", "unreachable", "failed"})
# the customer's ${DIALSTATUS} or leg disposition -> attempt outcome
_CUSTOMER_OUTCOME = {
    "BUSY": CUSTOMER_BUSY, "busy": CUSTOMER_BUSY,
    "NOANSWER": CUSTOMER_NO_ANSWER, "no_answer": CUSTOMER_NO_ANSWER,
    "CANCEL": CUSTOMER_NO_ANSWER, "cancelled": CUSTOMER_NO_ANSWER,
    "CONGESTION": CUSTOMER_UNREACHABLE, "congestion": CUSTOMER_UNREACHABLE,
    "CHANUNAVAIL": CUSTOMER_UNREACHABLE, "unreachable": CUSTOMER_UNREACHABLE, "failed": CUSTOMER_UNREACHABLE,
}


# ---------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class Originate:
    """Originate one leg: ``Channel=<dial_string> Context=<context> Exten=s Priority=1 Async=true
    Timeout=<timeout_ms> ChannelId=<leg_id> ActionID=<leg_id>``, CallerID ``caller_id``, one ``Variable:``
    header per item of ``variables`` (names already carry the ``__`` prefix). ``member`` is None for the
    customer leg of customer-first; ``joins``: an agent leg whose acceptance joins the waiting visitor."""

    leg_id: str
    destination: str
    member: Member | None
    dial_string: str
    trunk: str | None
    timeout_ms: int
    caller_id: str | None
    variables: dict[str, str]
    context: str = AGENT_CONTEXT
    role: str = "agent"
    joins: bool = False


@dataclass(frozen=True)
class Release:
    """Customer-first: let the visitor waiting in ``conference`` go (AMI ConfbridgeKick; they hear the
    goodbye prompt); if that fails, hang the leg up."""

    leg_id: str
    conference: str


@dataclass(frozen=True)
class Hangup:
    """AMI Hangup of the leg's channel with this Q.850 cause."""

    leg_id: str
    cause: int


@dataclass(frozen=True)
class SetState:
    """The request moved to ``state`` (a state of :mod:`callswitch.callback`) because of ``event``."""

    state: str
    event: str
    detail: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class RecordLeg:
    """Insert the ``call_legs`` row of a new leg (see :meth:`row`)."""

    leg_id: str
    request_id: str
    attempt: int
    role: str  # "agent" | "customer" (column ``leg``)
    originated: bool = False  # the daemon originates this leg (written with its reservation)
    destination: str | None
    member: str | None  # Member.dial of agent legs
    number_dialled: str
    trunk: str | None
    dial_string: str
    originated_at: datetime
    channel: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None

    def row(self) -> dict[str, Any]:
        """Column -> value for ``call_legs`` (``dial_string`` is not a column)."""
        return {"request_id": self.request_id, "attempt": self.attempt, "leg": self.role,
                "destination": self.destination, "member": self.member, "number_dialled": self.number_dialled,
                "trunk": self.trunk, "channel": self.channel, "uniqueid": self.uniqueid, "linkedid": self.linkedid,
                "originated_at": self.originated_at}


@dataclass(frozen=True, kw_only=True)
class UpdateLeg:
    """Columns of the leg's ``call_legs`` row that changed; ``None`` = unchanged (see :meth:`changes`)."""

    leg_id: str
    channel: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    disposition: str | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    sip_status: int | None = None
    billable_seconds: int | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "leg_id" and v is not None}


@dataclass(frozen=True)
class AttemptResult:
    """How the attempt ended. ``retry``: the visitor was not reached for a reason worth another
    attempt (the worker decides when, from its policy). ``talk_seconds``: customer answer to the first
    hangup, for connected calls."""

    outcome: str  # one of OUTCOMES
    retry: bool
    detail: str
    connected: bool
    talk_seconds: int | None


@dataclass(frozen=True)
class Finish:
    result: AttemptResult


Command = Originate | Hangup | Release | SetState | RecordLeg | UpdateLeg | Finish


# ---------------------------------------------------------------------------------------- state
@dataclass
class _Leg:
    leg_id: str
    role: str
    destination: Destination
    member: Member | None
    trunk_index: int
    step: int
    originated_at: datetime
    ring_deadline: datetime | None = None
    accept_deadline: datetime | None = None
    answered_at: datetime | None = None
    accepted_at: datetime | None = None
    out: bool = False  # no longer counts for routing
    ended: bool = False
    forced: str | None = None  # disposition decided by the flow (it hung the leg up)
    hangup_sent: bool = False
    late_accept: bool = False
    dial_status: str | None = None  # customer leg: the dialplan's ${DIALSTATUS}
    ids: tuple[str | None, str | None, str | None] = (None, None, None)
    flags: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        who = (self.member.name or self.member.dial) if self.member else self.role
        return f"{self.destination.name}/{who}"


class AttemptFlow:
    """Per-attempt state machine; see the module docstring."""

    def __init__(
        self,
        request_id: str,
        attempt: int,
        plan: RoutePlan,
        customer_e164: str,
        *,
        now: datetime,
        make_leg_id: Callable[[], str],
        member_order: Callable[[Destination], Sequence[Member]] | None = None,
        customer_timeout_s: int = 30,
        prompts: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
        accept_timeout_s: int = 60,
        ring_margin_s: int = 10,
        customer_margin_s: int = 30,
        setup_timeout_s: int | None = None,
        max_call_s: int = 4 * 3600,
        drain_s: int = 15,
    ) -> None:
        self.request_id = request_id
        self.attempt = attempt
        self.plan = plan
        self.customer_e164 = customer_e164
        self.created_at = now
        self._make_leg_id = make_leg_id
        self._member_order = member_order
        self.customer_timeout_s = customer_timeout_s
        self.prompts = tuple(prompts)
        self.extra_variables = dict(variables or {})  # e.g. __CS_SAY_DIGITS, from the daemon's policy
        self.accept_timeout = timedelta(seconds=accept_timeout_s)
        self.ring_margin = timedelta(seconds=ring_margin_s)
        self.customer_guard = timedelta(seconds=customer_timeout_s + customer_margin_s)
        if setup_timeout_s is None:
            setup_timeout_s = self._default_setup_timeout(accept_timeout_s, ring_margin_s, customer_margin_s)
        self.setup_timeout = timedelta(seconds=setup_timeout_s)
        self.max_call = timedelta(seconds=max_call_s)
        self.drain = timedelta(seconds=drain_s)
        if plan.chain and self._customer_trunk(plan.chain[0]) is None:
            raise ValueError("no trunk in the plan's destinations to reach the customer")
        self.customer_first = bool(plan.chain) and plan.chain[0].mode == "customer_first"
        self.conference = f"callswitch-{request_id}-{attempt}"
        self._order = _CUSTOMER_FIRST_ORDER if self.customer_first else _STATE_ORDER

        self.state: str = states.QUEUED
        self.done = False
        self.result: AttemptResult | None = None
        self._started_at: datetime | None = None
        self._steps: Iterator[tuple[Destination, tuple[Member, ...]]] = self._iter_steps()
        self._step = 0
        self._legs: dict[str, _Leg] = {}
        self._winner: str | None = None
        self._customer: str | None = None
        self._connected_at: datetime | None = None
        self._talk_end: datetime | None = None
        self._decided: AttemptResult | None = None
        self._decided_at: datetime | None = None
        self._trail: list[str] = []

    # -- public -----------------------------------------------------------------------------------
    @property
    def winner(self) -> str | None:
        """Leg id of the agent leg that accepted, if any."""
        return self._winner

    @property
    def next_deadline(self) -> datetime | None:
        if self.done or self._started_at is None:
            return None
        times = [t for t, _kind, _leg in self._deadlines()]
        return min(times) if times else None

    def start(self, now: datetime) -> list[Command]:
        if self._started_at is not None:
            return []
        self._started_at = now
        if self.customer_first:
            return self._originate_customer(now) + self._maybe_finish()
        return self._next_step(now) + self._maybe_finish()

    def on_fact(self, fact: Fact, now: datetime) -> list[Command]:
        if self.done or self._started_at is None:
            return []
        if fact.request_id != self.request_id or fact.attempt != self.attempt:
            return []
        if self.customer_first and fact.role != "agent":
            cust = self._legs.get(fact.leg_id)
            if cust is None or cust.role != "customer":
                return []
            return self._first_customer_fact(cust, fact, now) + self._maybe_finish()
        if fact.role == "agent":
            leg = self._legs.get(fact.leg_id)
            if leg is None or leg.role != "agent":
                return []
            cmds = self._agent_fact(leg, fact, now)
        else:
            agent = self._legs.get(fact.agent_leg_id)
            if agent is None or agent.role != "agent":
                return []
            cmds = self._customer_fact(agent, fact, now)
        return cmds + self._maybe_finish()

    def on_timer(self, now: datetime) -> list[Command]:
        cmds: list[Command] = []
        while not self.done and self._started_at is not None:
            due = [(t, kind, leg) for t, kind, leg in self._deadlines() if t <= now]
            if not due:
                break
            _t, kind, leg_id = min(due, key=lambda d: d[0])
            cmds += self._fire(kind, leg_id, now)
            cmds += self._maybe_finish()
        return cmds

    def cancel(self, now: datetime, detail: str = "cancelled") -> list[Command]:
        """Stop the attempt (the visitor cancelled, shutdown): hang up every live leg."""
        if self.done or self._decided is not None:
            return []
        cmds = self._hangup_all(CAUSE_NORMAL, "cancelled")
        cmds += self._decide(now, CANCELLED, retry=False, detail=detail)
        return cmds + self._maybe_finish()

    def _default_setup_timeout(self, accept_s: int, margin_s: int, customer_margin_s: int) -> int:
        """Longest the dialing can take when every guard runs to its end, plus a minute."""
        total = 60 + self.customer_timeout_s + customer_margin_s
        for dest in self.plan.chain:
            rings = [m.ring_timeout for m in dest.members] or [0]
            per_round = max(rings) + margin_s + accept_s if dest.strategy == "simultaneous" else (
                sum(rings) + len(rings) * (margin_s + accept_s))
            total += max(1, dest.rounds) * per_round
        return total

    # -- routing ----------------------------------------------------------------------------------
    def _iter_steps(self) -> Iterator[tuple[Destination, tuple[Member, ...]]]:
        for dest in self.plan.chain:
            for _round in range(max(1, dest.rounds)):
                if dest.strategy in ("round_robin", "longest_idle") and self._member_order is not None:
                    order = tuple(self._member_order(dest))
                else:
                    order = dest.members
                if dest.strategy == "simultaneous":
                    if order:
                        yield dest, order
                else:
                    for member in order:
                        yield dest, (member,)

    def _next_step(self, now: datetime) -> list[Command]:
        cmds: list[Command] = []
        while True:
            step = next(self._steps, None)
            if step is None:
                tried = "; ".join(self._trail) or "nobody to ring"
                cmds += self._release_customer()
                return cmds + self._decide(now, NO_AGENT, retry=True, detail=f"no agent accepted: {tried}")
            dest, members = step
            self._step += 1
            for member in members:
                cmds += self._originate(now, dest, member, 0)
            if self._in_play():
                return cmds

    def _in_play(self) -> list[_Leg]:
        return [lg for lg in self._legs.values() if lg.role == "agent" and lg.step == self._step and not lg.out]

    def _customer_trunk(self, dest: Destination) -> Trunk | None:
        if dest.trunks:
            return dest.trunks[0]
        return next((d.trunks[0] for d in self.plan.chain if d.trunks), None)

    def _originate(self, now: datetime, dest: Destination, member: Member, trunk_index: int) -> list[Command]:
        trunk: Trunk | None = None
        if member.is_endpoint:
            dial = member.dial
        elif trunk_index < len(dest.trunks):
            trunk = dest.trunks[trunk_index]
            dial = trunk.dial_string(member.dial)
        else:
            self._trail.append(f"{dest.name}/{member.name or member.dial}: no trunk")
            return []
        cust_trunk = self._customer_trunk(dest)
        assert cust_trunk is not None  # checked in __init__
        variables = {
            **self.extra_variables,
            "__CS_REQUEST_ID": self.request_id,
            "__CS_ATTEMPT": str(self.attempt),
            "__CS_CUSTOMER": self.customer_e164.lstrip("+"),
        }
        if self.customer_first:
            variables["__CS_JOIN"] = self.conference
        else:
            variables["__CS_CUSTOMER_DIAL"] = cust_trunk.dial_string(self.customer_e164)
            variables["__CS_CUST_TIMEOUT"] = str(self.customer_timeout_s)
            cid = self.plan.customer_caller_id(dest)
            if cid:
                variables["__CS_CUSTOMER_CALLERID_NUM"] = cid
            if dest.label:  # AMI splits Variable headers at commas
                variables["__CS_CUSTOMER_CALLERID_NAME"] = dest.label.replace(",", " ")
        prompts = [*self.prompts, *([dest.announce.agent] if dest.announce.agent else [])]
        if prompts:
            variables["__CS_PROMPTS"] = "&".join(prompts)
        leg_id = self._make_leg_id()
        leg = _Leg(leg_id, "agent", dest, member, trunk_index, self._step, now,
                   ring_deadline=now + timedelta(seconds=member.ring_timeout) + self.ring_margin)
        self._legs[leg_id] = leg
        cmds = self._advance(states.DIALING_AGENT, "originate",
                             {"destination": dest.name, "leg_id": leg_id, "member": member.dial})
        cmds.append(RecordLeg(leg_id=leg_id, request_id=self.request_id, attempt=self.attempt, role="agent",
                              destination=dest.name, member=member.dial, number_dialled=member.dial,
                              trunk=trunk.name if trunk else None, dial_string=dial, originated_at=now,
                              originated=True))
        cmds.append(Originate(leg_id=leg_id, destination=dest.name, member=member, dial_string=dial,
                              trunk=trunk.name if trunk else None, timeout_ms=member.ring_timeout * 1000,
                              caller_id=self.plan.agent_caller_id(dest) or None, variables=variables,
                              joins=self.customer_first))
        return cmds

    # -- customer-first -----------------------------------------------------------------------------
    def _originate_customer(self, now: datetime) -> list[Command]:
        """Customer-first: call the visitor into ``callswitch-customer-first``; agents follow on answer."""
        dest = self.plan.chain[0]
        trunk = self._customer_trunk(dest)
        assert trunk is not None  # checked in __init__
        leg_id = self._make_leg_id()
        ring = timedelta(seconds=self.customer_timeout_s) + self.ring_margin
        leg = _Leg(leg_id, "customer", dest, None, 0, 0, now, ring_deadline=now + ring)
        self._legs[leg_id] = leg
        self._customer = leg_id
        hold = max(30, round(self.setup_timeout.total_seconds()))
        variables = {"__CS_REQUEST_ID": self.request_id, "__CS_ATTEMPT": str(self.attempt),
                     "__CS_JOIN": self.conference, "__CS_HOLD_TIMEOUT": str(hold)}
        if dest.announce.customer:
            variables["__CS_CONNECT_PROMPT"] = dest.announce.customer
        number = self.plan.customer_caller_id(dest)
        caller_id = None
        if number:  # AMI splits Variable headers at commas, and the name is quoted
            name = (dest.label or "").replace('"', "").replace(",", " ")
            caller_id = f'"{name}" <{number}>' if name else number
        dial = trunk.dial_string(self.customer_e164)
        cmds = self._advance(states.DIALING_CUSTOMER, "originate", {"destination": dest.name, "leg_id": leg_id})
        cmds.append(RecordLeg(leg_id=leg_id, request_id=self.request_id, attempt=self.attempt, role="customer",
                              destination=dest.name, member=None, number_dialled=self.customer_e164,
                              trunk=trunk.name, dial_string=dial, originated_at=now, originated=True))
        cmds.append(Originate(leg_id=leg_id, destination=dest.name, member=None, dial_string=dial,
                              trunk=trunk.name, timeout_ms=self.customer_timeout_s * 1000, caller_id=caller_id,
                              variables=variables, context=CUSTOMER_FIRST_CONTEXT, role="customer"))
        return cmds

    def _release_customer(self) -> list[Command]:
        """Customer-first: nobody will take the call; let a visitor who is waiting go (goodbye prompt)."""
        leg = self._legs.get(self._customer or "")
        if not self.customer_first or leg is None or leg.ended or leg.hangup_sent:
            return []
        leg.hangup_sent = True
        return [Release(leg.leg_id, self.conference)]

    def _first_customer_fact(self, leg: _Leg, fact: Fact, now: datetime) -> list[Command]:
        """A fact about the customer leg of customer-first."""
        if isinstance(fact, LegEnded):
            return self._first_customer_ended(leg, fact, now)
        if leg.ended:
            return []
        if isinstance(fact, (LegRinging, CustomerRinging)):
            if "ringing" in leg.flags:
                return []
            leg.flags.add("ringing")
            return self._update(leg, fact, ringing_at=fact.at)
        if isinstance(fact, (LegAnswered, CustomerAnswered, CustomerWaiting)):
            if leg.answered_at is not None:
                return []
            leg.answered_at = fact.at
            leg.ring_deadline = None
            cmds = self._update(leg, fact, answered_at=fact.at)
            if self._decided is not None:
                return cmds
            self._trail.append("customer answered")
            return cmds + self._next_step(now)  # ring the agents while the visitor hears the connect prompt
        if isinstance(fact, (CustomerLegCreated, CustomerDialing)):
            return self._update(leg, fact)
        return []  # CustomerReleased, OriginateFailed, LegHungUp, LegCdr: see LegEnded

    def _first_customer_ended(self, leg: _Leg, fact: LegEnded, now: datetime) -> list[Command]:
        if leg.ended:
            return []
        leg.ended = True
        billable = 0
        if leg.answered_at is not None:
            billable = max(0, round((fact.at - leg.answered_at).total_seconds()))
        disposition = leg.forced or fact.disposition
        if leg.answered_at is not None and disposition not in ("answered",):
            disposition = "answered"
        cmds = self._update(leg, fact, ended_at=fact.at, disposition=disposition, hangup_cause=fact.cause,
                            hangup_cause_text=fact.cause_text, sip_status=fact.sip_status, billable_seconds=billable)
        if self._connected_at is not None:
            if self._talk_end is None:
                self._talk_end = fact.at
            winner = self._legs.get(self._winner or "")
            if winner is not None:
                cmds += self._hangup(winner, CAUSE_NORMAL, None)
            return cmds + self._decide(now, CONNECTED, retry=False, detail=self._connected_detail())
        if self._decided is not None:
            return cmds
        if leg.answered_at is not None or fact.answered:
            cmds += self._hangup_all(CAUSE_NORMAL, "cancelled")
            return cmds + self._decide(now, CUSTOMER_ABANDONED, retry=False,
                                       detail="the visitor hung up while waiting for an agent")
        cmds += self._hangup_all(CAUSE_NORMAL, "cancelled")
        return cmds + self._customer_failed(now, fact.disposition, "customer leg ended")

    def _leg_out(self, leg: _Leg, now: datetime, why: str) -> list[Command]:
        """``leg`` no longer counts for routing; ring the next member/round/destination if it was the last."""
        if leg.out:
            return []
        leg.out = True
        self._trail.append(f"{leg.label}: {why}")
        if self._winner is not None or self._decided is not None or leg.step != self._step:
            return []
        if self._in_play():
            return []
        return self._next_step(now)

    # -- state ------------------------------------------------------------------------------------
    def _advance(self, target: str, event: str, detail: dict[str, Any]) -> list[Command]:
        order = self._order
        cur = order.index(self.state) if self.state in order else -1
        tgt = order.index(target)
        if tgt <= cur:
            return []
        self.state = target
        return [SetState(s, event, dict(detail)) for s in order[cur + 1 : tgt + 1]]

    def _decide(self, now: datetime, outcome: str, *, retry: bool, detail: str) -> list[Command]:
        if self._decided is not None:
            return []
        connected = self._connected_at is not None
        talk = None
        if connected and self._connected_at is not None:
            end = self._talk_end or now
            talk = max(0, round((end - self._connected_at).total_seconds()))
        self._decided = AttemptResult(outcome, retry, detail, connected, talk)
        self._decided_at = now
        cmds: list[Command] = []
        if outcome == CONNECTED:
            cmds += self._advance(states.COMPLETED, "hangup", {"talk_seconds": talk})
        return cmds

    def _maybe_finish(self) -> list[Command]:
        if self.done or self._decided is None:
            return []
        if any(not lg.ended for lg in self._legs.values()):
            return []
        self.done = True
        self.result = self._decided
        return [Finish(self._decided)]

    def _hangup(self, leg: _Leg, cause: int, forced: str | None) -> list[Command]:
        if leg.ended or leg.hangup_sent:
            return []
        leg.hangup_sent = True
        if forced is not None and leg.forced is None:
            leg.forced = forced
        return [Hangup(leg.leg_id, cause)]

    def _hangup_all(self, cause: int, unanswered_disposition: str) -> list[Command]:
        cmds: list[Command] = []
        for leg in self._legs.values():
            forced = None if leg.answered_at is not None else unanswered_disposition
            cmds += self._hangup(leg, cause, forced)
            leg.out = True
        return cmds

    # -- agent facts --------------------------------------------------------------------------------
    def _ids(self, leg: _Leg, fact: Fact) -> dict[str, Any]:
        if fact.leg_id != leg.leg_id:
            return {}
        ids = (fact.channel or leg.ids[0], fact.uniqueid or leg.ids[1], fact.linkedid or leg.ids[2])
        if ids == leg.ids:
            return {}
        leg.ids = ids
        return {"channel": ids[0], "uniqueid": ids[1], "linkedid": ids[2]}

    def _update(self, leg: _Leg, fact: Fact, **fields: Any) -> list[Command]:
        fields = {**self._ids(leg, fact), **fields}
        return [UpdateLeg(leg_id=leg.leg_id, **fields)] if fields else []

    def _agent_fact(self, leg: _Leg, fact: Fact, now: datetime) -> list[Command]:
        if isinstance(fact, LegEnded):
            return self._agent_ended(leg, fact, now)
        if leg.ended:
            return []
        if isinstance(fact, AgentAccepted):
            return self._accepted(leg, fact, now)
        if isinstance(fact, LegRinging):
            if "ringing" in leg.flags:
                return []
            leg.flags.add("ringing")
            return self._update(leg, fact, ringing_at=fact.at)
        if isinstance(fact, (LegAnswered, AgentAnswered)):
            if leg.answered_at is not None:
                return []
            leg.answered_at = fact.at
            cmds = self._update(leg, fact, answered_at=fact.at)
            if leg.out or self._decided is not None or (self._winner is not None and self._winner != leg.leg_id):
                return cmds
            leg.accept_deadline = fact.at + self.accept_timeout
            return cmds + self._advance(states.AGENT_ANSWERED, "agent_answered", self._leg_detail(leg))
        if isinstance(fact, AgentRepeat):
            if leg.accept_deadline is not None and not leg.out:
                leg.accept_deadline = max(leg.accept_deadline, fact.at + self.accept_timeout)
            return []
        if isinstance(fact, AgentDeclined):
            if "declined" in leg.flags or self._winner == leg.leg_id:
                return []
            leg.flags.add("declined")
            leg.accept_deadline = None
            if fact.reason == "TOO_LATE" and leg.forced is None:
                leg.forced = "answered_elsewhere"
            return self._leg_out(leg, now, f"declined ({fact.reason})")
        return []  # LegHungUp, OriginateFailed, LegCdr: LegEnded carries what the row needs

    def _leg_detail(self, leg: _Leg) -> dict[str, Any]:
        return {"leg_id": leg.leg_id, "destination": leg.destination.name,
                "member": leg.member.dial if leg.member else None}

    def _accepted(self, leg: _Leg, fact: Fact, now: datetime) -> list[Command]:
        if self._winner == leg.leg_id:
            return []
        if self._winner is not None or leg.out or self._decided is not None:
            # too late (another agent won, we gave up on this leg, or the attempt is over): never a winner
            if leg.late_accept:
                return []
            leg.late_accept = True
            loser = self._winner is not None
            cause = CAUSE_ANSWERED_ELSEWHERE if loser else CAUSE_NORMAL
            if loser:
                leg.forced = "answered_elsewhere"
            leg.hangup_sent = True
            self._trail.append(f"{leg.label}: accepted too late")
            return [Hangup(leg.leg_id, cause)]
        self._winner = leg.leg_id
        leg.accepted_at = fact.at
        leg.accept_deadline = None
        leg.ring_deadline = None
        cmds: list[Command] = []
        if leg.answered_at is None:
            leg.answered_at = fact.at
            cmds += self._update(leg, fact, answered_at=fact.at)
        cmds += self._update(leg, fact, accepted_at=fact.at)
        cmds += self._advance(states.ACCEPTED, "agent_accepted", self._leg_detail(leg))
        for other in self._legs.values():
            if other is not leg and other.role == "agent" and not other.out and not other.ended:
                cmds += self._hangup(other, CAUSE_ANSWERED_ELSEWHERE, "answered_elsewhere")
                other.out = True
        cust = self._legs.get(self._customer or "")
        if self.customer_first and cust is not None and cust.answered_at is not None and not cust.ended:
            # the dialplan joins the accepting agent to the waiting visitor at once
            self._connected_at = fact.at
            cmds += self._advance(states.CONNECTED, "agent_joined",
                                  {**self._leg_detail(leg), "customer_leg_id": cust.leg_id})
        return cmds

    def _agent_ended(self, leg: _Leg, fact: LegEnded, now: datetime) -> list[Command]:
        if leg.ended:
            return []
        leg.ended = True
        disposition = leg.forced or fact.disposition
        if leg.leg_id == self._winner:
            disposition = "accepted"
        elif disposition == "failed" and leg.answered_at is not None:
            disposition = "answered"  # its end was lost (e.g. across an Asterisk restart), not its answer
        billable = 0
        if leg.answered_at is not None:
            billable = max(0, round((fact.at - leg.answered_at).total_seconds()))
        cmds = self._update(leg, fact, ended_at=fact.at, disposition=disposition, hangup_cause=fact.cause,
                            hangup_cause_text=fact.cause_text, sip_status=fact.sip_status, billable_seconds=billable)
        if leg.leg_id == self._winner:
            if self._talk_end is None and self._connected_at is not None:
                self._talk_end = fact.at
            if self._connected_at is not None:
                cmds += self._decide(now, CONNECTED, retry=False, detail=self._connected_detail())
            else:
                cmds += self._customer_failed(now, self._customer_status() or "CANCEL",
                                              "the agent hung up before the customer answered")
            return cmds
        if leg.out:
            return cmds
        if (disposition in _FAILOVER_DISPOSITIONS and leg.member is not None and not leg.member.is_endpoint
                and leg.trunk_index + 1 < len(leg.destination.trunks)
                and self._winner is None and self._decided is None):
            leg.out = True
            self._trail.append(f"{leg.label}: {disposition} via {leg.destination.trunks[leg.trunk_index].name}")
            return cmds + self._originate(now, leg.destination, leg.member, leg.trunk_index + 1)
        return cmds + self._leg_out(leg, now, disposition)

    # -- customer facts -----------------------------------------------------------------------------
    def _customer_status(self) -> str | None:
        leg = self._legs.get(self._customer or "")
        return leg.dial_status if leg is not None else None

    def _connected_detail(self) -> str:
        agent = self._legs[self._winner] if self._winner else None
        who = agent.label if agent else "?"
        return f"connected {who} with the customer"

    def _customer_failed(self, now: datetime, status: str, why: str) -> list[Command]:
        outcome = _CUSTOMER_OUTCOME.get(status, CUSTOMER_NO_ANSWER)
        return self._decide(now, outcome, retry=True, detail=f"customer not reached ({status}): {why}")

    def _customer_fact(self, agent: _Leg, fact: Fact, now: datetime) -> list[Command]:
        cmds: list[Command] = []
        if self._winner is None:
            if agent.out or agent.ended or self._decided is not None:
                return self._stray_customer(agent, fact)
            # the customer is only dialled after an acceptance: the Accepted event was lost or is late
            cmds += self._accepted(agent, fact, now)
        elif self._winner != agent.leg_id:
            return self._stray_customer(agent, fact)
        leg = self._legs.get(fact.leg_id)
        if leg is None:
            leg = _Leg(fact.leg_id, "customer", agent.destination, None, 0, agent.step, fact.at)
            self._legs[fact.leg_id] = leg
            self._customer = fact.leg_id
            trunk = self._customer_trunk(agent.destination)
            assert trunk is not None
            leg.ids = (fact.channel, fact.uniqueid, fact.linkedid)
            cmds.append(RecordLeg(leg_id=leg.leg_id, request_id=self.request_id, attempt=self.attempt,
                                  role="customer", destination=agent.destination.name, member=None,
                                  number_dialled=self.customer_e164, trunk=trunk.name,
                                  dial_string=trunk.dial_string(self.customer_e164), originated_at=fact.at,
                                  channel=fact.channel, uniqueid=fact.uniqueid, linkedid=fact.linkedid))
        if leg.ended:
            return cmds
        detail = {"leg_id": leg.leg_id, "agent_leg_id": agent.leg_id}
        if isinstance(fact, (CustomerDialing, CustomerLegCreated)):
            cmds += self._update(leg, fact)
            cmds += self._advance(states.DIALING_CUSTOMER, "customer_dialing", detail)
        elif isinstance(fact, CustomerRinging):
            if "ringing" not in leg.flags:
                leg.flags.add("ringing")
                cmds += self._update(leg, fact, ringing_at=fact.at)
            cmds += self._advance(states.DIALING_CUSTOMER, "customer_ringing", detail)
        elif isinstance(fact, CustomerAnswered):
            cmds += self._customer_answered(leg, fact, detail)
        elif isinstance(fact, CustomerResult):
            if fact.dial_status == "ANSWER":
                cmds += self._customer_answered(leg, fact, detail)
                if self._talk_end is None:
                    self._talk_end = fact.at
                cmds += self._decide(now, CONNECTED, retry=False, detail=self._connected_detail())
            else:
                leg.dial_status = leg.dial_status or fact.dial_status
                cmds += self._customer_failed(now, fact.dial_status, "dial result")
        elif isinstance(fact, LegEnded):
            leg.ended = True
            billable = 0
            if leg.answered_at is not None:
                billable = max(0, round((fact.at - leg.answered_at).total_seconds()))
            # (an answered leg whose end was lost, e.g. across an Asterisk restart, stays answered)
            disposition = "answered" if leg.answered_at is not None else fact.disposition
            cmds += self._update(leg, fact, ended_at=fact.at, disposition=disposition, hangup_cause=fact.cause,
                                 hangup_cause_text=fact.cause_text, sip_status=fact.sip_status,
                                 billable_seconds=billable)
            if self._connected_at is not None or fact.answered:
                if self._connected_at is None:
                    cmds += self._customer_answered(leg, fact, detail)
                if self._talk_end is None:
                    self._talk_end = fact.at
                cmds += self._decide(now, CONNECTED, retry=False, detail=self._connected_detail())
            else:
                cmds += self._customer_failed(now, fact.disposition, "customer leg ended")
        return cmds

    def _customer_answered(self, leg: _Leg, fact: Fact, detail: dict[str, Any]) -> list[Command]:
        if leg.answered_at is not None:
            return []
        leg.answered_at = fact.at
        self._connected_at = fact.at
        cmds = self._update(leg, fact, answered_at=fact.at)
        return cmds + self._advance(states.CONNECTED, "customer_answered", detail)

    def _stray_customer(self, agent: _Leg, fact: Fact) -> list[Command]:
        """A customer channel dialled from a leg that is not (or no longer) the winner: hang both up."""
        if "stray" in agent.flags:
            return []
        agent.flags.add("stray")
        cmds: list[Command] = [Hangup(fact.leg_id, CAUSE_NORMAL)]
        cmds += self._hangup(agent, CAUSE_ANSWERED_ELSEWHERE if self._winner else CAUSE_NORMAL, None)
        return cmds

    # -- timers ---------------------------------------------------------------------------------------
    def _deadlines(self) -> list[tuple[datetime, str, str | None]]:
        out: list[tuple[datetime, str, str | None]] = []
        if self._decided is not None:
            assert self._decided_at is not None
            out.append((self._decided_at + self.drain, "drain", None))
            return out
        for leg in self._legs.values():
            if leg.role == "customer" and self.customer_first and not leg.ended and leg.answered_at is None \
                    and leg.ring_deadline is not None and not leg.hangup_sent:
                out.append((leg.ring_deadline, "customer_ring", leg.leg_id))
            if leg.role != "agent" or leg.out or leg.ended or leg.leg_id == self._winner:
                continue
            if leg.answered_at is None and leg.ring_deadline is not None:
                out.append((leg.ring_deadline, "ring", leg.leg_id))
            elif leg.answered_at is not None and leg.accept_deadline is not None:
                out.append((leg.accept_deadline, "accept", leg.leg_id))
        if self._connected_at is not None:
            out.append((self._connected_at + self.max_call, "call", None))
        else:
            assert self._started_at is not None
            out.append((self._started_at + self.setup_timeout, "setup", None))
            if self._winner is not None:
                accepted_at = self._legs[self._winner].accepted_at
                assert accepted_at is not None
                out.append((accepted_at + self.customer_guard, "customer", None))
        return out

    def _fire(self, kind: str, leg_id: str | None, now: datetime) -> list[Command]:
        if kind == "ring" and leg_id is not None:
            leg = self._legs[leg_id]
            cmds = self._hangup(leg, CAUSE_NO_ANSWER, "no_answer")
            return cmds + self._leg_out(leg, now, "no answer (ring guard)")
        if kind == "accept" and leg_id is not None:
            leg = self._legs[leg_id]
            leg.accept_deadline = None
            cmds = self._hangup(leg, CAUSE_NORMAL, "answered")
            return cmds + self._leg_out(leg, now, "no key (acceptance guard)")
        if kind == "customer_ring" and leg_id is not None:
            cmds = self._hangup(self._legs[leg_id], CAUSE_NO_ANSWER, "no_answer")
            return cmds + self._customer_failed(now, "NOANSWER", "the visitor did not answer (ring guard)")
        if kind == "customer":
            cmds = self._hangup_all(CAUSE_NORMAL, "no_answer")
            return cmds + self._customer_failed(now, "NOANSWER", "customer not connected in time (guard)")
        if kind == "setup":
            cmds = self._hangup_all(CAUSE_NORMAL, "cancelled")
            return cmds + self._decide(now, FAILED, retry=True, detail=f"attempt guard expired in {self.state}")
        if kind == "call":
            self._talk_end = now
            cmds = self._hangup_all(CAUSE_NORMAL, "cancelled")
            return cmds + self._decide(now, CONNECTED, retry=False, detail=self._connected_detail() + " (max call)")
        # drain: legs that never reported their end
        cmds = []
        for leg in self._legs.values():
            if leg.ended:
                continue
            cmds += self._hangup(leg, CAUSE_NORMAL, None)
            leg.ended = True
            if leg.leg_id == self._winner:
                disposition = "accepted"
            elif leg.forced is not None:
                disposition = leg.forced
            else:
                disposition = "answered" if leg.answered_at is not None else "cancelled"
            cmds.append(UpdateLeg(leg_id=leg.leg_id, ended_at=now, disposition=disposition))
        return cmds

