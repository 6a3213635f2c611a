"""The compiled routing file: :class:`Rules`, its :class:`Rule` list and rule actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callswitch.callback import CallbackRequest
from callswitch.routing.conditions import Condition
from callswitch.routing.fields import Field
from callswitch.routing.model import DEFER, DIAL, REJECT, Destination, Trunk
from callswitch.routing.schedule import Schedule
from callswitch.routing.tables import Table, table_key
from callswitch.yamlsrc import Problem

if TYPE_CHECKING:
    from callswitch.routing.index import Segment

ROUTE = "route"


@dataclass(frozen=True, eq=False)
class Outcome:
    """What a matching rule decided: route to / defer to a destination, or reject."""

    kind: str  # ROUTE, DEFER or REJECT
    destination: Destination | None = None
    message: str | None = None
    detail: str = ""  # for traces: how a table lookup found the destination

    def describe(self) -> str:
        if self.kind == REJECT:
            return f"reject: {self.message!r}"
        assert self.destination is not None
        verb = "route to" if self.kind == ROUTE else "defer to next opening of"
        return f"{verb} {self.destination.name}{self.detail}"


class Action:
    """Turns a matched request into an :class:`Outcome`; None means "this rule does not apply"."""

    def resolve(self, request: CallbackRequest) -> Outcome | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, request: CallbackRequest) -> tuple[Outcome | None, str]:
        outcome = self.resolve(request)
        return outcome, (outcome.describe() if outcome else "no outcome")

    @property
    def always_applies(self) -> bool:
        return True


@dataclass(frozen=True, eq=False)
class Fixed(Action):
    outcome: Outcome

    def resolve(self, request: CallbackRequest) -> Outcome | None:
        return self.outcome


@dataclass(frozen=True, eq=False)
class RouteByTable(Action):
    """Route to the destination named in ``column`` of the row found for the request's ``field``."""

    table: Table
    field: Field
    column: str
    outcomes: Mapping[str, Outcome]  # destination name -> prebuilt Outcome
    column_index: int

    @property
    def always_applies(self) -> bool:
        return False

    def resolve(self, request: CallbackRequest) -> Outcome | None:
        value = self.field.raw(request)
        if value is None:
            return None
        row = self.table.lookup(table_key(value))
        if row is None:
            return None
        return self.outcomes.get(row[self.column_index])

    def explain(self, request: CallbackRequest) -> tuple[Outcome | None, str]:
        value = self.field.raw(request)
        if value is None:
            return None, f"{self.field.name} is missing, so table {self.table.name} cannot be used"
        row = self.table.lookup(table_key(value))
        if row is None:
            return None, f"{self.field.name} {value!r} is not in table {self.table.name}"
        outcome = self.outcomes.get(row[self.column_index])
        if outcome is None:  # pragma: no cover - validation guarantees every value is a destination
            return None, f"table {self.table.name} names unknown destination {row[self.column_index]!r}"
        key = row[self.table.column_index(self.table.key_column)]
        return outcome, (
            f"route to {outcome.destination.name if outcome.destination else '?'} "
            f"(table {self.table.name}: {self.table.key_column} {key!r} -> {self.column})"
        )


@dataclass(frozen=True, eq=False)
class Rule:
    index: int  # position in the file's rules list
    name: str | None
    condition: Condition
    action: Action
    where: str  # "routing.yaml:42"
    unconditional: bool = False

    @property
    def label(self) -> str:
        return f"rules[{self.index}]" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class Defaults:
    region: str = "US"
    timezone: str | None = None
    unavailable_message: str = "Sorry, nobody can call you back at the moment."


@dataclass(frozen=True, eq=False)
class Rules:
    """A validated, compiled routing file. Immutable; swap whole objects to reload."""

    file: str
    defaults: Defaults
    trunks: Mapping[str, Trunk]
    schedules: Mapping[str, Schedule]
    destinations: Mapping[str, Destination]
    tables: Mapping[str, Table]
    rules: tuple[Rule, ...]
    default: Action
    chains: Mapping[str, tuple[Destination, ...]]  # destination -> itself and its overflow chain
    segments: tuple[Segment, ...] = ()
    warnings: tuple[Problem, ...] = ()
    sources: tuple[str, ...] = field(default=())  # the YAML file and every table file

    def summary(self) -> str:
        rows = sum(len(t) for t in self.tables.values())
        return (
            f"{len(self.trunks)} trunks, {len(self.schedules)} schedules, {len(self.destinations)} destinations, "
            f"{len(self.tables)} tables ({rows} rows), {len(self.rules)} rules, {len(self.warnings)} warnings"
        )


__all__ = [
    "DEFER", "DIAL", "REJECT", "ROUTE", "Action", "Defaults", "Fixed", "Outcome", "RouteByTable", "Rule", "Rules",
]
