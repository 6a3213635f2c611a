"""YAML documents that remember where every value came from.

Admins edit YAML by hand, so every problem must be reported with the file, the line,
the column and the path of the key (``routing.yaml:42:7: rules[3].when: ...``).
PyYAML's composer gives us nodes with marks; this module turns them into plain Python
values and keeps a ``path -> Location`` table beside them, and offers :class:`Node`,
a small cursor for validating such a document while collecting *all* problems.

Used by the daemon configuration (:mod:`callswitch.config`) and the routing rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

PathKey = str | int
YamlPath = tuple[PathKey, ...]
T = TypeVar("T")
_Str = str  # Node.str() shadows the builtin inside the class body


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def format_path(path: YamlPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in a YAML document."""

    location: Location | None
    path: YamlPath
    message: str
    severity: str = "error"  # or "warning"
    origin: str | None = None  # e.g. "env CALLSWITCH_AMI__PORT" when not from the file

    def __str__(self) -> str:
        where = str(self.location) if self.location else "?"
        if self.origin:
            where = f"{where} ({self.origin})"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{format_path(self.path)}: {self.message}"


class SourceError(Exception):
    """Raised when a document has errors; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Document:
    file: str
    data: Any
    locations: dict[YamlPath, Location]
    origins: dict[YamlPath, str] = field(default_factory=dict)

    def location(self, path: YamlPath) -> Location | None:
        """Location of ``path``, or of its nearest ancestor that exists in the file."""
        p = tuple(path)
        while True:
            if p in self.locations:
                return self.locations[p]
            if not p:
                return None
            p = p[:-1]


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Builder:
    def __init__(self, file: str, interpolate_env: bool, env: Mapping[str, str]):
        self.file = file
        self.interpolate_env = interpolate_env
        self.env = env
        self.locations: dict[YamlPath, Location] = {}
        self.problems: list[Problem] = []

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.locations[path] = self.loc(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(
                        Problem(self.loc(key_node), path, "YAML merge keys ('<<') are not supported")
                    )
                    continue
                key = self.scalar(key_node, path)
                if not isinstance(key, str | int) or isinstance(key, bool):
                    self.problems.append(Problem(self.loc(key_node), path, f"key {key!r} is not a string"))
                    continue
                if isinstance(key, int):
                    key = str(key)
                if key in out:
                    self.problems.append(
                        Problem(self.loc(key_node), (*path, key), "duplicate key (an earlier one is overridden)")
                    )
                child = (*path, key)
                out[key] = self.build(value_node, child)
                # errors about a mapping entry point at its key, which is where people look
                self.locations[child] = self.loc(key_node) if not isinstance(
                    value_node, yaml.ScalarNode
                ) else self.loc(value_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: YamlPath) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problems.append(Problem(self.loc(node), path, "a mapping key must be a plain value"))
            return None
        try:
            value = _CONSTRUCTOR.construct_object(node, deep=True)
        except (ValueError, yaml.constructor.ConstructorError) as exc:  # e.g. a date like 2025-13-01
            self.problems.append(Problem(self.loc(node), path, f"invalid value: {exc}"))
            return None
        if self.interpolate_env and isinstance(value, str) and "${" in value:
            value = self.interpolate(value, node, path)
        return value

    def interpolate(self, text: str, node: yaml.Node, path: YamlPath) -> Any:
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.problems.append(
                Problem(self.loc(node), path, f"environment variable {name} is not set (use ${{{name}:-}})")
            )
            return ""

        result = _ENV_RE.sub(repl, text)
        # A value that was only "${VAR}" is re-read as YAML so that ports become ints.
        if _ENV_RE.fullmatch(text.strip()) and result != "":
            try:
                reparsed = yaml.safe_load(result)
            except yaml.YAMLError:
                return result
            if isinstance(reparsed, int | float | bool):
                return reparsed
        return result


_CONSTRUCTOR = yaml.SafeLoader("")


def loads(
    text: str,
    file: str = "<string>",
    *,
    interpolate_env: bool = False,
    env: Mapping[str, str] | None = None,
) -> Document:
    """Parse YAML text into a :class:`Document`; raise :class:`SourceError` on syntax errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SourceError([Problem(loc, (), f"YAML syntax error: {msg}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: no mark, but a position
        before = text[: exc.position]
        loc = Location(file, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
        raise SourceError([Problem(loc, (), f"YAML error: {exc.reason} (character {exc.character!r})")]) from None
    except yaml.YAMLError as exc:
        raise SourceError([Problem(Location(file, 1, 1), (), f"YAML error: {exc}")]) from None
    builder = _Builder(file, interpolate_env, os.environ if env is None else env)
    if node is None:  # an empty (or comment-only) document: problems with it point at its start
        builder.locations[()] = Location(file, 1, 1)
    data = builder.build(node, ()) if node is not None else None
    if builder.problems:
        raise SourceError(builder.problems)
    return Document(file, data, builder.locations)


def load(path: str | Path, *, interpolate_env: bool = False, env: Mapping[str, str] | None = None) -> Document:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([Problem(None, (), f"cannot read {p}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise SourceError([Problem(Location(str(p), 1, 1), (), f"not UTF-8 text: {exc}")]) from None
    return loads(text, str(p), interpolate_env=interpolate_env, env=env)


class Issues:
    """Collects problems found while validating one document."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.problems: list[Problem] = []

    def error(self, path: YamlPath, message: str) -> None:
        self.problems.append(Problem(self.doc.location(path), path, message, "error", self.doc.origins.get(path)))

    def warn(self, path: YamlPath, message: str) -> None:
        self.problems.append(
            Problem(self.doc.location(path), path, message, "warning", self.doc.origins.get(path))
        )

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SourceError(self.errors)

    def root(self) -> Node:
        return Node(self.doc.data, (), self)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class Invalid(Exception):
    """Internal: a value was wrong and the problem is already recorded."""


class Node:
    """A value in a document, with its path; typed accessors record problems.

    Accessors raise :class:`Invalid` after recording a problem, so a caller can
    ``try`` a whole section and carry on with the next one; :meth:`opt` variants
    return a default instead when the key is absent.
    """

    __slots__ = ("issues", "path", "value")

    def __init__(self, value: Any, path: YamlPath, issues: Issues):
        self.value = value
        self.path = path
        self.issues = issues

    # -- structure ---------------------------------------------------------------
    @property
    def present(self) -> bool:
        return self.value is not MISSING

    def fail(self, message: str) -> Invalid:
        self.issues.error(self.path, message)
        return Invalid(message)

    def warn(self, message: str) -> None:
        self.issues.warn(self.path, message)

    def child(self, key: PathKey) -> Node:
        if isinstance(self.value, dict) and isinstance(key, str):
            return Node(self.value.get(key, MISSING), (*self.path, key), self.issues)
        if isinstance(self.value, list) and isinstance(key, int) and 0 <= key < len(self.value):
            return Node(self.value[key], (*self.path, key), self.issues)
        return Node(MISSING, (*self.path, key), self.issues)

    __getitem__ = child

    def mapping(self, allowed: set[str] | None = None, *, required: bool = True) -> Node:
        """Check that this is a mapping (``{}`` if absent and not required); flag unknown keys."""
        if not self.present:
            if required:
                raise self.fail("required")
            return Node({}, self.path, self.issues)
        if self.value is None:
            return Node({}, self.path, self.issues)
        if not isinstance(self.value, dict):
            raise self.fail(f"expected a mapping, got {_kind(self.value)}")
        if allowed is not None:
            for key in self.value:
                if key not in allowed:
                    hint = _closest(key, allowed)
                    self.issues.error(
                        (*self.path, key), f"unknown key{f' (did you mean {hint!r}?)' if hint else ''}"
                    )
        return self

    def items(self) -> Iterator[tuple[str, Node]]:
        if isinstance(self.value, dict):
            for key in self.value:
                yield key, self.child(key)

    def sequence(self, *, required: bool = True) -> list[Node]:
        if not self.present or self.value is None:
            if required and not self.present:
                raise self.fail("required")
            return []
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {_kind(self.value)}")
        return [Node(v, (*self.path, i), self.issues) for i, v in enumerate(self.value)]

    # -- scalars -----------------------------------------------------------------
    def _get(self, default: Any) -> Any:
        if not self.present:
            if default is MISSING:
                raise self.fail("required")
            return default
        return self.value

    def str(self, default: Any = MISSING, *, nonempty: bool = True) -> Any:
        v = self._get(default)
        if v is default and default is not MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise self.fail(f"expected a string, got {_kind(v)}")
        s = str(v)
        if nonempty and not s.strip():
            raise self.fail("must not be empty")
        return s

    def int(self, default: Any = MISSING, *, min: int | None = None, max: int | None = None) -> Any:
        v = self._get(default)
        if v is default and default is not MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"expected an integer, got {_kind(v)}")
        if min is not None and v < min:
            raise self.fail(f"must be at least {min}")
        if max is not None and v > max:
            raise self.fail(f"must be at most {max}")
        return v

    def number(self, default: Any = MISSING, *, min: float | None = None) -> Any:
        v = self._get(default)
        if v is default and default is not MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(f"expected a number, got {_kind(v)}")
        if min is not None and v < min:
            raise self.fail(f"must be at least {min}")
        return float(v)

    def bool(self, default: Any = MISSING) -> Any:
        v = self._get(default)
        if v is default and default is not MISSING:
            return v
        if not isinstance(v, bool):
            raise self.fail(f"expected true or false, got {_kind(v)}")
        return v

    def choice(self, options: list[_Str] | tuple[_Str, ...], default: Any = MISSING) -> Any:
        v = self._get(default)
        if v is default and default is not MISSING:
            return v
        if v not in options:
            raise self.fail(f"expected one of {', '.join(options)}, got {v!r}")
        return v

    def str_list(self, default: Any = MISSING) -> Any:
        if not self.present:
            if default is MISSING:
                raise self.fail("required")
            return default
        out = []
        for item in self.sequence():
            out.append(item.str())
        return out

    def convert(self, fn: Callable[[Any], T], what: _Str, default: Any = MISSING) -> T:
        """Apply ``fn`` to the raw value; a ValueError becomes ``not <what>: <reason>``."""
        v = self._get(default)
        if v is default and default is not MISSING:
            return v  # type: ignore[no-any-return,unused-ignore]
        try:
            return fn(v)
        except (ValueError, TypeError) as exc:
            reason = str(exc)
            raise self.fail(f"not {what}{': ' + reason if reason else ''}") from None


def collect(fn: Callable[[], T]) -> T | None:
    """Run a validation step; return None if it raised :class:`Invalid` (already recorded)."""
    try:
        return fn()
    except Invalid:
        return None


def _kind(v: Any) -> str:
    if v is MISSING:
        return "nothing"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        return f"string {v!r}" if len(v) < 40 else "a string"
    return f"{type(v).__name__} {v!r}"


def _closest(word: str, options: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.7)
    return match[0] if match else None
