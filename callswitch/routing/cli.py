"""``callswitch rules check|test``: validate a routing file and try requests against it.

Exit codes: 0 ok, 1 the file has errors (or warnings with ``--strict``), 2 usage errors
(bad arguments, bad ``--request`` JSON, bad ``--at``, no routing file found).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from callswitch.routing.engine import route
from callswitch.routing.load import check_file
from callswitch.routing.plan_text import format_plan, plan_as_dict
from callswitch.routing.request_json import request_from_json

ENV_FILE = "CALLSWITCH_ROUTING_FILE"
DEFAULT_FILE = Path("config/routing.yaml")
OK, INVALID, USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the ``rules`` command to the ``callswitch`` parser's subparsers."""
    rules = subparsers.add_parser("rules", help="check routing rules and test requests against them")
    sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    sub.required = True

    check = sub.add_parser("check", help="validate a routing file and summarise it")
    check.add_argument("file", nargs="?", help=f"routing file (default: ${ENV_FILE}, else {DEFAULT_FILE})")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    check.set_defaults(func=cmd_check)

    test = sub.add_parser("test", help="route one request and explain the decision")
    test.add_argument("file", nargs="?", help=f"routing file (default: ${ENV_FILE}, else {DEFAULT_FILE})")
    test.add_argument("--request", required=True, help="request as inline JSON, or @path to a JSON file")
    test.add_argument("--at", help="routing time, ISO 8601 (default: now; no offset = defaults.timezone)")
    test.add_argument("--region", help="region for a phone number without +country (default: from the file)")
    test.add_argument("--json", action="store_true", help="print the plan as JSON")
    test.set_defaults(func=cmd_test)


def resolve_file(given: str | None) -> Path | None:
    if given:
        return Path(given)
    env = os.environ.get(ENV_FILE)
    if env:
        return Path(env)
    if DEFAULT_FILE.exists():
        return DEFAULT_FILE
    return None


def _usage(message: str) -> int:
    print(f"callswitch rules: error: {message}", file=sys.stderr)
    return USAGE


def cmd_check(args: argparse.Namespace) -> int:
    path = resolve_file(args.file)
    if path is None:
        return _usage(f"no routing file given, ${ENV_FILE} is not set and {DEFAULT_FILE} does not exist")
    result = check_file(path)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.rules is None:
        print(f"{path}: INVALID: {len(result.errors)} error(s), {len(result.warnings)} warning(s)")
        return INVALID
    print(f"{path}: OK: {result.rules.summary()}")
    if args.strict and result.warnings:
        return INVALID
    return OK


def cmd_test(args: argparse.Namespace) -> int:
    path = resolve_file(args.file)
    if path is None:
        return _usage(f"no routing file given, ${ENV_FILE} is not set and {DEFAULT_FILE} does not exist")
    try:
        data = _read_request(args.request)
    except ValueError as exc:
        return _usage(f"--request: {exc}")
    result = check_file(path)
    if result.rules is None:
        for problem in result.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: INVALID: {len(result.errors)} error(s); fix them before testing")
        return INVALID
    rules = result.rules
    try:
        request = request_from_json(data, args.region or rules.defaults.region)
    except ValueError as exc:
        return _usage(f"--request: {exc}")
    try:
        at = _parse_at(args.at, rules.defaults.timezone)
    except ValueError as exc:
        return _usage(f"--at: {exc}")
    plan = route(rules, request, at, explain=True)
    if args.json:
        print(json.dumps(plan_as_dict(plan), indent=2, ensure_ascii=False))
    else:
        print(f"Request: {request.name} {request.phone_e164} ({request.phone_region}) at {at.isoformat()}")
        print(format_plan(plan))
    return OK


def _read_request(text: str) -> Any:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


def _parse_at(text: str | None, timezone: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2025-03-31T10:00 or 2025-03-31T10:00+02:00") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(timezone) if timezone else UTC)
    return at
