"""Compiling ``destinations``: members, hunt strategy, schedule, caller IDs, overflow chains."""

from __future__ import annotations

import re
from functools import partial

from callswitch.routing.model import MODES, STRATEGIES, WHEN_CLOSED, Announcements, Destination, Member, Trunk
from callswitch.routing.parse_context import Context, e164, parse_with, unknown
from callswitch.yamlsrc import Invalid, Node, collect

ENDPOINT_TECHS = ("PJSIP", "SIP", "IAX2", "DAHDI", "Local")
_ENDPOINT_RE = re.compile(r"^(?P<tech>[A-Za-z0-9]+)/\S+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CUSTOMER = "customer"

_KEYS = {
    "label", "members", "strategy", "ring_timeout", "rounds", "schedule", "when_closed", "announce",
    "caller_id", "mode", "notify_email", "overflow", "trunk",
}


def parse_destinations(ctx: Context, root: Node) -> None:
    node = root["destinations"].mapping()
    overflow_nodes: dict[str, Node] = {}
    for name, d in node.items():
        destination = collect(partial(_destination, ctx, name, d))
        if destination is None:
            ctx.broken_destinations.add(name)
            continue
        ctx.destinations[name] = destination
        if destination.overflow is not None:
            overflow_nodes[name] = d["overflow"]
    if not node.value:
        node.fail("define at least one destination")
    for name, ref_node in overflow_nodes.items():
        target = ctx.destinations[name].overflow
        assert target is not None
        if target == name:
            ref_node.fail("a destination cannot overflow to itself")
        elif target not in ctx.destinations and target not in ctx.broken_destinations:
            ref_node.fail(unknown("destination", target, ctx.destinations))
    # loops in overflow chains
    reported: set[str] = set()
    for name in ctx.destinations:
        seen = [name]
        current = ctx.destinations[name].overflow
        while current is not None and current in ctx.destinations:
            if current in seen:
                loop = [*seen[seen.index(current):], current]
                if current not in reported and current != seen[-1]:
                    overflow_nodes[seen[-1]].fail("overflow chain loops: " + " -> ".join(loop))
                    reported.update(loop)
                break
            seen.append(current)
            current = ctx.destinations[current].overflow


def _destination(ctx: Context, name: str, node: Node) -> Destination:
    node.mapping(_KEYS)
    dd = ctx.destination_defaults
    ring_timeout = collect(lambda: node["ring_timeout"].int(dd.ring_timeout, min=1, max=600))
    members = _members(node["members"], ring_timeout or dd.ring_timeout)
    strategy = collect(lambda: node["strategy"].choice(STRATEGIES, dd.strategy))
    rounds = collect(lambda: node["rounds"].int(dd.rounds, min=1, max=20))
    mode = collect(lambda: node["mode"].choice(MODES, dd.mode))
    when_closed = collect(lambda: node["when_closed"].choice(WHEN_CLOSED, dd.when_closed))
    schedule = None
    if node["schedule"].present:
        schedule_name = collect(node["schedule"].str)
        if schedule_name is not None:
            schedule = ctx.schedules.get(schedule_name)
            if schedule is None and schedule_name not in ctx.broken_schedules:
                node["schedule"].fail(unknown("schedule", schedule_name, ctx.schedules))
            ctx.used_schedules.add(schedule_name)
    announce = collect(lambda: _announce(node["announce"]))
    caller_ids = collect(lambda: _caller_ids(node["caller_id"]))
    email = collect(lambda: parse_with(node["notify_email"], _email, None))
    overflow = collect(lambda: node["overflow"].str(None))
    label = collect(lambda: node["label"].str(None))
    trunks = _trunks(ctx, node, members or [])
    if (
        members is None or ring_timeout is None or strategy is None or rounds is None or mode is None
        or when_closed is None or announce is None or caller_ids is None or trunks is None
    ):
        raise Invalid(name)
    if when_closed == "wait" and schedule is None and node["when_closed"].present:
        node["when_closed"].warn("has no effect without a schedule")
    return Destination(
        name=name,
        members=tuple(members),
        strategy=strategy,
        rounds=rounds,
        trunks=trunks,
        mode=mode,
        schedule=schedule,
        when_closed=when_closed,
        agent_caller_id=caller_ids[0],
        customer_caller_id=caller_ids[1],
        announce=announce,
        notify_email=email,
        overflow=overflow,
        label=label,
    )


def _members(node: Node, ring_timeout: int) -> list[Member] | None:
    items = collect(node.sequence)
    if items is None:
        return None
    if not items:
        node.fail("needs at least one member")
        return None
    members: list[Member] = []
    seen: dict[str, int] = {}
    failed = False
    for i, item in enumerate(items):
        member = collect(partial(_member, item, ring_timeout))
        if member is None:
            failed = True
            continue
        if member.dial in seen:
            item.fail(f"{member.dial} is already members[{seen[member.dial]}]")
            failed = True
            continue
        seen[member.dial] = i
        members.append(member)
    return None if failed else members


def _member(node: Node, ring_timeout: int) -> Member:
    if isinstance(node.value, dict):
        node.mapping({"dial", "name", "ring_timeout"})
        dial = parse_with(node["dial"], dial_target)
        name = node["name"].str(None)
        timeout = node["ring_timeout"].int(ring_timeout, min=1, max=600)
        return Member(dial, timeout, name)
    return Member(parse_with(node, dial_target), ring_timeout)


def dial_target(value: object) -> str:
    """An E.164 number or an Asterisk endpoint such as ``PJSIP/201``."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"YAML read {value} as a number; write members as quoted E.164 strings ('+4930...')")
    if not isinstance(value, str):
        raise ValueError("expected an E.164 number ('+4930123456') or an endpoint ('PJSIP/201')")
    text = value.strip()
    if text.startswith("+"):
        return e164(text)
    m = _ENDPOINT_RE.match(text)
    if m and m.group("tech") in ENDPOINT_TECHS:
        return text
    if m:
        raise ValueError(f"{text!r}: unknown channel technology {m.group('tech')!r} (use {', '.join(ENDPOINT_TECHS)})")
    raise ValueError(f"{text!r} is neither an E.164 number ('+4930123456') nor an endpoint ('PJSIP/201')")


def _announce(node: Node) -> Announcements:
    m = node.mapping({"agent", "customer"}, required=False)
    return Announcements(m["agent"].str(None), m["customer"].str(None))


def _caller_ids(node: Node) -> tuple[str | None, str | None]:
    m = node.mapping({"agent", "customer"}, required=False)
    agent = m["agent"].str(None)
    if agent is not None and agent != CUSTOMER:
        agent = parse_with(m["agent"], e164)
    customer = parse_with(m["customer"], e164, None)
    return (None if agent == CUSTOMER else agent), customer


def _email(value: object) -> str:
    if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value.strip()


def _trunks(ctx: Context, node: Node, members: list[Member]) -> tuple[Trunk, ...] | None:
    trunk_node = node["trunk"]
    name = collect(lambda: trunk_node.str(None)) if trunk_node.present else ctx.destination_defaults.trunk
    if name is None and trunk_node.present:
        return None
    if name is None and ctx.trunks:
        name = next(iter(ctx.trunks))
    needs_trunk = any(not m.is_endpoint for m in members)
    if name is None:
        if needs_trunk:
            node["members"].fail("phone numbers need a trunk to be dialled: define trunks")
            return None
        return ()
    trunk = ctx.trunks.get(name)
    if trunk is None:
        if trunk_node.present:
            trunk_node.fail(unknown("trunk", name, ctx.trunks))
        return None  # defaults.trunk is reported where it is defined
    ctx.used_trunks.add(name)
    chain = [trunk]
    for ref in trunk.failover:
        failover = ctx.trunks.get(ref)
        if failover is not None and failover not in chain:
            chain.append(failover)
    return tuple(chain)
