"""Lookup tables (CSV next to the routing file): parsing with line/column positions, and lookups.

Parsing works on text; reading the file is the loader's job. A table maps a normalised key
(``table_key``) to its row. ``match: exact`` looks the key up as is; ``match: prefix`` finds the
longest key that the value starts with (area codes, postal code areas).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EXACT = "exact"
PREFIX = "prefix"


def table_key(value: str) -> str:
    """Keys and looked-up values are compared without spaces and case: ``"10 115"`` == ``"10115"``."""
    return "".join(value.split()).casefold()


@dataclass(frozen=True)
class CsvCell:
    value: str
    column: int  # 1-based character column in the line


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line number in the file
    cells: tuple[CsvCell, ...]


@dataclass(frozen=True)
class CsvProblem:
    line: int
    column: int
    message: str


def split_csv_line(line: str, delimiter: str = ",") -> tuple[CsvCell, ...]:
    """Split one CSV line into cells with their columns; quotes as in RFC 4180 (no line breaks)."""
    cells: list[CsvCell] = []
    i, n = 0, len(line)
    while True:
        start = i
        if i < n and line[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise ValueError(f"column {start + 1}: unterminated quoted value")
                ch = line[i]
                if ch == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(ch)
                i += 1
            if i < n and line[i] != delimiter:
                raise ValueError(f"column {i + 1}: unexpected text after a quoted value")
            cells.append(CsvCell("".join(buf), start + 1))
        else:
            end = line.find(delimiter, i)
            if end < 0:
                end = n
            text = line[i:end]
            leading = len(text) - len(text.lstrip())
            cells.append(CsvCell(text.strip(), start + 1 + (leading if text.strip() else 0)))
            i = end
        if i >= n:
            return tuple(cells)
        i += 1  # skip the delimiter
        if i == n:
            cells.append(CsvCell("", i + 1))
            return tuple(cells)


def parse_csv(text: str, delimiter: str = ",") -> tuple[tuple[CsvCell, ...], list[CsvRow], list[CsvProblem]]:
    """Header cells, data rows and problems. Blank lines and lines starting with ``#`` are skipped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    header: tuple[CsvCell, ...] = ()
    rows: list[CsvRow] = []
    problems: list[CsvProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells = split_csv_line(line, delimiter)
        except ValueError as exc:
            problems.append(CsvProblem(number, 1, str(exc)))
            continue
        if not header:
            header = cells
            continue
        if len(cells) != len(header):
            problems.append(
                CsvProblem(number, 1, f"expected {len(header)} values like the header, found {len(cells)}")
            )
            continue
        rows.append(CsvRow(number, cells))
    return header, rows, problems


@dataclass(frozen=True, eq=False)
class Table:
    name: str
    file: str
    key_column: str
    match: str  # EXACT or PREFIX
    columns: tuple[str, ...]
    rows: Mapping[str, tuple[str, ...]]  # table_key(key) -> values, in column order
    prefix_lengths: tuple[int, ...] = field(default=())  # longest first, for PREFIX tables

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, value: str) -> tuple[str, ...] | None:
        """The row for ``value`` (already :func:`table_key`-normalised), or None."""
        if self.match == EXACT:
            return self.rows.get(value)
        for length in self.prefix_lengths:
            if length <= len(value):
                row = self.rows.get(value[:length])
                if row is not None:
                    return row
        return None

    def column_index(self, column: str) -> int:
        return self.columns.index(column)


def build_table(
    name: str, file: str, key_column: str, match: str, header: tuple[str, ...], rows: Mapping[str, tuple[str, ...]]
) -> Table:
    lengths = tuple(sorted({len(k) for k in rows}, reverse=True)) if match == PREFIX else ()
    return Table(name, file, key_column, match, header, dict(rows), lengths)
