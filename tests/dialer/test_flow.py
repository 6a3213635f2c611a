"""AttemptFlow: routing order, states, commands, guards, idempotence; and flow + interpreter end to end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callswitch.dialer.flow import (
    AttemptFlow,
    AttemptResult,
    Command,
    Finish,
    Hangup,
    Originate,
    RecordLeg,
    SetState,
    UpdateLeg,
)
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
    Fact,
    Interpreter,
    LegAnswered,
    LegEnded,
    LegHungUp,
    LegRinging,
    OriginateFailed,
)
from callswitch.routing.model import Announcements, Destination, Member, RoutePlan, Trunk
from tests.dialer.test_interpret import Replayer

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CUSTOMER = "+4917012345678"
TRUNK_A = Trunk("carrier-a", "PJSIP/{number}@carrier-a", caller_id="+4930555000")
TRUNK_B = Trunk("carrier-b", "PJSIP/{number}@carrier-b", caller_id="+4930555999")


def mem(n: int, ring: int = 20) -> Member:
    return Member(f"+4930100{n}", ring, name=f"m{n}")


def dest(name: str, members: Sequence[Member], strategy: str = "sequential", rounds: int = 1,
         trunks: tuple[Trunk, ...] = (TRUNK_A,), **kw: Any) -> Destination:
    return Destination(name=name, members=tuple(members), strategy=strategy, rounds=rounds, trunks=trunks, **kw)


def plan(*dests: Destination) -> RoutePlan:
    return RoutePlan(action="dial", rule="test", chain=tuple(dests), start_at=T0, customer_number=CUSTOMER)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Flow:
    """Drives one AttemptFlow and records every command."""

    def __init__(self, p: RoutePlan, **kw: Any) -> None:
        n = iter(range(1, 1000))
        self.flow = AttemptFlow("R1", 1, p, CUSTOMER, now=T0, make_leg_id=lambda: f"leg-{next(n)}", **kw)
        self.cmds: list[Command] = []
        self.facts: list[tuple[Fact, datetime]] = []

    def start(self) -> list[Command]:
        out = self.flow.start(T0)
        self.cmds += out
        return out

    def fact(self, cls: type[Fact], leg: str, t: float, **kw: Any) -> list[Command]:
        base: dict[str, Any] = {"leg_id": leg, "request_id": "R1", "attempt": 1, "role": "agent",
                                "agent_leg_id": leg, "at": at(t), "uniqueid": leg, "linkedid": leg,
                                "channel": f"PJSIP/carrier-a-{leg}"}
        base.update(kw)
        f = cls(**base)
        self.facts.append((f, at(t)))
        out = self.flow.on_fact(f, at(t))
        self.cmds += out
        return out

    def cust(self, cls: type[Fact], agent: str, t: float, **kw: Any) -> list[Command]:
        return self.fact(cls, f"{agent}-c", t, role="customer", agent_leg_id=agent, uniqueid=f"9.{agent}",
                         channel=f"PJSIP/carrier-a-c-{agent}", **kw)

    def timer(self, t: float) -> list[Command]:
        out = self.flow.on_timer(at(t))
        self.cmds += out
        return out

    # -- scripted agent behaviour (the facts the interpreter emits for the captured flows)
    def busy(self, leg: str, t: float) -> None:
        self.fact(LegHungUp, leg, t, cause=17, cause_text="User busy", sip_status=486)
        self.fact(LegEnded, leg, t, disposition="busy", cause=17, sip_status=486)

    def noanswer(self, leg: str, t: float) -> None:
        self.fact(LegRinging, leg, t - 8)
        self.fact(OriginateFailed, leg, t, reason=3)
        self.fact(LegEnded, leg, t, disposition="no_answer", cause=19, sip_status=480)

    def answer(self, leg: str, t: float) -> None:
        self.fact(LegRinging, leg, t - 2)
        self.fact(LegAnswered, leg, t)
        self.fact(AgentAnswered, leg, t)

    def accept(self, leg: str, t: float) -> None:
        self.answer(leg, t)
        self.fact(AgentAccepted, leg, t + 4)

    def customer_answers(self, agent: str, t: float) -> None:
        self.cust(CustomerLegCreated, agent, t)
        self.cust(CustomerDialing, agent, t)
        self.cust(CustomerRinging, agent, t)
        self.cust(CustomerAnswered, agent, t + 2)

    def customer_hangs_up(self, agent: str, t: float) -> None:
        self.cust(CustomerResult, agent, t, dial_status="ANSWER", cause=16)
        self.cust(LegEnded, agent, t, disposition="answered", cause=16, answered=True)
        self.fact(LegEnded, agent, t, disposition="accepted", cause=16, answered=True, accepted=True)

    # -- views
    def of(self, cls: type[Any]) -> list[Any]:
        return [c for c in self.cmds if isinstance(c, cls)]

    def states(self) -> list[str]:
        return [c.state for c in self.of(SetState)]

    def originated(self) -> list[tuple[str, str, str, str | None]]:
        return [(c.leg_id, c.destination, c.member.dial, c.trunk) for c in self.of(Originate)]

    def finish(self) -> AttemptResult:
        fins: list[Finish] = self.of(Finish)
        assert len(fins) == 1, "Finish must come once"
        assert self.cmds[-1] is fins[0], "Finish must be the last command"
        result: AttemptResult = fins[0].result
        return result

    def leg_row(self, leg: str) -> dict[str, Any]:
        """The call_legs row as the worker would upsert it from RecordLeg + UpdateLeg."""
        row: dict[str, Any] = {}
        for c in self.cmds:
            if isinstance(c, RecordLeg) and c.leg_id == leg:
                assert not row, "RecordLeg twice"
                row.update(c.row())
            elif isinstance(c, UpdateLeg) and c.leg_id == leg:
                assert row, "UpdateLeg before RecordLeg"
                row.update(c.changes())
        return row


FULL_STATES = ["dialing_agent", "agent_answered", "accepted", "dialing_customer", "connected", "completed"]


def test_sequential_busy_then_no_answer_then_accept_and_connect() -> None:
    d = dest("store", [mem(1), mem(2), mem(3, ring=25)], label="Store Mitte")
    f = Flow(plan(d), prompts=["callswitch/web-callback"])
    first = f.start()
    assert [type(c).__name__ for c in first] == ["SetState", "RecordLeg", "Originate"]
    f.busy("leg-1", 0.1)
    f.noanswer("leg-2", 8.2)
    assert f.states() == ["dialing_agent"]
    f.accept("leg-3", 10)
    f.customer_answers("leg-3", 14)
    assert f.flow.state == "connected" and not f.flow.done
    f.customer_hangs_up("leg-3", 46)

    assert f.originated() == [("leg-1", "store", "+49301001", "carrier-a"),
                              ("leg-2", "store", "+49301002", "carrier-a"),
                              ("leg-3", "store", "+49301003", "carrier-a")]
    o3 = f.of(Originate)[2]
    assert o3.dial_string == "PJSIP/+49301003@carrier-a" and o3.timeout_ms == 25000 and o3.caller_id == CUSTOMER
    assert o3.variables == {
        "__CS_REQUEST_ID": "R1", "__CS_ATTEMPT": "1", "__CS_CUSTOMER": "4917012345678",
        "__CS_CUSTOMER_DIAL": f"PJSIP/{CUSTOMER}@carrier-a", "__CS_CUST_TIMEOUT": "30",
        "__CS_CUSTOMER_CALLERID_NUM": "+4930555000", "__CS_CUSTOMER_CALLERID_NAME": "Store Mitte",
        "__CS_PROMPTS": "callswitch/web-callback",
    }
    assert f.states() == FULL_STATES
    assert not f.of(Hangup)
    res = f.finish()
    assert res == AttemptResult("connected", False, res.detail, True, 30)  # customer answered at 16, gone at 46
    assert "m3" in res.detail
    for c in f.of(Originate):  # the row is written before the leg is dialled
        assert f.cmds.index(next(r for r in f.of(RecordLeg) if r.leg_id == c.leg_id)) < f.cmds.index(c)
    assert f.leg_row("leg-1")["disposition"] == "busy" and f.leg_row("leg-1")["sip_status"] == 486
    assert f.leg_row("leg-2")["disposition"] == "no_answer" and f.leg_row("leg-2")["ringing_at"] == at(0.2)
    agent = f.leg_row("leg-3")
    assert (agent["answered_at"], agent["accepted_at"], agent["ended_at"]) == (at(10), at(14), at(46))
    assert agent["disposition"] == "accepted" and agent["billable_seconds"] == 36 and agent["leg"] == "agent"
    assert agent["uniqueid"] == "leg-3" and agent["channel"] == "PJSIP/carrier-a-leg-3"
    cust = f.leg_row("leg-3-c")
    assert cust["leg"] == "customer" and cust["number_dialled"] == CUSTOMER and cust["trunk"] == "carrier-a"
    assert cust["answered_at"] == at(16) and cust["billable_seconds"] == 30 and cust["disposition"] == "answered"
    assert cust["uniqueid"] == "9.leg-3"


def test_duplicate_facts_change_nothing() -> None:
    d = dest("store", [mem(1), mem(2), mem(3)])
    f = Flow(plan(d))
    f.start()
    f.busy("leg-1", 0.1)
    f.noanswer("leg-2", 8.2)
    f.accept("leg-3", 10)
    f.customer_answers("leg-3", 14)
    f.customer_hangs_up("leg-3", 46)
    g = Flow(plan(d))
    g.start()
    for fact, now in f.facts:
        g.cmds += g.flow.on_fact(fact, now)
        assert g.flow.on_fact(fact, now) == []
    assert g.cmds == f.cmds


def test_simultaneous_first_accept_wins_and_a_late_accept_is_hung_up() -> None:
    d = dest("team", [mem(1), mem(2), mem(3)], strategy="simultaneous")
    f = Flow(plan(d))
    f.start()
    assert [o[0] for o in f.originated()] == ["leg-1", "leg-2", "leg-3"]
    assert f.states() == ["dialing_agent"]
    f.answer("leg-1", 3)
    f.answer("leg-3", 3.5)
    f.fact(LegRinging, "leg-2", 1)
    out = f.fact(AgentAccepted, "leg-3", 7)
    assert [c for c in out if isinstance(c, Hangup)] == [Hangup("leg-1", 26), Hangup("leg-2", 26)]
    assert f.flow.winner == "leg-3"
    # leg-1 was in its announcement too and presses 1 a moment later: hung up, never the winner
    assert f.fact(AgentAccepted, "leg-1", 7.2) == [Hangup("leg-1", 26)]
    assert f.fact(AgentAccepted, "leg-1", 7.2) == []
    assert f.fact(AgentDeclined, "leg-1", 7.3, reason="TOO_LATE") == []
    # the losers end (the simulator/Asterisk may report cause 16 or 26)
    f.fact(LegEnded, "leg-1", 7.4, disposition="answered", cause=16, answered=True)
    f.fact(LegEnded, "leg-2", 7.4, disposition="cancelled", cause=26)
    f.customer_answers("leg-3", 7.5)
    f.customer_hangs_up("leg-3", 20)
    assert f.flow.winner == "leg-3"
    assert f.leg_row("leg-1")["disposition"] == "answered_elsewhere"
    assert f.leg_row("leg-2")["disposition"] == "answered_elsewhere"
    assert "accepted_at" not in f.leg_row("leg-1")
    assert f.states() == FULL_STATES
    assert f.finish().outcome == "connected"


def test_customer_dialled_from_a_loser_is_hung_up() -> None:
    f = Flow(plan(dest("team", [mem(1), mem(2)], strategy="simultaneous")))
    f.start()
    f.accept("leg-1", 3)
    out = f.cust(CustomerLegCreated, "leg-2", 8)
    assert out == [Hangup("leg-2-c", 16)]  # leg-2 got Hangup 26 already at the acceptance of leg-1
    assert f.cust(CustomerRinging, "leg-2", 8) == []
    assert "leg-2-c" not in [r.leg_id for r in f.of(RecordLeg)]


def test_simultaneous_all_decline_then_next_round() -> None:
    d = dest("team", [mem(1), mem(2)], strategy="simultaneous", rounds=2)
    f = Flow(plan(d))
    f.start()
    f.answer("leg-1", 2)
    assert f.fact(AgentDeclined, "leg-1", 6, reason="DECLINED") == []  # leg-2 still rings
    assert len(f.of(Originate)) == 2
    f.noanswer("leg-2", 20)
    assert [o[0] for o in f.originated()] == ["leg-1", "leg-2", "leg-3", "leg-4"]
    assert [o[2] for o in f.originated()[2:]] == ["+49301001", "+49301002"]


def test_rounds_sequential_then_no_agent() -> None:
    d = dest("store", [mem(1), mem(2)], rounds=2)
    f = Flow(plan(d))
    f.start()
    for i, t in zip(range(1, 5), (8, 16, 24, 32), strict=True):
        f.noanswer(f"leg-{i}", t)
    assert [o[2] for o in f.originated()] == ["+49301001", "+49301002", "+49301001", "+49301002"]
    res = f.finish()
    assert (res.outcome, res.retry, res.connected, res.talk_seconds) == ("no_agent", True, False, None)
    assert res.detail.count("no_answer") == 4
    assert f.states() == ["dialing_agent"]


def test_overflow_to_the_next_destination_with_its_trunk() -> None:
    a = dest("store-a", [mem(1)], trunks=(TRUNK_A,))
    b = dest("store-b", [mem(2), mem(3)], trunks=(TRUNK_B,), label="Store B", announce=Announcements(agent="b-intro"))
    f = Flow(plan(a, b), prompts=["p1"])
    f.start()
    f.busy("leg-1", 0.1)
    f.fact(LegEnded, "leg-2", 1, disposition="unreachable", cause=1, sip_status=404)
    f.accept("leg-3", 5)
    assert f.originated() == [("leg-1", "store-a", "+49301001", "carrier-a"),
                              ("leg-2", "store-b", "+49301002", "carrier-b"),
                              ("leg-3", "store-b", "+49301003", "carrier-b")]
    v = f.of(Originate)[2].variables
    assert v["__CS_CUSTOMER_DIAL"] == f"PJSIP/{CUSTOMER}@carrier-b"
    assert v["__CS_CUSTOMER_CALLERID_NUM"] == "+4930555999" and v["__CS_CUSTOMER_CALLERID_NAME"] == "Store B"
    assert v["__CS_PROMPTS"] == "p1&b-intro"


@pytest.mark.parametrize(("status", "cause", "disposition", "outcome"), [
    ("BUSY", 17, "busy", "customer_busy"),
    ("NOANSWER", 0, "no_answer", "customer_no_answer"),
    ("CHANUNAVAIL", 1, "unreachable", "customer_unreachable"),
    ("CONGESTION", 34, "congestion", "customer_unreachable"),
])
@pytest.mark.parametrize("result_first", [True, False])
def test_customer_not_reached_is_a_retry(status: str, cause: int, disposition: str, outcome: str,
                                         result_first: bool) -> None:
    f = Flow(plan(dest("store", [mem(1), mem(2)])))
    f.start()
    f.accept("leg-1", 2)
    f.cust(CustomerLegCreated, "leg-1", 6.3)
    f.cust(CustomerDialing, "leg-1", 6.3)
    result = lambda: f.cust(CustomerResult, "leg-1", 9, dial_status=status, cause=cause)  # noqa: E731
    ended = lambda: f.cust(LegEnded, "leg-1", 9, disposition=disposition, cause=cause)  # noqa: E731
    for step in (result, ended) if result_first else (ended, result):
        step()
    assert not f.flow.done  # the agent leg is still up
    f.fact(LegEnded, "leg-1", 9.1, disposition="accepted", cause=cause, answered=True, accepted=True)
    res = f.finish()
    assert (res.outcome, res.retry, res.connected, res.talk_seconds) == (outcome, True, False, None)
    assert f.states() == ["dialing_agent", "agent_answered", "accepted", "dialing_customer"]
    assert len(f.of(Originate)) == 1  # the next member is not rung: the agent accepted
    assert f.leg_row("leg-1-c")["disposition"] == disposition


def test_agent_hangs_up_while_the_customer_rings() -> None:
    g = Flow(plan(dest("store", [mem(1)])))
    g.start()
    g.accept("leg-1", 2)
    g.cust(CustomerRinging, "leg-1", 7)  # customer facts without Dialing/Created still open the leg
    g.fact(LegEnded, "leg-1", 9, disposition="accepted", cause=16, answered=True, accepted=True)
    g.cust(LegEnded, "leg-1", 9, disposition="cancelled", cause=0)
    assert g.finish().outcome == "customer_no_answer"
    assert g.states() == ["dialing_agent", "agent_answered", "accepted", "dialing_customer"]


def test_customer_facts_imply_a_lost_accept() -> None:
    f = Flow(plan(dest("store", [mem(1)])))
    f.start()
    f.answer("leg-1", 2)
    f.customer_answers("leg-1", 7)
    assert f.flow.winner == "leg-1"
    assert f.states() == ["dialing_agent", "agent_answered", "accepted", "dialing_customer", "connected"]


# ---------------------------------------------------------------------------------- guards
def test_ring_guard_hangs_up_and_rings_the_next_member() -> None:
    f = Flow(plan(dest("store", [mem(1, ring=20), mem(2, ring=15)])))
    f.start()
    assert f.flow.next_deadline == at(30)  # ring 20 s + 10 s margin
    assert f.timer(29.9) == []
    out = f.timer(30)
    assert out[0] == Hangup("leg-1", 19)
    assert [(o.leg_id, o.timeout_ms) for o in out if isinstance(o, Originate)] == [("leg-2", 15000)]
    assert f.flow.next_deadline == at(55)
    # the stale leg ends later with whatever Asterisk says; the row keeps the guard's verdict
    f.fact(LegEnded, "leg-1", 30.1, disposition="cancelled", cause=16)
    assert f.leg_row("leg-1")["disposition"] == "no_answer"
    assert f.leg_row("leg-1")["hangup_cause"] == 16


def test_accept_guard_and_repeat() -> None:
    f = Flow(plan(dest("store", [mem(1), mem(2)])), accept_timeout_s=40)
    f.start()
    f.answer("leg-1", 2)
    assert f.flow.next_deadline == at(42)
    f.fact(AgentRepeat, "leg-1", 20, count=1)
    assert f.flow.next_deadline == at(60)
    assert f.timer(59) == []
    out = f.timer(60)
    assert out[0] == Hangup("leg-1", 16)
    assert [o.leg_id for o in out if isinstance(o, Originate)] == ["leg-2"]
    # an accept after the guard gave up: hung up again, never the winner
    assert f.fact(AgentAccepted, "leg-1", 61) == [Hangup("leg-1", 16)]
    assert f.flow.winner is None and f.flow.state == "agent_answered"
    f.fact(LegEnded, "leg-1", 61.2, disposition="accepted", cause=16, answered=True, accepted=True)
    assert f.leg_row("leg-1")["disposition"] == "answered"


def test_customer_guard_then_drain_guard() -> None:
    f = Flow(plan(dest("store", [mem(1)])), customer_timeout_s=20, drain_s=15)
    f.start()
    f.accept("leg-1", 2)  # accepted at 6
    assert f.flow.next_deadline == at(56)  # 6 + 20 + 30 margin
    out = f.timer(56)
    assert out == [Hangup("leg-1", 16)]
    assert not f.flow.done and f.flow.next_deadline == at(71)
    out = f.timer(71)  # the agent leg never reported its end
    assert out[-1] == Finish(f.flow.result) and f.flow.done  # type: ignore[arg-type]
    assert f.finish().outcome == "customer_no_answer" and f.finish().retry
    assert f.leg_row("leg-1")["disposition"] == "accepted" and f.leg_row("leg-1")["ended_at"] == at(71)
    assert f.flow.next_deadline is None and f.timer(500) == []


def test_setup_guard() -> None:
    f = Flow(plan(dest("store", [mem(1, ring=600)])), setup_timeout_s=120)
    f.start()
    assert f.flow.next_deadline == at(120)
    out = f.timer(120)
    assert out == [Hangup("leg-1", 16)]
    f.fact(LegEnded, "leg-1", 121, disposition="cancelled", cause=16)
    res = f.finish()
    assert (res.outcome, res.retry) == ("failed", True)
    assert f.leg_row("leg-1")["disposition"] == "cancelled"


def test_max_call_guard() -> None:
    f = Flow(plan(dest("store", [mem(1)])), max_call_s=100)
    f.start()
    f.accept("leg-1", 2)
    f.customer_answers("leg-1", 7)  # connected at 9
    assert f.flow.next_deadline == at(109)
    out = f.timer(109)
    assert [c for c in out if isinstance(c, Hangup)] == [Hangup("leg-1", 16), Hangup("leg-1-c", 16)]
    assert f.states()[-1] == "completed"
    f.customer_hangs_up("leg-1", 109.5)
    res = f.finish()
    assert (res.outcome, res.talk_seconds) == ("connected", 100)


def test_cancel_hangs_up_everything() -> None:
    f = Flow(plan(dest("team", [mem(1), mem(2)], strategy="simultaneous")))
    f.start()
    f.answer("leg-1", 2)
    out = f.flow.cancel(at(3), "visitor cancelled")
    assert out == [Hangup("leg-1", 16), Hangup("leg-2", 16)]
    assert f.flow.cancel(at(3)) == []
    f.cmds += out
    f.fact(LegEnded, "leg-1", 3.1, disposition="answered", cause=16, answered=True)
    f.fact(LegEnded, "leg-2", 3.1, disposition="cancelled", cause=16)
    res = f.finish()
    assert (res.outcome, res.retry, res.detail) == ("cancelled", False, "visitor cancelled")
    assert f.leg_row("leg-1")["disposition"] == "answered" and f.leg_row("leg-2")["disposition"] == "cancelled"


# ---------------------------------------------------------------------------------- trunks, order
def test_trunk_failover_on_congestion_and_unreachable() -> None:
    d = dest("store", [mem(1), mem(2)], trunks=(TRUNK_A, TRUNK_B))
    f = Flow(plan(d))
    f.start()
    f.fact(LegEnded, "leg-1", 0.1, disposition="congestion", cause=34, sip_status=503)
    f.fact(LegEnded, "leg-2", 0.2, disposition="unreachable", cause=1, sip_status=404)
    f.busy("leg-3", 0.3)
    f.busy("leg-4", 0.4)  # busy: no failover, next member
    assert f.originated() == [("leg-1", "store", "+49301001", "carrier-a"),
                              ("leg-2", "store", "+49301001", "carrier-b"),
                              ("leg-3", "store", "+49301002", "carrier-a")]
    assert f.finish().outcome == "no_agent"


def test_endpoint_members_are_dialled_as_they_are() -> None:
    d = dest("desk", [Member("PJSIP/201", 15, name="desk 201")], trunks=(TRUNK_A, TRUNK_B))
    f = Flow(plan(d))
    f.start()
    o = f.of(Originate)[0]
    assert (o.dial_string, o.trunk) == ("PJSIP/201", None)
    assert o.variables["__CS_CUSTOMER_DIAL"] == f"PJSIP/{CUSTOMER}@carrier-a"
    f.fact(LegEnded, "leg-1", 1, disposition="unreachable", cause=20)  # endpoints have no trunk to fail over to
    assert f.finish().outcome == "no_agent"


def test_round_robin_uses_member_order_per_round() -> None:
    members = [mem(1), mem(2), mem(3)]
    d = dest("store", members, strategy="round_robin", rounds=2)
    calls: list[str] = []

    def order(dd: Destination) -> Sequence[Member]:
        calls.append(dd.name)
        k = len(calls)
        return members[k:] + members[:k]

    f = Flow(plan(d), member_order=order)
    f.start()
    assert calls == ["store"]
    for i in range(1, 7):
        f.busy(f"leg-{i}", i)
    assert [o[2][-1] for o in f.originated()] == ["2", "3", "1", "3", "1", "2"]
    assert calls == ["store", "store"]


def test_plan_without_any_trunk_is_refused_and_empty_chain_is_no_agent() -> None:
    with pytest.raises(ValueError, match="trunk"):
        AttemptFlow("R1", 1, plan(dest("desk", [Member("PJSIP/201", 15)], trunks=())), CUSTOMER, now=T0,
                    make_leg_id=lambda: "x")
    f = Flow(plan())
    out = f.start()
    assert len(out) == 1 and isinstance(out[0], Finish) and out[0].result.outcome == "no_agent"
    assert f.flow.done and f.flow.next_deadline is None


def test_foreign_facts_are_ignored() -> None:
    f = Flow(plan(dest("store", [mem(1)])))
    f.start()
    assert f.fact(AgentAccepted, "leg-1", 1, request_id="R2") == []
    assert f.fact(AgentAccepted, "leg-1", 1, attempt=2) == []
    assert f.fact(AgentAccepted, "leg-9", 1) == []
    assert f.flow.winner is None


# ---------------------------------------------------------------------------------- end to end
BEHAVIOUR = {"m11": "busy", "m12": "noanswer", "m13": "accept", "m14": "decline"}  # by Member.name


class Harness:
    """AttemptFlow + Interpreter against the simulator's recorded sequences (no sockets, no sleeping)."""

    def __init__(self, p: RoutePlan, customer: str = "hangs_up", **kw: Any) -> None:
        n = iter(range(1, 100))
        self.flow = AttemptFlow("R1", 1, p, CUSTOMER, now=T0, make_leg_id=lambda: f"leg-{next(n)}", **kw)
        self.interp = Interpreter()
        self.replayer = Replayer()
        self.customer = customer
        self.cmds: list[Command] = []
        self.pending: list[tuple[datetime, int, Any]] = []  # (time, seq, message)
        self.seq = 0

    def _run(self, cmds: list[Command], now: datetime) -> None:
        self.cmds += cmds
        for c in cmds:
            if isinstance(c, Originate):
                self.interp.expect_leg(c.leg_id, request_id=c.variables["__CS_REQUEST_ID"],
                                       attempt=int(c.variables["__CS_ATTEMPT"]), role="agent")
                behaviour = BEHAVIOUR[c.member.name or ""]
                msgs = self.replayer.replay(behaviour, self.customer, leg_id=c.leg_id,
                                            request_id=c.variables["__CS_REQUEST_ID"])
                for t, m in msgs:
                    self.seq += 1
                    self.pending.append((now + timedelta(seconds=t), self.seq, m))

    def run(self) -> None:
        self._run(self.flow.start(T0), T0)
        while self.pending and not self.flow.done:
            self.pending.sort(key=lambda p: (p[0], p[1]))
            deadline = self.flow.next_deadline
            when, _s, msg = self.pending[0]
            if deadline is not None and deadline < when:
                self._run(self.flow.on_timer(deadline), deadline)
                continue
            self.pending.pop(0)
            for fact in self.interp.feed(msg, when):
                self._run(self.flow.on_fact(fact, when), when)

    def of(self, cls: type[Any]) -> list[Any]:
        return [c for c in self.cmds if isinstance(c, cls)]


