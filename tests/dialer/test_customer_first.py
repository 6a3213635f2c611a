"""Customer-first mode: the visitor is called first, waits on hold, then the agents are rung as usual.

Pure flow tests (commands and states from facts) and end-to-end runs through the dialer and the simulator.
"""

from __future__ import annotations

from typing import Any

from callswitch import callback as states
from callswitch.dialer.flow import (
    CUSTOMER_FIRST_CONTEXT,
    Finish,
    Hangup,
    Originate,
    RecordLeg,
    Release,
    SetState,
)
from callswitch.dialer.interpret import (
    AgentDeclined,
    CustomerAnswered,
    CustomerReleased,
    CustomerRinging,
    CustomerWaiting,
    Interpreter,
    LegEnded,
    LegHungUp,
)
from tests.dialer.conftest import StackFactory
from tests.dialer.test_flow import CUSTOMER, Flow, dest, mem, plan


def cf_flow(*members: int, strategy: str = "sequential") -> Flow:
    d = dest("store", [mem(n) for n in members], strategy=strategy, mode="customer_first", label="Store One")
    return Flow(plan(d))


def cfact(f: Flow, cls: type[Any], t: float, **kw: Any) -> list[Any]:
    """A fact about the customer leg (leg-1, originated by the flow itself)."""
    return f.fact(cls, "leg-1", t, role="customer", agent_leg_id="leg-1", **kw)


def states_of(f: Flow) -> list[str]:
    return [c.state for c in f.cmds if isinstance(c, SetState)]


def test_the_visitor_is_originated_first_with_the_store_caller_id() -> None:
    f = cf_flow(1, 2)
    cmds = f.start()
    originates = [c for c in cmds if isinstance(c, Originate)]
    assert len(originates) == 1
    o = originates[0]
    assert (o.role, o.context, o.member, o.dial_string) == ("customer", CUSTOMER_FIRST_CONTEXT, None,
                                                            f"PJSIP/{CUSTOMER}@carrier-a")
    assert o.caller_id == '"Store One" <+4930555000>'
    assert o.variables["__CS_JOIN"] == f.flow.conference == "callswitch-R1-1"
    record = next(c for c in cmds if isinstance(c, RecordLeg))
    assert (record.role, record.originated, record.number_dialled) == ("customer", True, CUSTOMER)
    assert cmds.index(record) < cmds.index(o)  # the row is written before the Originate
    assert states_of(f) == [states.DIALING_CUSTOMER]


def test_agents_are_rung_only_once_the_visitor_answered_and_acceptance_connects() -> None:
    f = cf_flow(1, 2)
    f.start()
    assert cfact(f, CustomerRinging, 1) and not any(isinstance(c, Originate) and c.role == "agent" for c in f.cmds)
    cmds = cfact(f, CustomerAnswered, 3)
    agent = next(c for c in cmds if isinstance(c, Originate))
    assert (agent.role, agent.joins, agent.member) == ("agent", True, mem(1))
    assert agent.variables["__CS_JOIN"] == "callswitch-R1-1"
    assert "__CS_CUSTOMER_DIAL" not in agent.variables  # nothing is dialled from the agent leg
    cfact(f, CustomerWaiting, 5)  # a second "answered" fact: no second agent
    assert sum(isinstance(c, Originate) for c in f.cmds) == 2
    f.accept("leg-2", 10)
    assert states_of(f) == [states.DIALING_CUSTOMER, states.DIALING_AGENT, states.AGENT_ANSWERED,
                            states.ACCEPTED, states.CONNECTED]
    f.fact(LegEnded, "leg-2", 70, disposition="accepted", cause=16)  # the agent hangs up after talking
    assert f.flow.result is None  # the visitor's leg has not ended yet
    cfact(f, CustomerReleased, 70, result="ENDMARKED")
    cmds = cfact(f, LegEnded, 71, disposition="answered", cause=16, answered=True)
    finish = cmds[-1]
    assert isinstance(finish, Finish)
    assert (finish.result.outcome, finish.result.connected, finish.result.talk_seconds) == ("connected", True, 56)
    assert states_of(f)[-1] == states.COMPLETED


def test_a_decline_rings_the_next_member_while_the_visitor_waits() -> None:
    f = cf_flow(1, 2)
    f.start()
    cfact(f, CustomerAnswered, 3)
    f.answer("leg-2", 6)
    cmds = f.fact(AgentDeclined, "leg-2", 9, reason="DECLINED")
    nxt = next(c for c in cmds if isinstance(c, Originate))
    assert (nxt.member, nxt.joins) == (mem(2), True)
    assert not any(isinstance(c, (Hangup, Release)) for c in cmds)  # the visitor stays on hold


