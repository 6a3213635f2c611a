"""Plans: overflow chains, closed destinations, defer, wait, preferred time, caller IDs, immutability."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from callswitch.routing import DEFER, DIAL, REJECT, load_rules, route

from .helpers import req, write

FILE = """\
version: 1
defaults: {timezone: Europe/Berlin, trunk: main}
trunks:
  main: {dial: "PJSIP/{number}@main", caller_id: "+4930901820", failover: [backup]}
  backup: {dial: "PJSIP/{number}@backup", caller_id: "+4930901821"}
schedules:
  store: {weekly: {mon-fri: "09:00-18:00"}}
  office: {weekly: {mon-fri: "08:00-20:00", sat: "10:00-12:00"}}
destinations:
  store:
    members: ["+4930555000", {dial: PJSIP/7, name: Bob, ring_timeout: 30}]
    schedule: store
    overflow: central
    caller_id: {agent: "+4930901821", customer: "+4930555000"}
  central:
    members: [PJSIP/1]
    schedule: office
    trunk: backup
  waiting:
    members: [PJSIP/2]
    schedule: store
    when_closed: wait
    overflow: central
rules:
  - {when: {product: wait}, route: waiting}
  - {when: {product: later}, defer: store}
  - {when: {product: spam}, reject: "No, thanks."}
default: store
"""

MON_1000 = datetime(2025, 3, 31, 8, 0, tzinfo=UTC)  # Berlin 10:00
MON_1900 = datetime(2025, 3, 31, 17, 0, tzinfo=UTC)  # store closed, office open
MON_2200 = datetime(2025, 3, 31, 20, 0, tzinfo=UTC)  # both closed
TUE_0800 = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)  # office opens
TUE_0900 = datetime(2025, 4, 1, 7, 0, tzinfo=UTC)  # store opens


@pytest.fixture
def rules(tmp_path):
    return load_rules(write(tmp_path, FILE))


def names(plan):
    return [d.name for d in plan.chain]


def test_open_destination_dials_now_with_its_overflow(rules):
    plan = route(rules, req(), MON_1000)
    assert (plan.action, plan.start_at, names(plan), plan.rule) == (DIAL, MON_1000, ["store", "central"], "default")
    store = plan.chain[0]
    assert [m.dial for m in store.members] == ["+4930555000", "PJSIP/7"]
    assert [m.ring_timeout for m in store.members] == [20, 30]
    assert [t.name for t in store.trunks] == ["main", "backup"]
    assert plan.agent_caller_id(store) == "+4930901821"
    assert plan.customer_caller_id(store) == "+4930555000"
    central = plan.chain[1]
    assert plan.agent_caller_id(central) == "+4915112345678"  # the customer's number by default
    assert plan.customer_caller_id(central) == "+4930901821"  # its trunk's caller ID


def test_closed_destination_overflows(rules):
    plan = route(rules, req(), MON_1900)
    assert (plan.action, names(plan)) == (DIAL, ["central"])


def test_everyone_closed_defers_to_the_earliest_opening(rules):
    plan = route(rules, req(), MON_2200)
    assert (plan.action, plan.start_at, names(plan)) == (DEFER, TUE_0800, ["store", "central"])
    # routed again when due: central is open, the store is not yet
    again = route(rules, req(), plan.start_at)
    assert (again.action, names(again)) == (DIAL, ["central"])


def test_when_closed_wait_waits_for_the_destination(rules):
    plan = route(rules, req(product="wait"), MON_1900)
    assert (plan.action, plan.start_at, names(plan)) == (DEFER, TUE_0900, ["waiting", "central"])


def test_defer_action_waits_for_the_destinations_opening(rules):
    plan = route(rules, req(product="later"), MON_1900)
    assert (plan.action, plan.start_at) == (DEFER, TUE_0900)
    now_open = route(rules, req(product="later"), MON_1000)
    assert (now_open.action, names(now_open)) == (DIAL, ["store", "central"])


def test_reject_has_a_message(rules):
    plan = route(rules, req(product="spam"), MON_1000)
    assert (plan.action, plan.reject_message, plan.chain) == (REJECT, "No, thanks.", ())


def test_preferred_time_in_the_future_defers(rules):
    plan = route(rules, req(preferred_at=MON_1900), MON_1000)
    assert (plan.action, plan.start_at, names(plan)) == (DEFER, MON_1900, ["central"])


def test_explain_trace_names_rules_and_reasons(rules):
    plan = route(rules, req(product="spam"), MON_1000, explain=True)
    assert plan.trace[1].startswith("rules[0] at ")
    assert "no match: product 'spam' does not satisfy: is 'wait'" in plan.trace[1]
    assert "MATCH: product 'spam' is 'spam' -> reject: 'No, thanks.'" in plan.trace[3]
    assert plan.trace[-1] == "plan: reject (rules[2]): No, thanks."
    closed = route(rules, req(), MON_1900, explain=True)
    assert "store: closed, skipped (overflow continues)" in closed.trace
    assert "central: open (overflow)" in closed.trace


def test_plans_are_immutable_and_need_aware_times(rules):
    plan = route(rules, req(), MON_1000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.action = REJECT  # type: ignore[misc]
    with pytest.raises(ValueError):
        route(rules, req(), datetime(2025, 3, 31, 10, 0))
