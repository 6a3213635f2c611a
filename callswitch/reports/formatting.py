"""Report rows as an aligned text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

FORMATS = ("table", "csv", "json")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def cell(v: Any) -> str:
    """One value as text: '-' for none, floats without trailing zeros, mappings as 'k=v, k=v'."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        text = f"{v:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={cell(x)}" for k, x in v.items()) or "-"
    return str(v)


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    text = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(t[i]) for t in text]) for i, c in enumerate(columns)]
    right = [any(_numeric(r.get(c)) for r in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out += [line(t) for t in text]
    if not rows:
        out.append("(no data)")
    return "\n".join(out) + "\n"


def format_heatmap_table(rows: Sequence[Mapping[str, Any]], value: str = "requests") -> str:
    """The 168 heat-map rows as a weekday x hour matrix of ``value``."""
    grid = {(int(r["weekday"]), int(r["hour"])): r[value] for r in rows}
    width = max([2] + [len(str(v)) for v in grid.values()])
    out = ["     " + " ".join(f"{h:>{width}}" for h in range(24))]
    for d in range(1, 8):
        out.append(f"{WEEKDAYS[d - 1]}  " + " ".join(f"{grid.get((d, h), 0):>{width}}" for h in range(24)))
    return "\n".join(out) + "\n"


def format_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else cell(r.get(c)) for c in columns])
    return buf.getvalue()


def _json_default(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v)


def format_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=_json_default) + "\n"
