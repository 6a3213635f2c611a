"""Round robin and longest idle: the member order the dialer gives the call flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callswitch.dialer.worker import order_members
from callswitch.routing.model import Member
from tests.dialer.conftest import StackFactory

A, B, C = (Member(f"+1312555010{i}", 20) for i in range(3))
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def dials(members: tuple[Member, ...]) -> list[str]:
    return [m.dial[-1] for m in members]


def test_round_robin_starts_after_whoever_was_rung_last() -> None:
    assert dials(order_members("round_robin", (A, B, C), {})) == ["0", "1", "2"]
    history = {A.dial: (T0, T0), B.dial: (T0 + timedelta(minutes=5), None)}
    assert dials(order_members("round_robin", (A, B, C), history)) == ["2", "0", "1"]
    history[C.dial] = (T0 + timedelta(minutes=9), T0 + timedelta(minutes=10))
    assert dials(order_members("round_robin", (A, B, C), history)) == ["0", "1", "2"]


def test_longest_idle_puts_the_longest_free_member_first() -> None:
    history = {A.dial: (T0, T0 + timedelta(minutes=30)), C.dial: (T0, T0 + timedelta(minutes=10))}
    assert dials(order_members("longest_idle", (A, B, C), history)) == ["1", "2", "0"]  # B never called


def test_sequential_keeps_the_file_order() -> None:
    history = {A.dial: (T0 + timedelta(hours=1), None)}
    assert dials(order_members("sequential", (A, B, C), history)) == ["0", "1", "2"]


async def test_round_robin_spreads_requests_over_the_members(stack: StackFactory) -> None:
    st = await stack(members='"+13125550100", "+13125550101", "+13125550102"', strategy="round_robin")
    for i in range(4):
        await st.wait_final(await st.post(f"+177355502{i:02d}"[:12]))
    first_rung = [o.headers["Channel"].split("/")[1].split("@")[0][-1] for o in st.sim.originates]
    assert first_rung == ["0", "1", "2", "0"]
