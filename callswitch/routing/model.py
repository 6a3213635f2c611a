"""What routing produces: trunks, members, destinations and the immutable :class:`RoutePlan`.

All objects are frozen. Compiled destinations are shared between plans, so a plan costs a few
allocations and calls in progress keep their plan when the rules are reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callswitch.routing.schedule import Schedule

STRATEGIES = ("sequential", "simultaneous", "round_robin", "longest_idle")
MODES = ("agent_first", "customer_first")
WHEN_CLOSED = ("overflow", "wait")

DIAL = "dial"  # start dialing at start_at (== the routing time)
DEFER = "defer"  # route again at start_at
REJECT = "reject"  # do not call; tell the visitor reject_message


@dataclass(frozen=True)
class Trunk:
    """One of the company's own SIP/PSTN trunks."""

    name: str
    dial: str  # Asterisk dial string template: {number} (E.164, "+4930...") or {digits} ("4930...")
    caller_id: str | None = None  # E.164 presented to the called party
    max_channels: int | None = None
    max_cps: float | None = None  # new calls per second
    failover: tuple[str, ...] = ()  # trunks to try next, in order

    def dial_string(self, number: str) -> str:
        return self.dial.replace("{number}", number).replace("{digits}", number.lstrip("+"))


@dataclass(frozen=True)
class Member:
    """Someone a destination rings: an E.164 number (via a trunk) or an Asterisk endpoint."""

    dial: str  # "+4930123456" or "PJSIP/201"
    ring_timeout: int  # seconds
    name: str | None = None

    @property
    def is_endpoint(self) -> bool:
        return not self.dial.startswith("+")


@dataclass(frozen=True)
class Announcements:
    agent: str | None = None  # prompt played to the agent before connecting (whisper)
    customer: str | None = None  # prompt played to the customer when they answer


@dataclass(frozen=True, eq=False)
class Destination:
    """A store, team or rep, compiled: everything the dialer needs to ring it."""

    name: str
    members: tuple[Member, ...]
    strategy: str
    rounds: int
    trunks: tuple[Trunk, ...]  # the destination's trunk first, then its failover order
    mode: str = "agent_first"
    schedule: Schedule | None = None
    when_closed: str = "overflow"
    agent_caller_id: str | None = None  # None: show the customer's number to the agent
    customer_caller_id: str | None = None  # None: the trunk's caller ID
    announce: Announcements = Announcements()
    notify_email: str | None = None
    overflow: str | None = None  # name of the next destination
    label: str | None = None  # human name, e.g. "Store Berlin-Mitte"

    def is_open(self, at: datetime) -> bool:
        return self.schedule is None or self.schedule.is_open(at)

    def next_open(self, at: datetime) -> datetime | None:
        return at if self.schedule is None else self.schedule.next_open(at)

    def describe(self) -> str:
        members = ", ".join(m.dial for m in self.members)
        return (
            f"{self.name}: {self.strategy} [{members}] x{self.rounds}, {self.mode}, "
            f"trunks {' > '.join(t.name for t in self.trunks) or '-'}"
        )


@dataclass(frozen=True)
class RoutePlan:
    """The routing decision for one request at one moment. Immutable.

    ``action`` is :data:`DIAL` (start now), :data:`DEFER` (store it and route again at
    ``start_at``) or :data:`REJECT` (``reject_message`` is for the visitor). ``chain`` is the
    destination and its overflow chain, in the order to try them.
    """

    action: str
    rule: str  # which rule decided, e.g. "rules[3] (enterprise)" or "default"
    chain: tuple[Destination, ...] = ()
    start_at: datetime | None = None
    reject_message: str | None = None
    customer_number: str = ""
    trace: tuple[str, ...] = ()

    @property
    def destination(self) -> Destination | None:
        return self.chain[0] if self.chain else None

    @property
    def rejected(self) -> bool:
        return self.action == REJECT

    @property
    def deferred(self) -> bool:
        return self.action == DEFER

    def agent_caller_id(self, step: Destination) -> str:
        """Caller ID shown on the agent's phone when ``step`` is rung."""
        return step.agent_caller_id or self.customer_number

    def customer_caller_id(self, step: Destination) -> str | None:
        """Caller ID shown to the customer when called on behalf of ``step``."""
        if step.customer_caller_id:
            return step.customer_caller_id
        for trunk in step.trunks:
            if trunk.caller_id:
                return trunk.caller_id
        return None

    def summary(self) -> str:
        if self.action == REJECT:
            return f"reject ({self.rule}): {self.reject_message}"
        names = " -> ".join(d.name for d in self.chain)
        when = self.start_at.isoformat() if self.start_at else "?"
        verb = "dial" if self.action == DIAL else "defer until"
        return f"{verb} {when}: {names} ({self.rule})"
