"""Compiled rule conditions. Each has a fast ``test`` and an ``explain`` that says why.

``test(request, at)`` returns a bool and allocates nothing beyond the field read;
``explain(request, at)`` returns ``(holds, reason)`` for the trace shown to admins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from callswitch.callback import CallbackRequest
from callswitch.routing.fields import Field
from callswitch.routing.schedule import Schedule
from callswitch.routing.tables import Table, table_key


def _show(values: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


class Condition:
    def test(self, request: CallbackRequest, at: datetime) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:  # pragma: no cover
        raise NotImplementedError


# -- text tests ---------------------------------------------------------------------------------


class TextOp:
    """One test on a text value; ``value`` is normalised, ``raw`` only trimmed."""

    def test(self, value: str, raw: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class OneOf(TextOp):
    values: frozenset[str]
    shown: tuple[str, ...]
    primary_subtag: bool = False

    def test(self, value: str, raw: str) -> bool:
        if value in self.values:
            return True
        if self.primary_subtag and "-" in value:
            return value.split("-", 1)[0] in self.values
        return False

    def describe(self) -> str:
        return f"is {self.shown[0]!r}" if len(self.shown) == 1 else f"is one of {_show(self.shown)}"


@dataclass(frozen=True, eq=False)
class Prefix(TextOp):
    prefixes: tuple[str, ...]

    def test(self, value: str, raw: str) -> bool:
        return value.startswith(self.prefixes)

    def describe(self) -> str:
        return f"starts with {_show(self.prefixes)}"


@dataclass(frozen=True, eq=False)
class Contains(TextOp):
    parts: tuple[str, ...]

    def test(self, value: str, raw: str) -> bool:
        return any(p in value for p in self.parts)

    def describe(self) -> str:
        return f"contains {_show(self.parts)}"


@dataclass(frozen=True, eq=False)
class Regex(TextOp):
    pattern: re.Pattern[str]

    def test(self, value: str, raw: str) -> bool:
        return self.pattern.search(raw) is not None

    def describe(self) -> str:
        return f"matches regex {self.pattern.pattern!r}"


@dataclass(frozen=True, eq=False)
class Glob(TextOp):
    patterns: tuple[str, ...]
    compiled: re.Pattern[str]  # one alternation, case-insensitive, whole value

    def test(self, value: str, raw: str) -> bool:
        return self.compiled.match(raw) is not None

    def describe(self) -> str:
        return f"matches glob {_show(self.patterns)}"


@dataclass(frozen=True, eq=False)
class InRange(TextOp):
    """Inclusive ranges of equal-length codes, compared as text: ``10000``..``14999``."""

    ranges: tuple[tuple[str, str], ...]

    def test(self, value: str, raw: str) -> bool:
        n = len(value)
        for lo, hi in self.ranges:
            if len(lo) == n and lo <= value <= hi:
                return True
        return False

    def describe(self) -> str:
        return "is in range " + ", ".join(f"{lo}..{hi}" for lo, hi in self.ranges)


@dataclass(frozen=True, eq=False)
class InTable(TextOp):
    """The value is a key of ``table`` (and, with ``column``, that column is one of ``values``)."""

    table: Table
    column: int | None = None
    column_name: str | None = None
    values: frozenset[str] = frozenset()

    def test(self, value: str, raw: str) -> bool:
        row = self.table.lookup(table_key(value))
        if row is None:
            return False
        if self.column is None:
            return True
        return row[self.column].casefold() in self.values

    def describe(self) -> str:
        if self.column_name is None:
            return f"is in table {self.table.name}"
        return f"has {self.column_name} in {_show(sorted(self.values))} in table {self.table.name}"


@dataclass(frozen=True, eq=False)
class TextCondition(Condition):
    """All ``ops`` hold for ``field``. ``present`` (True/False/None) tests presence alone."""

    field: Field
    ops: tuple[TextOp, ...]
    present: bool | None = None

    def __post_init__(self) -> None:
        # Hot path: most conditions are a single "is one of" test.
        single = self.ops[0] if len(self.ops) == 1 else None
        fast = single.values if isinstance(single, OneOf) and not single.primary_subtag else None
        object.__setattr__(self, "_fast_values", fast)
        object.__setattr__(self, "_get", self.field.get)

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        v = self._get(request)  # type: ignore[attr-defined]
        if v is None or v == "":
            return self.present is False
        if self.present is False:
            return False
        raw = v.strip() if type(v) is str else str(v).strip()
        value = self.field.norm(raw)
        fast = self._fast_values  # type: ignore[attr-defined]
        if fast is not None:
            return value in fast
        for op in self.ops:
            if not op.test(value, raw):
                return False
        return True

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        name = self.field.name
        raw = self.field.raw(request)
        if raw is None:
            if self.present is False:
                return True, f"{name} is absent"
            return False, f"{name} is missing"
        if self.present is False:
            return False, f"{name} is present ({raw!r})"
        value = self.field.norm(raw)
        for op in self.ops:
            if not op.test(value, raw):
                return False, f"{name} {raw!r} does not satisfy: {op.describe()}"
        what = " and ".join(op.describe() for op in self.ops) or "is present"
        return True, f"{name} {raw!r} {what}"


# -- numbers --------------------------------------------------------------------------------------

NUMBER_OPS = {
    "eq": ("==", lambda a, b: a == b),
    "ne": ("!=", lambda a, b: a != b),
    "gt": (">", lambda a, b: a > b),
    "gte": (">=", lambda a, b: a >= b),
    "lt": ("<", lambda a, b: a < b),
    "lte": ("<=", lambda a, b: a <= b),
}


@dataclass(frozen=True, eq=False)
class NumberCondition(Condition):
    """All comparisons hold; ``between`` is stored as ``gte`` + ``lte``."""

    field: Field
    comparisons: tuple[tuple[str, float], ...]  # (op key, bound)
    present: bool | None = None

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        v = self.field.get(request)
        if v is None:
            return self.present is False
        if self.present is False:
            return False
        for op, bound in self.comparisons:
            if not NUMBER_OPS[op][1](v, bound):
                return False
        return True

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        name = self.field.name
        v = self.field.get(request)
        if v is None:
            return (True, f"{name} is absent") if self.present is False else (False, f"{name} is missing")
        if self.present is False:
            return False, f"{name} is present ({v})"
        for op, bound in self.comparisons:
            if not NUMBER_OPS[op][1](v, bound):
                return False, f"{name} {v} is not {NUMBER_OPS[op][0]} {_num(bound)}"
        what = " and ".join(f"{NUMBER_OPS[op][0]} {_num(b)}" for op, b in self.comparisons) or "present"
        return True, f"{name} {v} is {what}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# -- time -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TimeCondition(Condition):
    """Days and hours in a time zone, compiled to an anonymous weekly schedule."""

    schedule: Schedule
    text: str  # as written, for explanations

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        return self.schedule.is_open(at)

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        local = at.astimezone(self.schedule.tz)
        stamp = local.strftime("%a %Y-%m-%d %H:%M %Z")
        if self.schedule.is_open(at):
            return True, f"time {stamp} is within {self.text}"
        return False, f"time {stamp} is not within {self.text}"


@dataclass(frozen=True, eq=False)
class ScheduleCondition(Condition):
    schedule: Schedule
    want_open: bool

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        return self.schedule.is_open(at) is self.want_open

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        is_open = self.schedule.is_open(at)
        state = "open" if is_open else "closed"
        local = at.astimezone(self.schedule.tz).strftime("%a %H:%M %Z")
        return is_open is self.want_open, f"schedule {self.schedule.name} is {state} ({local})"


# -- combinators ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Always(Condition):
    def test(self, request: CallbackRequest, at: datetime) -> bool:
        return True

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        return True, "no conditions"


@dataclass(frozen=True, eq=False)
class All(Condition):
    children: tuple[Condition, ...]

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        for child in self.children:
            if not child.test(request, at):
                return False
        return True

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        reasons = []
        for child in self.children:
            ok, why = child.explain(request, at)
            if not ok:
                return False, why
            reasons.append(why)
        return True, "; ".join(reasons) if reasons else "no conditions"


@dataclass(frozen=True, eq=False)
class AnyOf(Condition):
    children: tuple[Condition, ...]

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        for child in self.children:
            if child.test(request, at):
                return True
        return False

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        reasons = []
        for child in self.children:
            ok, why = child.explain(request, at)
            if ok:
                return True, why
            reasons.append(why)
        return False, "none of: " + " | ".join(reasons)


@dataclass(frozen=True, eq=False)
class Not(Condition):
    child: Condition

    def test(self, request: CallbackRequest, at: datetime) -> bool:
        return not self.child.test(request, at)

    def explain(self, request: CallbackRequest, at: datetime) -> tuple[bool, str]:
        ok, why = self.child.explain(request, at)
        return (not ok), f"not ({why})"
