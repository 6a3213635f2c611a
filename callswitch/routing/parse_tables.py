"""Compiling ``tables``: CSV files next to the routing file, checked row by row."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from callswitch.routing.parse_context import Context, ParsedTable, did_you_mean
from callswitch.routing.tables import EXACT, PREFIX, build_table, parse_csv, table_key
from callswitch.yamlsrc import Node, collect


def parse_tables(ctx: Context, root: Node) -> None:
    node = root["tables"].mapping(required=False)
    for name, t in node.items():
        parsed = collect(partial(_table, ctx, name, t))
        if parsed is None:
            ctx.broken_tables.add(name)
        else:
            ctx.tables[name] = parsed


def table_file(ctx: Context, relative: str) -> Path:
    return ctx.base_dir / relative


def _table(ctx: Context, name: str, node: Node) -> ParsedTable:
    node.mapping({"file", "key", "match", "delimiter", "label"})
    relative = node["file"].str()
    key_column = node["key"].str()
    match = node["match"].choice((EXACT, PREFIX), EXACT)
    delimiter = node["delimiter"].str(",")
    if len(delimiter) != 1:
        raise node["delimiter"].fail("must be a single character such as ',' or ';'")
    path = table_file(ctx, relative)
    try:
        text = ctx.read_text(path)
    except OSError as exc:
        raise node["file"].fail(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise node["file"].fail(f"{path} is not UTF-8 text") from None
    file = str(path)
    header_cells, rows, problems = parse_csv(text, delimiter)
    for p in problems:
        ctx.add_file_problem(file, p.line, p.column, node.path, p.message)
    if not header_cells:
        raise node["file"].fail(f"{path} is empty: it needs a header line naming the columns")
    header = tuple(c.value for c in header_cells)
    seen_columns: set[str] = set()
    for cell in header_cells:
        if not cell.value:
            ctx.add_file_problem(file, _header_line(text), cell.column, node.path, "empty column name in the header")
        elif cell.value in seen_columns:
            ctx.add_file_problem(file, _header_line(text), cell.column, node.path, f"column {cell.value!r} repeats")
        seen_columns.add(cell.value)
    if key_column not in header:
        raise node["key"].fail(
            f"{path} has no column {key_column!r} (columns: {', '.join(header)}){did_you_mean(key_column, header)}"
        )
    key_index = header.index(key_column)
    data: dict[str, tuple[str, ...]] = {}
    first_line: dict[str, int] = {}
    for row in rows:
        cell = row.cells[key_index]
        key = table_key(cell.value)
        if not key:
            ctx.add_file_problem(file, row.line, cell.column, node.path, f"empty {key_column}")
            continue
        if key in data:
            ctx.add_file_problem(
                file, row.line, cell.column, node.path,
                f"duplicate {key_column} {cell.value!r} (first on line {first_line[key]})",
            )
            continue
        data[key] = tuple(c.value for c in row.cells)
        first_line[key] = row.line
    # Row problems are recorded (so the file is rejected) but the table stays usable, so that
    # rules referring to it are still checked and reported in the same run.
    return ParsedTable(build_table(name, file, key_column, match, header, data), node.path, rows)


def _header_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number
    return 1


def check_destination_columns(ctx: Context) -> None:
    """Every value of a column used by ``route: {table: ...}`` must name a destination."""
    for (table_name, column), _path in ctx.destination_columns.items():
        parsed = ctx.tables[table_name]
        index = parsed.table.column_index(column)
        for row in parsed.rows:
            cell = row.cells[index]
            if cell.value in ctx.destinations or cell.value in ctx.broken_destinations:
                continue
            if not cell.value:
                message = f"empty {column}: every row needs a destination"
            else:
                message = f"{column} {cell.value!r} is not a destination{did_you_mean(cell.value, ctx.destinations)}"
            ctx.add_file_problem(parsed.table.file, row.line, cell.column, parsed.path, message)
