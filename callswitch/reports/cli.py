"""``callswitch report ...`` and ``callswitch purge``.

Exit codes: 0 ok; 1 the database could not be reached or a query failed; 2 usage error (bad time, bad
time zone); 78 (EX_CONFIG) invalid configuration or no database DSN.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from callswitch.reports.data import REPORTS, ReportQuery, fetch_report
from callswitch.reports.formatting import FORMATS, format_csv, format_heatmap_table, format_json, format_table

OK, FAILED, USAGE, EX_CONFIG = 0, 1, 2, 78
DEFAULT_CONFIG = "/etc/callswitch/callswitch.yaml"
DEFAULT_DAYS = 30
T = TypeVar("T")


def register(subparsers: Any) -> None:
    """Add the ``report`` and ``purge`` commands to the ``callswitch`` parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    db = common.add_argument_group("database")
    db.add_argument("-c", "--config", help=f"configuration file (default: $CALLSWITCH_CONFIG or {DEFAULT_CONFIG}); "
                                           "gives the DSN and the sites' time zones")
    db.add_argument("--dsn", help="Postgres DSN (default: database.dsn of the configuration)")
    window = common.add_argument_group("what to report on")
    window.add_argument("--since", help=f"first day or time, ISO 8601 or Nd = N days ago (default: {DEFAULT_DAYS}d)")
    window.add_argument("--until", help="end, exclusive: ISO 8601 date or time, or Nd (default: now)")
    window.add_argument("--site", help="only requests of this site")
    window.add_argument("--destination", help="only this destination (store/team)")
    window.add_argument("--tz", help="time zone for dates without a time and for the heat map "
                                     "(default: the site's time_zone, else UTC; heat map: each site's own)")

    report = subparsers.add_parser("report", help="reports: pages, campaigns, sites, stores, members, funnel, ...")
    sub = report.add_subparsers(dest="report_command", metavar="REPORT")
    sub.required = True
    for name, (title, _cols) in REPORTS.items():
        p = sub.add_parser(name, parents=[common], help=title[0].lower() + title[1:])
        p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
        p.set_defaults(func=cmd_report, report=name)
    p = sub.add_parser("html", parents=[common], help="write a self-contained HTML report with charts")
    p.add_argument("-o", "--output", default="report.html", help="file to write, - for stdout (default: report.html)")
    p.set_defaults(func=cmd_html)

    purge = subparsers.add_parser("purge", help="anonymise the personal data of old callback requests")
    purge.add_argument("-c", "--config", help=f"configuration file (default: $CALLSWITCH_CONFIG or {DEFAULT_CONFIG})")
    purge.add_argument("--dsn", help="Postgres DSN (default: database.dsn of the configuration)")
    purge.add_argument("--older-than-days", type=int, required=True, metavar="N",
                       help="anonymise finished requests created more than N days ago")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be anonymised")
    purge.add_argument("--keep-attribute", action="append", metavar="KEY",
                       help="attribute key to keep (repeatable; default: product, postal_code, company_size)")
    purge.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    purge.set_defaults(func=cmd_purge)


# ------------------------------------------------------------------------------------------ settings
class UsageError(Exception):
    pass


@dataclass
class Settings:
    dsn: str
    site_zones: dict[str, str] = field(default_factory=dict)


def _settings(args: argparse.Namespace) -> Settings | int:
    """DSN and site time zones from --dsn / the configuration; an exit code after printing why not."""
    path = args.config or os.environ.get("CALLSWITCH_CONFIG")
    if path is None and not args.dsn and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    zones: dict[str, str] = {}
    dsn = args.dsn
    if path:
        from callswitch.config import ConfigError, load_config

        try:
            config = load_config(path)
        except ConfigError as exc:
            print(f"callswitch: invalid configuration ({len(exc.problems)} problem(s)):", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return EX_CONFIG
        zones = {sid: s.time_zone for sid, s in config.sites.items()}
        dsn = dsn or config.database.dsn
    if not dsn:
        print("callswitch: no database: pass --dsn or -c with database.dsn set", file=sys.stderr)
        return EX_CONFIG
    return Settings(dsn, zones)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r}") from None


_DAYS_AGO = re.compile(r"^(\d+)d$")


