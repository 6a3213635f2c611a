"""Compiling the ``when`` part of a rule into :mod:`~callswitch.routing.conditions` objects."""

from __future__ import annotations

import fnmatch
import itertools
import re
from functools import partial
from typing import Any

from callswitch.routing.conditions import (
    NUMBER_OPS,
    All,
    Always,
    AnyOf,
    Condition,
    Contains,
    Glob,
    InRange,
    InTable,
    Not,
    NumberCondition,
    OneOf,
    Prefix,
    Regex,
    ScheduleCondition,
    TextCondition,
    TextOp,
    TimeCondition,
)
from callswitch.routing.fields import FIELDS, NUMBER, TEXT, Field, attribute_field
from callswitch.routing.parse_context import Context, did_you_mean, parse_with, unknown
from callswitch.routing.parse_schedules import default_zone
from callswitch.routing.schedule import Schedule
from callswitch.routing.timespec import MINUTES_PER_DAY, Interval, parse_days, parse_intervals
from callswitch.yamlsrc import Invalid, Node, collect

COMBINATORS = ("all", "any", "not")
SPECIAL = ("time", "schedule_open", "schedule_closed", "attributes")
WHEN_KEYS = {*FIELDS, *COMBINATORS, *SPECIAL}
TEXT_OPS = {"is", "prefix", "contains", "regex", "glob", "range", "in_table", "present"}
NUMBER_KEYS = {*NUMBER_OPS, "between", "present"}
_QUOTE_HINT = "write codes as quoted strings ('01234'): YAML reads unquoted digits as a number"


def parse_when(ctx: Context, node: Node) -> Condition:
    """A mapping of tests that must all hold. ``when: {}`` or no ``when`` always holds."""
    mapping = node.mapping(WHEN_KEYS, required=False)
    children: list[Condition] = []
    failed = False
    for key, child in mapping.items():
        if key not in WHEN_KEYS:
            failed = True  # already reported as an unknown key
            continue
        condition = collect(partial(_one, ctx, key, child))
        if condition is None:
            failed = True
        else:
            children.append(condition)
    if failed:
        raise Invalid(str(node.path))
    if not children:
        return Always()
    return children[0] if len(children) == 1 else All(tuple(children))


def _one(ctx: Context, key: str, node: Node) -> Condition:
    if key in ("all", "any"):
        items = node.sequence()
        if not items:
            raise node.fail(f"'{key}' needs at least one condition")
        parts = [collect(partial(parse_when, ctx, item)) for item in items]
        if any(p is None for p in parts):
            raise Invalid(key)
        children = tuple(p for p in parts if p is not None)
        return All(children) if key == "all" else AnyOf(children)
    if key == "not":
        if not isinstance(node.value, dict) or not node.value:
            raise node.fail("'not' needs a mapping of conditions")
        return Not(parse_when(ctx, node))
    if key == "time":
        return _time(ctx, node)
    if key in ("schedule_open", "schedule_closed"):
        name = node.str()
        schedule = ctx.schedules.get(name)
        if schedule is None:
            if name in ctx.broken_schedules:
                raise Invalid(name)
            raise node.fail(unknown("schedule", name, ctx.schedules))
        ctx.used_schedules.add(name)
        return ScheduleCondition(schedule, want_open=key == "schedule_open")
    if key == "attributes":
        mapping = node.mapping()
        parts = []
        for name, test in mapping.items():
            kind = NUMBER if _is_numeric_test(test.value) else TEXT
            parts.append(collect(partial(field_test, ctx, attribute_field(name, kind), test)))
        if any(p is None for p in parts) or not parts:
            if not parts:
                raise node.fail("name at least one attribute")
            raise Invalid(key)
        conditions = tuple(p for p in parts if p is not None)
        return conditions[0] if len(conditions) == 1 else All(conditions)
    return field_test(ctx, FIELDS[key], node)


