"""Fast first-match over many rules: runs of *keyed* rules become dict lookups.

A rule is keyed when it can only match if some field equals one of some values or starts with
one of some prefixes: a text test ``is``/``prefix`` (alone or inside ``all``), or an ``any`` whose
every branch is keyed. Consecutive keyed rules form a run. For a request, the run looks up each
of its fields in dicts, which yields the only rules of the run that can match; those are tested
fully, in file order. First-match semantics are unchanged; unkeyed rules are tested one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from callswitch.callback import CallbackRequest
from callswitch.routing.conditions import All, AnyOf, Condition, OneOf, Prefix, TextCondition
from callswitch.routing.fields import Field
from callswitch.routing.rules import Outcome, Rule

MIN_RUN = 3  # shorter runs are cheaper to test one by one

Key = tuple[Field, tuple[str, ...], tuple[str, ...]]  # field, exact values, prefixes (normalised)


class Segment:
    def first_match(self, request: CallbackRequest, at: datetime) -> tuple[Rule, Outcome] | None:
        raise NotImplementedError  # pragma: no cover - abstract


@dataclass(frozen=True, eq=False)
class SingleRule(Segment):
    rule: Rule

    def first_match(self, request: CallbackRequest, at: datetime) -> tuple[Rule, Outcome] | None:
        rule = self.rule
        if rule.condition.test(request, at):
            outcome = rule.action.resolve(request)
            if outcome is not None:
                return rule, outcome
        return None


@dataclass(frozen=True, eq=False)
class FieldIndex:
    field: Field
    exact: Mapping[str, tuple[int, ...]]  # normalised value -> positions in the run
    prefixes: Mapping[int, Mapping[str, tuple[int, ...]]]  # prefix length -> prefix -> positions

    def candidates(self, request: CallbackRequest) -> tuple[int, ...]:
        value = self.field.text(request)
        if value is None:
            return ()
        found = self.exact.get(value, ())
        if self.field.primary_subtag and "-" in value:
            found = found + self.exact.get(value.split("-", 1)[0], ())
        for length, table in self.prefixes.items():
            if length > len(value):
                break
            more = table.get(value[:length])
            if more:
                found = found + more
        return found


@dataclass(frozen=True, eq=False)
class KeyedRun(Segment):
    rules: tuple[Rule, ...]
    indexes: tuple[FieldIndex, ...]

    def first_match(self, request: CallbackRequest, at: datetime) -> tuple[Rule, Outcome] | None:
        found: tuple[int, ...] = ()
        for index in self.indexes:
            more = index.candidates(request)
            if more:
                found = found + more
        if not found:
            return None
        for position in sorted(set(found)) if len(found) > 1 else found:
            rule = self.rules[position]
            if rule.condition.test(request, at):
                outcome = rule.action.resolve(request)
                if outcome is not None:
                    return rule, outcome
        return None


def condition_keys(cond: Condition) -> list[Key] | None:
    """Alternatives one of which must hold for ``cond`` to hold; None if not keyed."""
    if isinstance(cond, TextCondition) and cond.present is None:
        for op in cond.ops:
            if isinstance(op, OneOf):
                return [(cond.field, tuple(sorted(op.values)), ())]
            if isinstance(op, Prefix):
                return [(cond.field, (), op.prefixes)]
        return None
    if isinstance(cond, All):
        for child in cond.children:
            keys = condition_keys(child)
            if keys is not None:
                return keys
        return None
    if isinstance(cond, AnyOf):
        out: list[Key] = []
        for child in cond.children:
            keys = condition_keys(child)
            if keys is None:
                return None
            out.extend(keys)
        return out
    return None


def build_segments(rules: tuple[Rule, ...]) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    run: list[tuple[Rule, list[Key]]] = []

    def flush() -> None:
        if len(run) >= MIN_RUN:
            segments.append(_keyed_run(run))
        else:
            segments.extend(SingleRule(r) for r, _k in run)
        run.clear()

    for rule in rules:
        keys = condition_keys(rule.condition)
        if keys is None:
            flush()
            segments.append(SingleRule(rule))
        else:
            run.append((rule, keys))
    flush()
    return tuple(segments)


def _keyed_run(run: list[tuple[Rule, list[Key]]]) -> KeyedRun:
    fields: dict[str, Field] = {}
    exact: dict[str, dict[str, list[int]]] = {}
    prefixes: dict[str, dict[int, dict[str, list[int]]]] = {}
    for position, (_rule, keys) in enumerate(run):
        for field, values, prefix_list in keys:
            fields.setdefault(field.name, field)
            for v in values:
                exact.setdefault(field.name, {}).setdefault(v, []).append(position)
            for p in prefix_list:
                prefixes.setdefault(field.name, {}).setdefault(len(p), {}).setdefault(p, []).append(position)
    indexes = []
    for name, field in fields.items():
        by_value = {k: tuple(sorted(set(v))) for k, v in exact.get(name, {}).items()}
        by_prefix = {
            n: {k: tuple(sorted(set(v))) for k, v in table.items()}
            for n, table in sorted(prefixes.get(name, {}).items())
        }
        indexes.append(FieldIndex(field, by_value, by_prefix))
    return KeyedRun(tuple(r for r, _k in run), tuple(indexes))
