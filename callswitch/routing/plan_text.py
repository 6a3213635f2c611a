"""Presenting a :class:`RoutePlan`: readable text for admins and a JSON-ready dict."""

from __future__ import annotations

from typing import Any

from callswitch.routing.model import DEFER, DIAL, Destination, RoutePlan


def plan_as_dict(plan: RoutePlan) -> dict[str, Any]:
    return {
        "action": plan.action,
        "rule": plan.rule,
        "start_at": plan.start_at.isoformat() if plan.start_at else None,
        "reject_message": plan.reject_message,
        "chain": [_step_dict(plan, d) for d in plan.chain],
        "trace": list(plan.trace),
    }


def _step_dict(plan: RoutePlan, d: Destination) -> dict[str, Any]:
    return {
        "destination": d.name,
        "label": d.label,
        "strategy": d.strategy,
        "rounds": d.rounds,
        "mode": d.mode,
        "members": [{"dial": m.dial, "name": m.name, "ring_timeout": m.ring_timeout} for m in d.members],
        "trunks": [t.name for t in d.trunks],
        "dial_strings": [_dial_string(d, m.dial) for m in d.members],
        "caller_id_agent": plan.agent_caller_id(d),
        "caller_id_customer": plan.customer_caller_id(d),
        "announce": {"agent": d.announce.agent, "customer": d.announce.customer},
        "notify_email": d.notify_email,
        "schedule": d.schedule.name if d.schedule else None,
    }


def _dial_string(d: Destination, dial: str) -> str:
    if not dial.startswith("+") or not d.trunks:
        return dial
    return d.trunks[0].dial_string(dial)


def format_plan(plan: RoutePlan) -> str:
    lines: list[str] = []
    if plan.trace:
        lines.append("Trace:")
        lines.extend(f"  {t}" for t in plan.trace)
        lines.append("")
    if plan.rejected:
        lines.append(f"Decision: REJECT by {plan.rule}")
        lines.append(f"  message to the visitor: {plan.reject_message}")
        return "\n".join(lines)
    when = plan.start_at.isoformat() if plan.start_at else "?"
    if plan.action == DIAL:
        lines.append(f"Decision: DIAL now ({when}) by {plan.rule}")
    elif plan.action == DEFER:
        first = plan.chain[0] if plan.chain else None
        if plan.start_at and first is not None and first.schedule is not None:
            local = plan.start_at.astimezone(first.schedule.tz).strftime("%a %Y-%m-%d %H:%M %Z")
            when = f"{when} = {local}"
        lines.append(f"Decision: DEFER until {when} by {plan.rule} (routed again then)")
    for n, d in enumerate(plan.chain, start=1):
        title = f" ({d.label})" if d.label else ""
        lines.append(f"  {n}. {d.name}{title}: {d.strategy}, {d.rounds} round(s), {d.mode}")
        members = ", ".join(
            f"{m.name + ' ' if m.name else ''}{_dial_string(d, m.dial)} ({m.ring_timeout}s)" for m in d.members
        )
        lines.append(f"     members: {members}")
        if d.trunks:
            lines.append(f"     trunks: {' > '.join(t.name for t in d.trunks)}")
        lines.append(
            f"     caller ID: agent sees {plan.agent_caller_id(d)}, customer sees {plan.customer_caller_id(d) or '-'}"
        )
        if d.announce.agent or d.announce.customer:
            lines.append(f"     announce: agent={d.announce.agent or '-'} customer={d.announce.customer or '-'}")
        if d.schedule:
            lines.append(f"     schedule: {d.schedule.name}, when closed: {d.when_closed}")
        if d.notify_email:
            lines.append(f"     notify: {d.notify_email}")
    return "\n".join(lines)