def parse_time(text: str, tz: ZoneInfo, now: datetime) -> datetime:
    """ISO 8601 date (midnight in ``tz``) or date-time (``tz`` if it has no offset), or ``Nd`` (N days before now)."""
    m = _DAYS_AGO.match(text.strip())
    if m:
        return now - timedelta(days=int(m.group(1)))
    try:
        if len(text.strip()) == 10:
            d = date.fromisoformat(text.strip())
            return datetime(d.year, d.month, d.day, tzinfo=tz)
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"not a date or time: {text!r} (expected e.g. 2024-05-01, 2024-05-01T08:00+02:00 or 7d)") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def build_query(args: argparse.Namespace, settings: Settings, now: datetime | None = None) -> ReportQuery:
    now = now or datetime.now(UTC)
    tz_name = args.tz or (settings.site_zones.get(args.site) if args.site else None) or "UTC"
    tz = _zone(tz_name)
    until = parse_time(args.until, tz, now) if args.until else None
    since = parse_time(args.since, tz, now) if args.since else (until or now) - timedelta(days=DEFAULT_DAYS)
    if until is not None and since >= until:
        raise UsageError("--since must be before --until")
    zones = {} if args.tz else dict(settings.site_zones)
    for name in zones.values():
        _zone(name)
    return ReportQuery(since, until, args.site, args.destination, tz_name, zones)


def _run(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def main() -> T:
        conn = await asyncpg.connect(settings.dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


# ------------------------------------------------------------------------------------------ commands
def render(name: str, rows: list[dict[str, Any]], q: ReportQuery, fmt: str) -> str:
    title, columns = REPORTS[name]
    if fmt == "json":
        payload: dict[str, Any] = {"report": name, "title": title, "since": q.since, "until": q.until,
                                   "site": q.site, "destination": q.destination}
        if name == "heatmap":
            payload["time_zone"] = q.default_tz
            payload["site_time_zones"] = dict(q.site_zones)
        payload["rows"] = rows
        return format_json(payload)
    if fmt == "csv":
        return format_csv(rows, columns)
    if name == "heatmap":
        zones = "each site's time zone" if q.site_zones else q.default_tz
        return f"{title}: requests, rows Mon..Sun, columns hour of day ({zones})\n" + format_heatmap_table(rows)
    return format_table(rows, columns)


def _guarded(args: argparse.Namespace, body: Callable[[Settings], int]) -> int:
    settings = _settings(args)
    if isinstance(settings, int):
        return settings
    try:
        return body(settings)
    except UsageError as exc:
        print(f"callswitch: error: {exc}", file=sys.stderr)
        return USAGE
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"callswitch: database error: {exc}", file=sys.stderr)
        return FAILED


def cmd_report(args: argparse.Namespace) -> int:
    def body(settings: Settings) -> int:
        q = build_query(args, settings)
        rows = _run(settings, lambda conn: fetch_report(conn, args.report, q))
        sys.stdout.write(render(args.report, rows, q, args.format))
        return OK

    return _guarded(args, body)


def cmd_html(args: argparse.Namespace) -> int:
    from callswitch.reports.html import render_html

    def body(settings: Settings) -> int:
        q = build_query(args, settings)
        page = _run(settings, lambda conn: render_html(conn, q.since, q.until, q.site, destination=q.destination,
                                                       default_tz=q.default_tz, site_zones=q.site_zones))
        if args.output == "-":
            sys.stdout.write(page)
        else:
            Path(args.output).write_text(page, encoding="utf-8")
            print(f"wrote {args.output} ({len(page.encode())} bytes)", file=sys.stderr)
        return OK

    return _guarded(args, body)


def cmd_purge(args: argparse.Namespace) -> int:
    from callswitch.reports.retention import DEFAULT_KEEP_ATTRIBUTES, purge

    def body(settings: Settings) -> int:
        if args.older_than_days < 0:
            raise UsageError("--older-than-days must be >= 0")
        keep = tuple(args.keep_attribute) if args.keep_attribute else DEFAULT_KEEP_ATTRIBUTES
        result = _run(settings, lambda conn: purge(conn, args.older_than_days, dry_run=args.dry_run,
                                                   keep_attributes=keep))
        if args.format == "json":
            sys.stdout.write(format_json(result))
        else:
            verb = "would anonymise" if args.dry_run else "anonymised"
            print(f"{verb} {result['requests']} request(s), {result['call_legs']} visitor leg(s), "
                  f"{result['events']} event(s) created before {result['cutoff'].isoformat()}")
        return OK

    return _guarded(args, body)
