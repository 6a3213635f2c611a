"""Compiling ``rules`` (ordered, first match wins) and the required ``default``."""

from __future__ import annotations

from functools import partial

from callswitch.routing.conditions import Always
from callswitch.routing.fields import FIELDS, field_named
from callswitch.routing.model import REJECT, Destination
from callswitch.routing.parse_conditions import parse_when
from callswitch.routing.parse_context import Context, did_you_mean, unknown
from callswitch.routing.rules import DEFER, ROUTE, Action, Fixed, Outcome, RouteByTable, Rule
from callswitch.yamlsrc import Invalid, Node, collect

ACTIONS = ("route", "defer", "reject")


def parse_rules(ctx: Context, root: Node) -> list[Rule]:
    items = root["rules"].sequence(required=False)
    rules: list[Rule] = []
    names: dict[str, int] = {}
    always: Rule | None = None
    for i, item in enumerate(items):
        rule = collect(partial(_rule, ctx, i, item))
        if always is not None:
            item.warn(f"unreachable: {always.label} above always matches")
        if rule is None:
            continue
        if rule.name is not None:
            if rule.name in names:
                item["name"].fail(f"name {rule.name!r} is already used by rules[{names[rule.name]}]")
            names[rule.name] = i
        if rule.unconditional and always is None:
            always = rule
        rules.append(rule)
    if always is not None and root["default"].present:
        root["default"].warn(f"never used: {always.label} always matches")
    return rules


def _rule(ctx: Context, index: int, node: Node) -> Rule:
    node.mapping({"name", "when", "note", *ACTIONS})
    name = collect(lambda: node["name"].str(None))
    given = [k for k in ACTIONS if node[k].present]
    if len(given) != 1:
        raise node.fail(
            "needs exactly one action: route, defer or reject"
            + (f" (found {', '.join(given)})" if given else "")
        )
    condition = collect(lambda: parse_when(ctx, node["when"]))
    action = parse_action(ctx, node, given[0], allow_table=True)
    if condition is None:
        raise Invalid("when")
    location = ctx.issues.doc.location(node.path)
    where = f"{location.file}:{location.line}" if location else "?"
    unconditional = isinstance(condition, Always) and action.always_applies
    return Rule(index, name, condition, action, where, unconditional)


def parse_default(ctx: Context, root: Node) -> Action:
    node = root["default"]
    if not node.present:
        raise node.fail("required: say where requests go when no rule matches (a destination name)")
    if isinstance(node.value, str):
        return Fixed(Outcome(ROUTE, _destination(ctx, node)))
    node.mapping(set(ACTIONS))
    given = [k for k in ACTIONS if node[k].present]
    if len(given) != 1:
        raise node.fail("give a destination name, or exactly one of route, defer or reject")
    return parse_action(ctx, node, given[0], allow_table=False)


def parse_action(ctx: Context, node: Node, kind: str, *, allow_table: bool) -> Action:
    target = node[kind]
    if kind == "reject":
        return Fixed(Outcome(REJECT, message=target.str()))
    if kind == "route" and isinstance(target.value, dict):
        if not allow_table:
            raise target.fail("the default cannot use a table: a lookup may find nothing")
        return _route_by_table(ctx, target)
    destination = _destination(ctx, target)
    if kind == "defer":
        if destination.schedule is None:
            target.warn(f"destination {destination.name!r} has no schedule, so defer routes at once")
        return Fixed(Outcome(DEFER, destination))
    return Fixed(Outcome(ROUTE, destination))


def _destination(ctx: Context, node: Node) -> Destination:
    name = node.str()
    destination = ctx.destinations.get(name)
    if destination is None:
        if name in ctx.broken_destinations:
            raise Invalid(name)
        raise node.fail(unknown("destination", name, ctx.destinations))
    ctx.used_destinations.add(name)
    return destination


def _route_by_table(ctx: Context, node: Node) -> RouteByTable:
    node.mapping({"table", "by", "column"})
    name = node["table"].str()
    parsed = ctx.tables.get(name)
    if parsed is None:
        if name in ctx.broken_tables:
            raise Invalid(name)
        raise node["table"].fail(unknown("table", name, ctx.tables))
    ctx.used_tables.add(name)
    table = parsed.table
    column = node["column"].str()
    if column not in table.columns:
        raise node["column"].fail(f"table {name!r} has no column {column!r}{did_you_mean(column, table.columns)}")
    by_node = node["by"]
    by = by_node.str(None) or table.key_column
    field = field_named(by)
    if field is None:
        where = by_node if by_node.present else node
        hint = "" if by_node.present else f" (the table's key column {by!r} is not a request field; add by:)"
        raise where.fail(f"{by!r} is not a request field{hint}{did_you_mean(by, FIELDS)}")
    ctx.destination_columns.setdefault((name, column), node.path)
    outcomes = {n: Outcome(ROUTE, d) for n, d in ctx.destinations.items()}
    return RouteByTable(table, field, column, outcomes, table.column_index(column))
