"""Loading a routing file: YAML + CSV tables -> validated, compiled :class:`Rules`.

``check_file`` never raises and returns every problem (errors and warnings) with its
``file:line:column``; ``load_rules`` raises :class:`~callswitch.yamlsrc.SourceError` on errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callswitch.routing.index import build_segments
from callswitch.routing.model import Destination
from callswitch.routing.parse_context import Context
from callswitch.routing.parse_destinations import parse_destinations
from callswitch.routing.parse_rules import parse_default, parse_rules
from callswitch.routing.parse_schedules import parse_defaults, parse_schedules, parse_trunks
from callswitch.routing.parse_tables import check_destination_columns, parse_tables
from callswitch.routing.rules import Rules
from callswitch.yamlsrc import Document, Issues, Location, Node, Problem, SourceError, collect, load, loads

TOP_KEYS = {"version", "defaults", "trunks", "schedules", "destinations", "tables", "rules", "default"}


@dataclass(frozen=True)
class CheckResult:
    rules: Rules | None  # None when there are errors
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return self.rules is not None


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def check_document(doc: Document, base_dir: Path, read_text: Callable[[Path], str] = _read_text) -> CheckResult:
    issues = Issues(doc)
    ctx = Context(issues, base_dir, read_text)
    root = issues.root()
    if collect(lambda: root.mapping(TOP_KEYS)) is None:
        return CheckResult(None, tuple(issues.problems))
    collect(lambda: root["version"].int(1, min=1, max=1))
    collect(lambda: parse_defaults(ctx, root))
    collect(lambda: parse_trunks(ctx, root))
    collect(lambda: parse_schedules(ctx, root))
    collect(lambda: parse_destinations(ctx, root))
    collect(lambda: parse_tables(ctx, root))
    rules = collect(lambda: parse_rules(ctx, root)) or []
    default = collect(lambda: parse_default(ctx, root))
    check_destination_columns(ctx)
    if not issues.errors:  # with errors, "never used" is often an echo of a broken reference
        _warn_unused(ctx, root)
    errors = issues.errors
    if errors or default is None:
        return CheckResult(None, tuple(issues.problems))
    compiled = Rules(
        file=doc.file,
        defaults=ctx.defaults,
        trunks=dict(ctx.trunks),
        schedules=dict(ctx.schedules),
        destinations=dict(ctx.destinations),
        tables={name: parsed.table for name, parsed in ctx.tables.items()},
        rules=tuple(rules),
        default=default,
        chains=_chains(ctx.destinations),
        segments=build_segments(tuple(rules)),
        warnings=tuple(issues.warnings),
        sources=(doc.file, *(parsed.table.file for parsed in ctx.tables.values())),
    )
    return CheckResult(compiled, tuple(issues.problems))


def _chains(destinations: dict[str, Destination]) -> dict[str, tuple[Destination, ...]]:
    chains: dict[str, tuple[Destination, ...]] = {}
    for name, destination in destinations.items():
        chain = [destination]
        current = destination.overflow
        while current is not None and current in destinations and destinations[current] not in chain:
            chain.append(destinations[current])
            current = destinations[current].overflow
        chains[name] = tuple(chain)
    return chains


def _warn_unused(ctx: Context, root: Node) -> None:
    used = set(ctx.used_destinations)
    for (table_name, column) in ctx.destination_columns:
        parsed = ctx.tables[table_name]
        index = parsed.table.column_index(column)
        used.update(row[index] for row in parsed.table.rows.values())
    pending = list(used)
    while pending:
        destination = ctx.destinations.get(pending.pop())
        if destination and destination.overflow and destination.overflow not in used:
            used.add(destination.overflow)
            pending.append(destination.overflow)
    for name in ctx.destinations:
        if name not in used:
            root["destinations"][name].warn("never used: no rule, default, table or overflow leads here")
    for name in ctx.schedules:
        if name not in ctx.used_schedules:
            root["schedules"][name].warn("never used by a destination or rule")
    for name in ctx.trunks:
        if name not in ctx.used_trunks:
            root["trunks"][name].warn("never used by a destination or as a failover")
    for name in ctx.tables:
        if name not in ctx.used_tables:
            root["tables"][name].warn("never used by a rule")


def check_text(
    text: str, file: str = "<string>", base_dir: Path | None = None, read_text: Callable[[Path], str] = _read_text
) -> CheckResult:
    try:
        doc = loads(text, file)
    except SourceError as exc:
        return CheckResult(None, tuple(exc.problems))
    except ValueError as exc:  # a YAML value PyYAML cannot construct, e.g. the date 2025-13-01
        return CheckResult(None, (Problem(Location(file, 1, 1), (), f"YAML value error: {exc}"),))
    return check_document(doc, base_dir if base_dir is not None else Path(file).parent, read_text)


def check_file(path: str | Path) -> CheckResult:
    """Load and validate ``path`` (and its tables); never raises."""
    try:
        doc = load(path)
    except SourceError as exc:
        return CheckResult(None, tuple(exc.problems))
    except ValueError as exc:  # a YAML value PyYAML cannot construct, e.g. the date 2025-13-01
        return CheckResult(None, (Problem(Location(str(path), 1, 1), (), f"YAML value error: {exc}"),))
    return check_document(doc, Path(path).parent)


def load_rules(path: str | Path) -> Rules:
    """Load, validate and compile ``path``; raise :class:`SourceError` listing every error."""
    result = check_file(path)
    if result.rules is None:
        raise SourceError(result.errors or list(result.problems))
    return result.rules


def loads_rules(text: str, file: str = "<string>", base_dir: Path | None = None) -> Rules:
    result = check_text(text, file, base_dir)
    if result.rules is None:
        raise SourceError(result.errors or list(result.problems))
    return result.rules
