"""Helpers for routing tests: small routing files in temp dirs and requests."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callswitch.callback import CallbackRequest
from callswitch.routing import Rules, check_file, load_rules, route

BASE = """\
version: 1
defaults:
  timezone: Europe/Berlin
destinations:
  a: {members: [PJSIP/1]}
  b: {members: [PJSIP/2]}
  c: {members: [PJSIP/3]}
  z: {members: [PJSIP/9]}
"""

MONDAY_NOON = datetime(2025, 3, 31, 10, 0, tzinfo=UTC)  # 12:00 in Berlin


def write(tmp_path: Path, text: str, files: dict[str, str] | None = None, name: str = "routing.yaml") -> Path:
    for rel, content in (files or {}).items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(content), encoding="utf-8")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def rules_with(tmp_path: Path, rules_yaml: str, extra: str = "", files: dict[str, str] | None = None) -> Rules:
    """BASE + ``extra`` top-level sections + a rules list + default z."""
    text = BASE + textwrap.dedent(extra) + "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  ")
    text += "default: z\n"
    return load_rules(write(tmp_path, text, files))


def problems(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> list[str]:
    """Every problem of a file, as the strings admins see, with the temp dir shortened to ``./``."""
    path = write(tmp_path, text, files)
    result = check_file(path)
    return [str(p).replace(str(tmp_path) + "/", "") for p in result.problems]


def req(**kw: Any) -> CallbackRequest:
    fields: dict[str, Any] = {"site": "web", "name": "Ada", "phone_e164": "+4915112345678", "phone_region": "DE"}
    attributes = {}
    for key in ("product", "postal_code", "company_size", "country", "plan", "seats"):
        if key in kw:
            attributes[key] = kw.pop(key)
    fields["attributes"] = attributes
    fields.update(kw)
    return CallbackRequest(**fields)


def dest(rules: Rules, request: CallbackRequest, at: datetime = MONDAY_NOON) -> str:
    """Name of the first destination (or 'reject: message'); also checks fast == explained."""
    fast = route(rules, request, at)
    slow = route(rules, request, at, explain=True)
    assert (fast.action, fast.rule, fast.chain, fast.start_at, fast.reject_message) == (
        slow.action, slow.rule, slow.chain, slow.start_at, slow.reject_message,
    )
    assert fast.trace == ()
    if fast.rejected:
        return f"reject: {fast.reject_message}"
    assert fast.destination is not None
    return fast.destination.name