def test_nobody_accepts_the_waiting_visitor_is_released() -> None:
    f = cf_flow(1)
    f.start()
    cfact(f, CustomerAnswered, 3)
    f.answer("leg-2", 6)
    cmds = f.fact(AgentDeclined, "leg-2", 9, reason="DECLINED")
    assert Release("leg-1", "callswitch-R1-1") in cmds  # the last member declined: nobody is left
    f.fact(LegEnded, "leg-2", 9, disposition="declined", cause=16)
    assert f.flow.result is None  # until the visitor's leg has ended
    cmds = cfact(f, LegEnded, 12, disposition="answered", cause=16, answered=True)
    finish = cmds[-1]
    assert isinstance(finish, Finish) and (finish.result.outcome, finish.result.retry) == ("no_agent", True)


def test_the_visitor_hanging_up_on_hold_stops_the_ringing_agents() -> None:
    f = cf_flow(1, 2, strategy="simultaneous")
    f.start()
    cfact(f, CustomerAnswered, 3)
    assert sum(isinstance(c, Originate) and c.role == "agent" for c in f.cmds) == 2
    cmds = cfact(f, LegEnded, 8, disposition="answered", cause=16, answered=True)
    assert {c.leg_id for c in cmds if isinstance(c, Hangup)} == {"leg-2", "leg-3"}
    f.fact(LegEnded, "leg-2", 8.1, disposition="cancelled", cause=16)
    cmds = f.fact(LegEnded, "leg-3", 8.1, disposition="cancelled", cause=16)
    finish = cmds[-1]
    assert isinstance(finish, Finish)
    assert (finish.result.outcome, finish.result.retry) == ("customer_abandoned", False)
    # an acceptance arriving after that is too late: never a connection
    assert f.flow.state != states.CONNECTED


def test_a_busy_visitor_means_no_agent_is_rung_and_a_retry() -> None:
    f = cf_flow(1)
    f.start()
    cfact(f, LegHungUp, 2, cause=17)
    cmds = cfact(f, LegEnded, 2, disposition="busy", cause=17)
    assert not any(isinstance(c, Originate) and c.role == "agent" for c in f.cmds)
    finish = cmds[-1]
    assert isinstance(finish, Finish) and (finish.result.outcome, finish.result.retry) == ("customer_busy", True)


def test_the_visitor_ring_guard_gives_up_on_a_lost_ending() -> None:
    f = cf_flow(1)
    f.start()
    deadline = f.flow.next_deadline
    assert deadline is not None
    cmds = f.flow.on_timer(deadline)
    assert Hangup("leg-1", 19) in cmds
    assert f.flow.state == states.DIALING_CUSTOMER


def test_interpreter_reports_the_originated_visitor_leg() -> None:
    it = Interpreter()
    it.expect_leg("cs-1", request_id="R1", attempt=1, role="customer")
    now = __import__("datetime").datetime(2026, 1, 1)
    base = {"Channel": "PJSIP/carrier-00000001", "Uniqueid": "cs-1", "Linkedid": "cs-1"}
    facts = it.feed({"Event": "Newstate", "ChannelStateDesc": "Ringing", **base}, now)
    assert [type(x).__name__ for x in facts] == ["CustomerLegCreated", "CustomerRinging"]
    facts = it.feed({"Event": "UserEvent", "UserEvent": "CallswitchCustomerAnswered", "RequestId": "R1",
                     "Attempt": "1", **base}, now)
    assert [type(x).__name__ for x in facts] == ["CustomerAnswered"]
    assert facts[0].leg_id == facts[0].agent_leg_id == "cs-1"
    facts = it.feed({"Event": "UserEvent", "UserEvent": "CallswitchCustomerReleased", "RequestId": "R1",
                     "Attempt": "1", "Result": "KICKED", **base}, now)
    assert [(type(x).__name__, getattr(x, "result", None)) for x in facts] == [("CustomerReleased", "KICKED")]
    facts = it.feed({"Event": "Hangup", "Cause": "16", "Cause-txt": "Normal Clearing", **base}, now)
    ended = [x for x in facts if isinstance(x, LegEnded)]
    assert len(ended) == 1 and (ended[0].role, ended[0].disposition) == ("customer", "answered")