def test_end_to_end_sequential_on_recorded_sequences() -> None:
    h = Harness(plan(dest("store", [mem(11), mem(12), mem(13)])))
    h.run()
    assert h.flow.done
    assert [o.member.dial for o in h.of(Originate)] == ["+4930100" + s for s in ("11", "12", "13")]
    assert [s.state for s in h.of(SetState)] == FULL_STATES
    res = h.flow.result
    assert res is not None and (res.outcome, res.connected, res.retry) == ("connected", True, False)
    assert res.talk_seconds == 5  # customer answered at 8.219 s, hung up at 13.228 s of its leg
    ups = {u.leg_id: u.disposition for u in h.of(UpdateLeg) if u.disposition}
    assert ups == {"leg-1": "busy", "leg-2": "no_answer", "leg-3": "accepted", "leg-3-c": "answered"}
    assert not h.of(Hangup)


@pytest.mark.parametrize(("customer", "outcome"), [("busy", "customer_busy"), ("noanswer", "customer_no_answer"),
                                                   ("404", "customer_unreachable")])
def test_end_to_end_customer_not_reached(customer: str, outcome: str) -> None:
    h = Harness(plan(dest("store", [mem(14), mem(13), mem(11)])), customer=customer)
    h.run()
    res = h.flow.result
    assert res is not None and (res.outcome, res.retry, res.connected) == (outcome, True, False)
    assert [o.member.dial[-2:] for o in h.of(Originate)] == ["14", "13"]  # declined, then accepted; 11 not rung


