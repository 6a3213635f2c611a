"""Run the reports of migration 0010 and return their rows as plain Python values.

Every report is one SQL function (``cs_*_report``); the named queries are in ``db/queries/reports.sql``.
Counts come back as ``int``, rates (0..1) and durations (seconds) as ``float``, timestamps as ``datetime``,
JSON objects as ``dict``; ``None`` where there is no value (e.g. a median over no calls).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from callswitch.db.queries import QUERIES as Q

Row = dict[str, Any]

# report name -> (title, columns in output order)
REPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pages": ("Requests and connections per page", (
        "page", "requests", "after_hours", "connected", "connect_rate", "median_speed_to_lead_s",
        "median_speed_to_lead_in_hours_s", "talk_seconds")),
    "campaigns": ("Requests and connections per campaign", (
        "campaign", "requests", "after_hours", "connected", "connect_rate", "median_speed_to_lead_s",
        "median_speed_to_lead_in_hours_s", "talk_seconds")),
    "sites": ("Requests and connections per site", (
        "site", "requests", "after_hours", "connected", "connect_rate", "median_speed_to_lead_s",
        "median_speed_to_lead_in_hours_s", "talk_seconds")),
    "destinations": ("Leads offered per destination (store/team)", (
        "destination", "requests", "offered", "answered", "accepted", "declined", "missed", "answer_rate",
        "accept_rate", "median_time_to_answer_s", "p90_time_to_answer_s", "after_hours_share")),
    "members": ("Rings per destination member", (
        "destination", "member", "offered", "answered", "accepted", "declined", "missed", "answered_elsewhere",
        "answer_rate", "median_time_to_answer_s", "p90_time_to_answer_s", "after_hours_share")),
    "funnel": ("Funnel", ("step_no", "step", "reached", "share_of_requests", "stopped_here", "stop_reasons")),
    "heatmap": ("Requests by weekday and hour (local time of each site)", (
        "weekday", "hour", "requests", "connected")),
    "trunks": ("Trunks", (
        "trunk", "calls", "agent_calls", "visitor_calls", "answered", "minutes", "peak_concurrent", "failed",
        "failure_rate", "failures_by_cause")),
}


@dataclass(frozen=True)
class ReportQuery:
    """What to report on: requests created in [since, until) (legs originated in it, for trunks).

    ``site_zones`` maps site id -> IANA time zone for the heat map (from the configuration);
    ``default_tz`` is used for sites not in it.
    """

    since: datetime | None = None
    until: datetime | None = None
    site: str | None = None
    destination: str | None = None
    default_tz: str = "UTC"
    site_zones: Mapping[str, str] = field(default_factory=dict)


def _value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    return v


def _rows(records: list[asyncpg.Record], json_columns: tuple[str, ...] = ()) -> list[Row]:
    out: list[Row] = []
    for rec in records:
        row = {k: _value(v) for k, v in rec.items()}
        for col in json_columns:
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
        out.append(row)
    return out


async def fetch_report(conn: asyncpg.Connection, name: str, q: ReportQuery) -> list[Row]:
    """The rows of report ``name`` (a key of :data:`REPORTS`)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}")
    if name in ("pages", "campaigns", "sites"):
        sql = {"pages": Q.report_pages, "campaigns": Q.report_campaigns, "sites": Q.report_sites}[name]
        return _rows(await conn.fetch(sql, q.since, q.until, q.site))
    if name == "destinations":
        return _rows(await conn.fetch(Q.report_destinations, q.since, q.until, q.site, q.destination))
    if name == "members":
        return _rows(await conn.fetch(Q.report_members, q.since, q.until, q.site, q.destination))
    if name == "funnel":
        return _rows(await conn.fetch(Q.report_funnel, q.since, q.until, q.site, q.destination), ("stop_reasons",))
    if name == "heatmap":
        zones = json.dumps(dict(q.site_zones))
        return _rows(await conn.fetch(Q.report_heatmap, q.since, q.until, q.site, q.default_tz, zones))
    # trunks: the figures, and the failures by hangup cause folded into each row
    rows = _rows(await conn.fetch(Q.report_trunks, q.since, q.until, q.site))
    causes: dict[str, dict[str, int]] = {}
    for rec in await conn.fetch(Q.report_trunk_failures, q.since, q.until, q.site):
        cause = "unknown" if rec["hangup_cause"] is None else str(rec["hangup_cause"])
        causes.setdefault(rec["trunk"], {})[cause] = int(rec["failed"])
    for row in rows:
        row["failures_by_cause"] = causes.get(row["trunk"], {})
    return rows


async def fetch_summary(conn: asyncpg.Connection, q: ReportQuery) -> Row:
    """Headline figures of the period: requests, connected, connect rate, median speed to lead, talk time."""
    rec = await conn.fetchrow(Q.report_summary, q.since, q.until, q.site, q.destination)
    assert rec is not None
    return {k: _value(v) for k, v in rec.items()}
