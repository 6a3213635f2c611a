"""Compiling ``defaults``, ``trunks`` and ``schedules`` of a routing file."""

from __future__ import annotations

import re
from datetime import date, timedelta, tzinfo
from functools import partial

import phonenumbers

from callswitch.routing.model import MODES, STRATEGIES, WHEN_CLOSED, Trunk
from callswitch.routing.parse_context import Context, a_date, e164, parse_with, unknown, zone
from callswitch.routing.rules import Defaults
from callswitch.routing.schedule import Schedule
from callswitch.routing.timespec import (
    DAY_NAMES,
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    Interval,
    check_no_overlap,
    parse_days,
    parse_intervals,
)
from callswitch.yamlsrc import Invalid, Node, collect

MAX_EXCEPTION_DAYS = 366
_TEMPLATE_RE = re.compile(r"\{(\w*)\}")


def parse_defaults(ctx: Context, root: Node) -> None:
    node = root["defaults"].mapping(
        {"region", "timezone", "trunk", "ring_timeout", "rounds", "strategy", "mode", "when_closed",
         "unavailable_message"},
        required=False,
    )
    region = collect(lambda: parse_with(node["region"], _region, "US"))
    tz_node = node["timezone"]
    timezone = None
    if tz_node.present and collect(lambda: parse_with(tz_node, zone)) is not None:
        timezone = str(tz_node.value).strip()
    message = collect(lambda: node["unavailable_message"].str(Defaults.unavailable_message))
    ctx.defaults = Defaults(
        region=region or "US", timezone=timezone, unavailable_message=message or Defaults.unavailable_message
    )
    dd = ctx.destination_defaults
    dd.trunk = collect(lambda: node["trunk"].str(None))
    dd.ring_timeout = collect(lambda: node["ring_timeout"].int(dd.ring_timeout, min=1, max=600)) or dd.ring_timeout
    dd.rounds = collect(lambda: node["rounds"].int(dd.rounds, min=1, max=20)) or dd.rounds
    dd.strategy = collect(lambda: node["strategy"].choice(STRATEGIES, dd.strategy)) or dd.strategy
    dd.mode = collect(lambda: node["mode"].choice(MODES, dd.mode)) or dd.mode
    dd.when_closed = collect(lambda: node["when_closed"].choice(WHEN_CLOSED, dd.when_closed)) or dd.when_closed


