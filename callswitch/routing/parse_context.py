"""Shared state and small helpers for compiling a routing file (see :mod:`callswitch.routing.load`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from callswitch.routing.model import Destination, Trunk
from callswitch.routing.rules import Defaults
from callswitch.routing.schedule import Schedule
from callswitch.routing.tables import CsvRow, Table
from callswitch.yamlsrc import MISSING, Issues, Location, Node, Problem, YamlPath


@dataclass
class ParsedTable:
    table: Table
    path: YamlPath  # tables.<name>
    rows: list[CsvRow]  # with line and column positions, for error messages


@dataclass
class DestinationDefaults:
    trunk: str | None = None
    ring_timeout: int = 20
    rounds: int = 1
    strategy: str = "sequential"
    mode: str = "agent_first"
    when_closed: str = "overflow"


@dataclass
class Context:
    issues: Issues
    base_dir: Path
    read_text: Callable[[Path], str]
    defaults: Defaults = field(default_factory=Defaults)
    destination_defaults: DestinationDefaults = field(default_factory=DestinationDefaults)
    trunks: dict[str, Trunk] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    destinations: dict[str, Destination] = field(default_factory=dict)
    tables: dict[str, ParsedTable] = field(default_factory=dict)
    # what is referenced, for "never used" warnings and table checks
    used_destinations: set[str] = field(default_factory=set)
    used_schedules: set[str] = field(default_factory=set)
    used_trunks: set[str] = field(default_factory=set)
    used_tables: set[str] = field(default_factory=set)
    destination_columns: dict[tuple[str, str], YamlPath] = field(default_factory=dict)
    # sections that failed to parse: references to their names are not reported again
    broken_destinations: set[str] = field(default_factory=set)
    broken_schedules: set[str] = field(default_factory=set)
    broken_tables: set[str] = field(default_factory=set)

    def add_file_problem(self, file: str, line: int, column: int, path: YamlPath, message: str) -> None:
        self.issues.problems.append(Problem(Location(file, line, column), path, message))


def did_you_mean(name: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown(kind: str, name: str, options: Iterable[str]) -> str:
    return f"{kind} {name!r} is not defined{did_you_mean(name, options)}"


def zone(name: Any) -> tzinfo:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("expected an IANA time zone name like Europe/Berlin")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)") from None


def a_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError("expected a date like 2025-12-24, not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date (write YYYY-MM-DD)") from None
    raise ValueError("expected a date like 2025-12-24")


def e164(value: Any) -> str:
    """Validate an E.164 number such as ``+4930123456``; raise ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError("expected an E.164 number as a string, e.g. '+4930123456'")
    text = value.strip()
    if not text.startswith("+"):
        raise ValueError(f"{text!r} must be in E.164 form, starting with + and the country code")
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a valid phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid phone number")
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if formatted != text:
        raise ValueError(f"{text!r} is not in E.164 form (write {formatted!r})")
    return text


def child_names(node: Node) -> list[str]:
    return [k for k, _ in node.items()]


def parse_with(node: Node, fn: Callable[[Any], Any], default: Any = MISSING) -> Any:
    """``fn(node.value)``; a ValueError becomes an error at the node with the exception's message."""
    if not node.present:
        if default is MISSING:
            raise node.fail("required")
        return default
    try:
        return fn(node.value)
    except ValueError as exc:
        raise node.fail(str(exc)) from None
