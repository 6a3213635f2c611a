"""Durations in configuration files: ``30`` (seconds), ``"250ms"``, ``"30s"``, ``"15m"``, ``"2h"``, ``"1d"``."""

from __future__ import annotations

import re
from typing import Any

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """``30`` / ``"30s"`` / ``"15m"`` / ``"2h"`` / ``"1d"`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 15m, 2h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    m = _DURATION_RE.match(str(value))
    if not m:
        raise ValueError("expected a duration like 30s, 15m, 2h")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