def test_end_to_end_simultaneous_accept_hangs_up_the_ringing_one() -> None:
    h = Harness(plan(dest("team", [mem(12), mem(13)], strategy="simultaneous")))
    h.run()
    res = h.flow.result
    assert res is not None and res.outcome == "connected"
    assert h.flow.winner == "leg-2"
    assert h.of(Hangup) == [Hangup("leg-1", 26)]
    # the replay of leg-1 ignores our Hangup and ends with its recorded no-answer (19/480) at 8 s:
    # the row still says why we ended it
    ups = {u.leg_id: u.disposition for u in h.of(UpdateLeg) if u.disposition}
    assert ups == {"leg-1": "answered_elsewhere", "leg-2": "accepted", "leg-2-c": "answered"}


def test_default_setup_guard_outlasts_every_other_guard() -> None:
    d = dest("store", [mem(1, ring=30), mem(2, ring=30)], rounds=3)
    f = Flow(plan(d, dest("team", [mem(3, ring=20), mem(4, ring=25)], strategy="simultaneous")))
    f.start()
    # 3 x (30+10+60)*2 + (25+10+60) + 30 + 30 + 60
    assert f.flow.next_deadline == at(40)
    assert f.flow.setup_timeout == timedelta(seconds=600 + 95 + 120)


def test_originate_variables_are_safe_for_ami_and_carry_the_daemons_settings() -> None:
    f = Flow(plan(dest("store", [mem(1)], label="Store Berlin, Mitte")), variables={"__CS_SAY_DIGITS": "4"})
    (orig,) = [c for c in f.start() if isinstance(c, Originate)]
    assert orig.variables["__CS_CUSTOMER_CALLERID_NAME"] == "Store Berlin  Mitte"  # AMI splits at commas
    assert orig.variables["__CS_SAY_DIGITS"] == "4"
    assert all("," not in v for v in orig.variables.values())
