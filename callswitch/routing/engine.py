"""The routing core: ``route(rules, request, now) -> RoutePlan``. Pure: no I/O, no clock.

Rules are tried in file order and the first that matches (conditions hold and its action
applies) decides; otherwise ``default`` decides. A ``route`` to a destination walks its overflow
chain: closed destinations are skipped (``when_closed: overflow``) or waited for
(``when_closed: wait``); if nobody in the chain is open, the request is deferred to the earliest
opening in the chain. A ``defer`` waits for the destination's own next opening.

With ``explain=True`` the plan carries a readable trace; without it no trace is built.
"""

from __future__ import annotations

from datetime import datetime

from callswitch.callback import CallbackRequest
from callswitch.routing.model import DEFER, DIAL, REJECT, Destination, RoutePlan
from callswitch.routing.rules import ROUTE, Outcome, Rules

DEFAULT_LABEL = "default"


def route(rules: Rules, request: CallbackRequest, now: datetime, *, explain: bool = False) -> RoutePlan:
    """Decide who takes ``request`` at ``now`` (timezone-aware). Call again later for deferred plans.

    A ``preferred_at`` later than ``now`` is honoured: the request is routed as of that time.
    """
    if now.tzinfo is None:
        raise ValueError("route() needs a timezone-aware 'now'")
    at = now
    preferred = request.preferred_at
    if preferred is not None and preferred.tzinfo is not None and preferred > now:
        at = preferred
    if explain:
        return _route_explained(rules, request, now, at)
    for segment in rules.segments:
        hit = segment.first_match(request, at)
        if hit is not None:
            return _plan(rules, hit[1], hit[0].label, request, now, at, None)
    outcome = rules.default.resolve(request)
    assert outcome is not None  # the default action never fails (validated)
    return _plan(rules, outcome, DEFAULT_LABEL, request, now, at, None)


def _route_explained(rules: Rules, request: CallbackRequest, now: datetime, at: datetime) -> RoutePlan:
    trace: list[str] = [f"routing at {at.isoformat()}" + (" (visitor's preferred time)" if at != now else "")]
    for rule in rules.rules:
        ok, why = rule.condition.explain(request, at)
        if not ok:
            trace.append(f"{rule.label} at {rule.where}: no match: {why}")
            continue
        outcome, how = rule.action.explain(request)
        if outcome is None:
            trace.append(f"{rule.label} at {rule.where}: conditions hold ({why}) but {how}")
            continue
        trace.append(f"{rule.label} at {rule.where}: MATCH: {why} -> {how}")
        return _plan(rules, outcome, rule.label, request, now, at, trace)
    outcome, how = rules.default.explain(request)
    assert outcome is not None
    trace.append(f"no rule matched; default -> {how}")
    return _plan(rules, outcome, DEFAULT_LABEL, request, now, at, trace)


def _plan(
    rules: Rules,
    outcome: Outcome,
    label: str,
    request: CallbackRequest,
    now: datetime,
    at: datetime,
    trace: list[str] | None,
) -> RoutePlan:
    number = request.phone_e164
    if outcome.kind == REJECT:
        return _done(RoutePlan(REJECT, label, reject_message=outcome.message, customer_number=number), trace)
    destination = outcome.destination
    assert destination is not None
    chain = rules.chains[destination.name]
    if outcome.kind == ROUTE:
        return _route_chain(rules, chain, label, number, now, at, trace)
    # DEFER: wait for this destination's own opening, then route it (with its overflow chain)
    opens = destination.next_open(at)
    if opens is None:
        if trace is not None:
            trace.append(f"{destination.name}: closed and does not open within the horizon")
        return _unavailable(rules, label, number, trace)
    if opens == at:
        if trace is not None:
            trace.append(f"{destination.name}: open now")
        return _route_chain(rules, chain, label, number, now, at, trace)
    if trace is not None:
        trace.append(f"{destination.name}: closed; waiting for its next opening at {_local(opens, destination)}")
    return _done(RoutePlan(DEFER, label, chain, opens, customer_number=number), trace)


def _route_chain(
    rules: Rules,
    chain: tuple[Destination, ...],
    label: str,
    number: str,
    now: datetime,
    at: datetime,
    trace: list[str] | None,
) -> RoutePlan:
    open_steps: list[Destination] = []
    for position, step in enumerate(chain):
        if step.is_open(at):
            open_steps.append(step)
            if trace is not None:
                trace.append(f"{step.name}: open" + ("" if position == 0 else " (overflow)"))
            continue
        if not open_steps and step.when_closed == "wait":
            opens = step.next_open(at)
            if opens is None:
                if trace is not None:
                    trace.append(f"{step.name}: closed and does not open within the horizon")
                return _unavailable(rules, label, number, trace)
            if trace is not None:
                trace.append(f"{step.name}: closed; when_closed: wait -> next opening {_local(opens, step)}")
            return _done(RoutePlan(DEFER, label, chain[position:], opens, customer_number=number), trace)
        if trace is not None:
            trace.append(f"{step.name}: closed, skipped" + (" (overflow continues)" if step.overflow else ""))
    if open_steps:
        steps = chain if len(open_steps) == len(chain) else tuple(open_steps)
        action = DIAL if at == now else DEFER
        return _done(RoutePlan(action, label, steps, at, customer_number=number), trace)
    # nobody in the chain is open: wait for the earliest opening among them
    best: datetime | None = None
    for step in chain:
        opens = step.next_open(at)
        if opens is not None and (best is None or opens < best):
            best = opens
    if best is None:
        if trace is not None:
            trace.append("no destination in the chain opens within the horizon")
        return _unavailable(rules, label, number, trace)
    if trace is not None:
        trace.append(f"everyone in the chain is closed; deferred to the earliest opening {best.isoformat()}")
    return _done(RoutePlan(DEFER, label, chain, best, customer_number=number), trace)


def _unavailable(rules: Rules, label: str, number: str, trace: list[str] | None) -> RoutePlan:
    plan = RoutePlan(REJECT, label, reject_message=rules.defaults.unavailable_message, customer_number=number)
    return _done(plan, trace)


def _done(plan: RoutePlan, trace: list[str] | None) -> RoutePlan:
    if trace is None:
        return plan
    trace.append("plan: " + plan.summary())
    return RoutePlan(
        plan.action, plan.rule, plan.chain, plan.start_at, plan.reject_message, plan.customer_number, tuple(trace)
    )


def _local(at: datetime, destination: Destination) -> str:
    if destination.schedule is None:
        return at.isoformat()
    return at.astimezone(destination.schedule.tz).strftime("%a %Y-%m-%d %H:%M %Z")
