"""Helpers for the recorded Asterisk 22 AMI transcripts (shared reference set + bundled copies)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
# The project's shared reference data sits beside the repository (../shared), or where
# CALLSWITCH_SHARED_DIR points.
SHARED = Path(os.environ.get("CALLSWITCH_SHARED_DIR", _REPO.parent / "shared")) / "asterisk"
DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class SummaryLine:
    name: str  # event name, or "Response: Success" etc.
    fields: str  # the rest of the line (key=value text as written by the recorder)


def summary_lines(path: Path) -> list[SummaryLine]:
    """Message lines of a X.summary.txt: ``t+ <secs> <Name> <fields>``; comments and SENT lines skipped."""
    out = []
    for line in path.read_text().splitlines():
        if not line.startswith("t+"):
            continue
        parts = line.split(None, 2)
        rest = parts[2] if len(parts) > 2 else ""
        if rest.startswith((">>>", "#")):
            continue
        if rest.startswith("Response:"):
            kind, value, *tail = rest.split(None, 2)
            out.append(SummaryLine(f"{kind} {value}", tail[0] if tail else ""))
        else:
            name, *tail = rest.split(None, 1)
            out.append(SummaryLine(name, tail[0] if tail else ""))
    return out


def transcript_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(X.txt, X.summary.txt) for every transcript under ``root`` that has a summary."""
    pairs = []
    for summary in sorted(root.rglob("*.summary.txt")):
        wire = summary.with_name(summary.name.replace(".summary.txt", ".txt"))
        if wire.exists():
            pairs.append((wire, summary))
    return pairs


def shared_pairs() -> list[tuple[Path, Path]]:
    if not SHARED.is_dir():
        return []
    pairs = []
    for sub in ("basic", "flows", "flows/actions"):
        d = SHARED / sub
        if d.is_dir():
            pairs.extend((w, s) for w, s in transcript_pairs(d) if w.parent == d)
    return pairs


def require_shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference transcripts not present at {SHARED}")
    return SHARED


def message_name(msg: object) -> str:
    event = msg.event  # type: ignore[attr-defined]
    if event is not None:
        return str(event)
    return f"Response: {msg.response}"  # type: ignore[attr-defined]