def _is_numeric_test(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return False  # a bare value is compared as text, e.g. plan: 3
    return isinstance(value, dict) and bool(value) and all(k in NUMBER_KEYS for k in value) and not (
        set(value) <= {"present"}
    )


def field_test(ctx: Context, field: Field, node: Node) -> Condition:
    if field.kind == NUMBER:
        return _number_test(field, node)
    return _text_test(ctx, field, node)


# -- text ---------------------------------------------------------------------------------------------


def _text_value(field: Field, node: Node) -> str:
    v = node.value
    if isinstance(v, int) and not isinstance(v, bool) and field.name == "postal_code":
        raise node.fail(_QUOTE_HINT)
    return node.str()


def _text_list(field: Field, node: Node) -> list[str]:
    if isinstance(node.value, list):
        items = node.sequence()
        if not items:
            raise node.fail("the list is empty")
        values = [collect(partial(_text_value, field, item)) for item in items]
        if any(v is None for v in values):
            raise Invalid("list")
        return [v for v in values if v is not None]
    return [_text_value(field, node)]


def _text_test(ctx: Context, field: Field, node: Node) -> Condition:
    if not isinstance(node.value, dict):
        values = _text_list(field, node)
        return TextCondition(field, (_one_of(field, values),))
    mapping = node.mapping(TEXT_OPS)
    if not node.value:
        raise node.fail(f"give a value or one of: {', '.join(sorted(TEXT_OPS))}")
    ops: list[TextOp] = []
    failed = False
    present = None
    for key, child in mapping.items():
        if key not in TEXT_OPS:
            failed = True
            continue
        if key == "present":
            present = collect(child.bool)
            failed = failed or present is None
            continue
        op = collect(partial(_text_op, ctx, field, key, child))
        if op is None:
            failed = True
        else:
            ops.append(op)
    if failed:
        raise Invalid(field.name)
    if present is False and ops:
        raise node.fail("present: false cannot be combined with other tests")
    return TextCondition(field, tuple(ops), present)


def _one_of(field: Field, values: list[str]) -> OneOf:
    return OneOf(frozenset(field.norm(v) for v in values), tuple(values), field.primary_subtag)


def _text_op(ctx: Context, field: Field, key: str, node: Node) -> TextOp:
    if key == "is":
        return _one_of(field, _text_list(field, node))
    if key == "prefix":
        return Prefix(tuple(field.norm(v) for v in _text_list(field, node)))
    if key == "contains":
        return Contains(tuple(field.norm(v) for v in _text_list(field, node)))
    if key == "regex":
        pattern = node.str()
        try:
            return Regex(re.compile(pattern))
        except re.error as exc:
            raise node.fail(f"regex {pattern!r} does not compile: {exc}") from None
    if key == "glob":
        patterns = _text_list(field, node)
        combined = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
        return Glob(tuple(patterns), re.compile(combined, re.IGNORECASE))
    if key == "range":
        return _ranges(field, node)
    if key == "in_table":
        return _in_table(ctx, node)
    raise AssertionError(key)  # pragma: no cover


def _ranges(field: Field, node: Node) -> InRange:
    items = node.sequence()
    if items and all(isinstance(i.value, list) for i in items):
        pairs = items
    elif len(items) == 2 and not any(isinstance(i.value, list) for i in items):
        pairs = [node]
    else:
        raise node.fail("write a range as [from, to] or a list of ranges [[from, to], ...]")
    ranges: list[tuple[str, str, Node]] = []
    for pair in pairs:
        bounds = pair.sequence()
        if len(bounds) != 2:
            raise pair.fail("a range is [from, to]")
        lo, hi = (field.norm(_text_value(field, b)) for b in bounds)
        if len(lo) != len(hi):
            raise pair.fail(f"range bounds {lo!r} and {hi!r} must have the same length")
        if lo > hi:
            raise pair.fail(f"range {lo!r}..{hi!r} is reversed")
        ranges.append((lo, hi, pair))
    ordered = sorted(ranges, key=lambda r: (len(r[0]), r[0]))
    for (lo1, hi1, _n1), (lo2, hi2, n2) in itertools.pairwise(ordered):
        if len(lo1) == len(lo2) and lo2 <= hi1:
            raise n2.fail(f"range {lo2!r}..{hi2!r} overlaps {lo1!r}..{hi1!r}")
    return InRange(tuple((lo, hi) for lo, hi, _ in ranges))


def _in_table(ctx: Context, node: Node) -> InTable:
    if isinstance(node.value, dict):
        mapping = node.mapping({"table", "column", "is"})
        name_node = mapping["table"]
    else:
        mapping = None
        name_node = node
    name = name_node.str()
    parsed = ctx.tables.get(name)
    if parsed is None:
        if name in ctx.broken_tables:
            raise Invalid(name)
        raise name_node.fail(unknown("table", name, ctx.tables))
    ctx.used_tables.add(name)
    table = parsed.table
    if mapping is None:
        return InTable(table)
    column = mapping["column"].str()
    if column not in table.columns:
        raise mapping["column"].fail(
            f"table {name!r} has no column {column!r}{did_you_mean(column, table.columns)}"
        )
    values = mapping["is"]
    wanted = [v.str() for v in values.sequence()] if isinstance(values.value, list) else [values.str()]
    return InTable(table, table.column_index(column), column, frozenset(w.casefold() for w in wanted))


# -- numbers -------------------------------------------------------------------------------------------


def _number_test(field: Field, node: Node) -> Condition:
    v = node.value
    if isinstance(v, int | float) and not isinstance(v, bool):
        return NumberCondition(field, (("eq", float(v)),))
    if not isinstance(v, dict) or not v:
        raise node.fail(f"expected a number or comparisons ({', '.join(sorted(NUMBER_KEYS))})")
    mapping = node.mapping(NUMBER_KEYS)
    comparisons: list[tuple[str, float]] = []
    present = None
    for key, child in mapping.items():
        if key not in NUMBER_KEYS:
            raise Invalid(key)
        if key == "present":
            present = child.bool()
        elif key == "between":
            bounds = child.sequence()
            if len(bounds) != 2:
                raise child.fail("write between: [low, high]")
            lo, hi = bounds[0].number(), bounds[1].number()
            if lo > hi:
                raise child.fail(f"between [{_n(lo)}, {_n(hi)}] is reversed")
            comparisons += [("gte", lo), ("lte", hi)]
        else:
            comparisons.append((key, child.number()))
    if present is False and comparisons:
        raise node.fail("present: false cannot be combined with comparisons")
    low = max((b for op, b in comparisons if op in ("gt", "gte")), default=None)
    high = min((b for op, b in comparisons if op in ("lt", "lte")), default=None)
    if low is not None and high is not None:
        strict = any(op in ("gt", "lt") and b in (low, high) for op, b in comparisons)
        if low > high or (low == high and strict):
            raise node.fail(f"can never match: no {field.name} is above {_n(low)} and below {_n(high)}")
    return NumberCondition(field, tuple(comparisons), present)


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# -- time ----------------------------------------------------------------------------------------------


def _time(ctx: Context, node: Node) -> TimeCondition:
    mapping = node.mapping({"days", "hours", "timezone"})
    if not mapping["days"].present and not mapping["hours"].present:
        raise node.fail("give days, hours or both")
    tz = default_zone(ctx, mapping)
    days: tuple[int, ...] = tuple(range(7))
    days_text = ""
    if mapping["days"].present:
        day_node = mapping["days"]
        texts = day_node.str_list() if isinstance(day_node.value, list) else [day_node.str()]
        days_text = ",".join(texts)
        days = parse_with(day_node, lambda _v: parse_days(days_text))
    hours: tuple[Interval, ...] = (Interval(0, MINUTES_PER_DAY),)
    hours_text = ""
    if mapping["hours"].present:
        hours = parse_with(mapping["hours"], parse_intervals)
        hours_text = ", ".join(str(h) for h in hours)
    weekly = tuple(hours if d in days else () for d in range(7))
    text = " ".join(p for p in (days_text or "every day", hours_text or "all day") if p)
    zone_name = getattr(tz, "key", str(tz))
    return TimeCondition(Schedule(f"time {text}", tz, weekly), f"{text} ({zone_name})")
