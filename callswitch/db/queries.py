"""Named SQL queries kept in ``queries/*.sql``.

Each query starts with a ``-- name: <name>`` line; the text up to the next such line is
the query. ``QUERIES.insert_request`` gives its SQL.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME_RE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<sql>") -> dict[str, str]:
    out: dict[str, str] = {}
    matches = list(_NAME_RE.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        sql = text[m.end() : end].strip()
        name = m.group(1)
        if name in out:
            raise ValueError(f"{source}: query {name!r} defined twice")
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        out[name] = sql
    return out


class Queries:
    def __init__(self) -> None:
        self._sql: dict[str, str] = {}
        for entry in sorted(resources.files("callswitch.db").joinpath("queries").iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".sql"):
                for name, sql in parse_queries(entry.read_text(encoding="utf-8"), entry.name).items():
                    if name in self._sql:
                        raise ValueError(f"{entry.name}: query {name!r} already defined in another file")
                    self._sql[name] = sql

    def __getattr__(self, name: str) -> str:
        try:
            return self._sql[name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._sql)


QUERIES = Queries()
