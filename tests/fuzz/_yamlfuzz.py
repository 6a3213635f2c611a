"""Hypothesis strategies shared by the loader fuzz tests: arbitrary YAML data and mutations of a document."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import yaml
from hypothesis import strategies as st

from callswitch.yamlsrc import Problem

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "~", "off", "on", "yes", "10/minute", "5s", "-1", "1e400", "${X}", "${X:-y}",
                     "+13125550000", "US", "Europe/Berlin", "09:00-17:00", "mon-fri", "http://x", "[", "{", "*a"]),
    st.dates(min_value=dt.date(1, 1, 1)),
)
KEYS = st.one_of(st.text(max_size=12), st.integers(-5, 5), st.booleans(), st.none())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
DOCUMENTS = st.one_of(VALUES, st.dictionaries(st.text(max_size=12), VALUES, max_size=6))


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, original: Any, max_mutations: int = 4) -> Any:
    """``original`` with a few keys/items deleted, values replaced or keys renamed."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = paths(data)
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(["delete", "replace", "rename", "wrap", "duplicate"]))
        if not path:
            if op == "replace":
                data = draw(VALUES)
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(VALUES)
        elif op == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"x": parent[last]}]))
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(last)
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str:
    """Line-level damage: drop, duplicate or garble a line, or change its indentation."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "indent", "dedent", "garble", "truncate"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 5)) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "garble":
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.text(max_size=4)) + lines[i][pos:]
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines) + "\n"


def assert_located(problem: Problem, *files: str) -> None:
    """An error problem names ``file:line:col`` and a YAML path (``()`` = the whole document)."""
    assert problem.location is not None, f"problem without a location: {problem}"
    assert problem.location.file in files or problem.location.file.endswith(".csv"), str(problem)
    assert problem.location.line >= 1 and problem.location.column >= 1, str(problem)
    assert isinstance(problem.path, tuple), str(problem)
    assert all(isinstance(part, str | int) for part in problem.path), str(problem)
    assert problem.message, str(problem)
    assert str(problem).startswith(str(problem.location)), str(problem)