def _region(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not an ISO 3166 region code known to phonenumbers (e.g. DE, US)")
    return value.upper()


# -- trunks -----------------------------------------------------------------------------------------


def parse_trunks(ctx: Context, root: Node) -> None:
    node = root["trunks"].mapping(required=False)
    failovers: dict[str, list[tuple[str, Node]]] = {}
    for name, t in node.items():
        parsed = collect(partial(_trunk, name, t))
        if parsed is not None:
            trunk, refs = parsed
            ctx.trunks[name] = trunk
            failovers[name] = refs
    for name, refs in failovers.items():
        for ref, ref_node in refs:
            if ref == name:
                ref_node.fail("a trunk cannot fail over to itself")
            elif ref not in ctx.trunks and ref not in node.value:
                ref_node.fail(unknown("trunk", ref, ctx.trunks))
            else:
                ctx.used_trunks.add(ref)
    if ctx.destination_defaults.trunk is not None and ctx.destination_defaults.trunk not in node.value:
        root["defaults"]["trunk"].fail(unknown("trunk", ctx.destination_defaults.trunk, ctx.trunks))


def _trunk(name: str, node: Node) -> tuple[Trunk, list[tuple[str, Node]]]:
    node.mapping({"dial", "caller_id", "max_channels", "max_cps", "failover"})
    dial = node["dial"].str()
    placeholders = _TEMPLATE_RE.findall(dial)
    if placeholders not in (["number"], ["digits"]):
        raise node["dial"].fail(
            "must contain {number} (E.164 with '+') or {digits} (without '+') exactly once, "
            "e.g. 'PJSIP/{number}@carrier-a'"
        )
    caller_id = collect(lambda: parse_with(node["caller_id"], e164, None))
    max_channels = collect(lambda: node["max_channels"].int(None, min=1))
    max_cps = collect(lambda: node["max_cps"].number(None, min=0.01))
    refs: list[tuple[str, Node]] = []
    seen: set[str] = set()
    for item in node["failover"].sequence(required=False):
        ref = collect(item.str)
        if ref is None:
            continue
        if ref in seen:
            item.fail(f"trunk {ref!r} is listed twice")
            continue
        seen.add(ref)
        refs.append((ref, item))
    trunk = Trunk(name, dial, caller_id, max_channels, max_cps, tuple(r for r, _ in refs))
    return trunk, refs


# -- schedules --------------------------------------------------------------------------------------


def parse_schedules(ctx: Context, root: Node) -> None:
    node = root["schedules"].mapping(required=False)
    for name, s in node.items():
        schedule = collect(partial(_schedule, ctx, name, s))
        if schedule is None:
            ctx.broken_schedules.add(name)
        else:
            ctx.schedules[name] = schedule


def default_zone(ctx: Context, node: Node) -> tzinfo:
    """The ``timezone`` under ``node``, else ``defaults.timezone``; records an error if neither."""
    tz_node = node["timezone"]
    if tz_node.present:
        return parse_with(tz_node, zone)
    if ctx.defaults.timezone:
        return zone(ctx.defaults.timezone)
    raise node.fail("needs a timezone (or set defaults.timezone)")


def _schedule(ctx: Context, name: str, node: Node) -> Schedule:
    node.mapping({"timezone", "weekly", "exceptions", "label"})
    tz = default_zone(ctx, node)
    weekly = parse_weekly(node["weekly"], required=not node["exceptions"].present)
    exceptions, notes = _exceptions(node["exceptions"])
    schedule = Schedule(name, tz, weekly, exceptions, notes)
    if not schedule.ever_open():
        raise node.fail("is never open: give it weekly hours or exceptions with hours")
    return schedule


def parse_weekly(node: Node, *, required: bool = True) -> tuple[tuple[Interval, ...], ...]:
    """``{mon-fri: "09:00-18:00", sat: "10:00-14:00", sun: closed}`` -> 7 tuples of intervals."""
    mapping = node.mapping(required=required)
    days: list[tuple[Interval, ...]] = [()] * 7
    set_by: dict[int, str] = {}
    failed = False
    for key, value in mapping.items():
        try:
            numbers = parse_with(value, partial(_days_of_key, key))
            intervals = parse_with(value, parse_intervals)
        except Invalid:
            failed = True
            continue
        for d in numbers:
            if d in set_by:
                value.fail(f"{DAY_NAMES[d]} is already set by {set_by[d]!r}")
                failed = True
                continue
            set_by[d] = key
            days[d] = intervals
    if failed:
        raise Invalid("weekly")
    spans = [
        (d * MINUTES_PER_DAY + iv.start, d * MINUTES_PER_DAY + iv.start + iv.length, f"{DAY_NAMES[d]} {iv}")
        for d in range(7)
        for iv in days[d]
    ]
    if spans:
        parse_with(node, lambda _v: check_no_overlap(spans, period=MINUTES_PER_WEEK))
    return tuple(days)


def _days_of_key(key: str, _value: object) -> tuple[int, ...]:
    return parse_days(key)


def _exceptions(node: Node) -> tuple[dict[date, tuple[Interval, ...]], dict[date, str]]:
    out: dict[date, tuple[Interval, ...]] = {}
    notes: dict[date, str] = {}
    where: dict[date, int] = {}
    failed = False
    for i, item in enumerate(node.sequence(required=False)):
        parsed = collect(partial(_exception, item))
        if parsed is None:
            failed = True
            continue
        days, intervals, note = parsed
        for d in days:
            if d in out:
                item.fail(f"{d.isoformat()} is already covered by exceptions[{where[d]}]")
                failed = True
                break
            out[d] = intervals
            where[d] = i
            if note:
                notes[d] = note
    if failed:
        raise Invalid("exceptions")
    return out, notes


def _exception(node: Node) -> tuple[list[date], tuple[Interval, ...], str | None]:
    node.mapping({"date", "from", "to", "hours", "closed", "note"})
    if node["date"].present:
        if node["from"].present or node["to"].present:
            raise node.fail("give either date or from/to, not both")
        days = [parse_with(node["date"], a_date)]
    elif node["from"].present or node["to"].present:
        first = parse_with(node["from"], a_date)
        last = parse_with(node["to"], a_date)
        if last < first:
            raise node["to"].fail(f"{last.isoformat()} is before from {first.isoformat()} (reversed range)")
        count = (last - first).days + 1
        if count > MAX_EXCEPTION_DAYS:
            raise node["to"].fail(f"the range covers {count} days; at most {MAX_EXCEPTION_DAYS} are allowed")
        days = [first + timedelta(days=n) for n in range(count)]
    else:
        raise node.fail("needs date, or from and to")
    has_hours, closed = node["hours"].present, node["closed"].present
    if has_hours == closed:
        raise node.fail("needs exactly one of hours or closed: true")
    if closed:
        if node["closed"].bool() is not True:
            raise node["closed"].fail("write closed: true, or give hours")
        intervals: tuple[Interval, ...] = ()
    else:
        intervals = parse_with(node["hours"], parse_intervals)
    note = node["note"].str(None)
    return days, intervals, note


def check_trunk_name(ctx: Context, node: Node) -> Trunk:
    name = node.str()
    trunk = ctx.trunks.get(name)
    if trunk is None:
        raise node.fail(unknown("trunk", name, ctx.trunks))
    ctx.used_trunks.add(name)
    return trunk