def test_interpreter_does_not_invent_a_customer_leg_for_a_joining_agent() -> None:
    it = Interpreter()
    it.expect_leg("cs-2", request_id="R1", attempt=1, joins=True)
    now = __import__("datetime").datetime(2026, 1, 1)
    base = {"Channel": "PJSIP/carrier-00000002", "Uniqueid": "cs-2", "Linkedid": "cs-2", "RequestId": "R1",
            "Attempt": "1"}
    facts = it.feed({"Event": "UserEvent", "UserEvent": "CallswitchJoined", "Parties": "1", **base}, now)
    assert [type(x).__name__ for x in facts] == ["AgentJoined"]
    facts = it.feed({"Event": "UserEvent", "UserEvent": "CallswitchCustomerResult", "DialStatus": "ANSWER",
                     **base}, now)
    assert facts == []
    # a channel linked to the agent (e.g. a ConfBridge announcer) is not taken for a customer
    assert it.feed({"Event": "Newchannel", "Channel": "CBAnn/x", "Uniqueid": "9.1", "Linkedid": "cs-2"}, now) == []
    assert not it.owns("cs-2-c")


# ---------------------------------------------------------------------------------------- end to end
async def _legs(st: Any, rid: str) -> list[tuple[str, str, str]]:
    rows = await st.fetch("SELECT leg, number_dialled, disposition FROM call_legs WHERE request_id = $1::uuid "
                          "ORDER BY originated_at, leg_id", rid)
    return [(r["leg"], r["number_dialled"], r["disposition"]) for r in rows]


async def _events(st: Any, rid: str) -> list[str]:
    rows = await st.fetch("SELECT to_state FROM callback_events WHERE request_id = $1::uuid AND to_state IS NOT NULL "
                          "ORDER BY id", rid)
    return [r["to_state"] for r in rows]


async def test_end_to_end_visitor_first_then_the_second_member_accepts(stack: StackFactory) -> None:
    st = await stack(members='"+13125550110", "+13125550100"', mode="customer_first")  # declines, accepts
    rid = await st.post("+17735550200")  # answers, hangs up after talking
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("completed", "connected")
    assert await _legs(st, rid) == [("customer", "+17735550200", "answered"),
                                    ("agent", "+13125550110", "declined"),
                                    ("agent", "+13125550100", "accepted")]
    sent = [(o.headers["Context"], o.headers["Channel"]) for o in st.sim.originates]
    assert sent == [("callswitch-customer-first", "PJSIP/+17735550200@carrier"),
                    ("callswitch-agent", "PJSIP/+13125550110@carrier"),
                    ("callswitch-agent", "PJSIP/+13125550100@carrier")]
    first = st.sim.originates[0]
    assert first.headers["CallerID"] == "+13125550000"  # the trunk's caller ID: the store's number
    assert first.variables["CS_JOIN"] == st.sim.originates[2].variables["CS_JOIN"]
    assert (await _events(st, rid))[-6:] == ["dialing_customer", "dialing_agent", "agent_answered", "accepted",
                                             "connected", "completed"]
    assert await st.fetch("SELECT * FROM dialer_channels") == []
    # the join marked the attempt connected in AstDB (callswitch-mark-connected), for a take-over to read
    assert [key for keys in st.sim.astdb.values() for key in keys] == [f"{rid}-1"]


async def test_end_to_end_nobody_accepts_and_the_visitor_is_let_go(stack: StackFactory) -> None:
    st = await stack(members='"+13125550110"', mode="customer_first", overflow=False, retries=0)
    rid = await st.post("+17735550210")  # answers and stays on the line
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("failed", "no_agent")
    assert await _legs(st, rid) == [("customer", "+17735550210", "answered"), ("agent", "+13125550110", "declined")]
    assert not st.sim.conferences  # the conference is gone: the visitor was released (ConfbridgeKick)
    assert st.sim.astdb == {}  # answered, but nobody joined: not connected


async def test_end_to_end_busy_visitor_no_agent_is_disturbed(stack: StackFactory) -> None:
    st = await stack(members='"+13125550100"', mode="customer_first", retries=0)
    rid = await st.post("+17735550230")  # busy
    row = await st.wait_final(rid)
    assert (row["state"], row["outcome"]) == ("failed", "customer_busy")
    assert await _legs(st, rid) == [("customer", "+17735550230", "busy")]
    assert [o.headers["Context"] for o in st.sim.originates] == ["callswitch-customer-first"]
