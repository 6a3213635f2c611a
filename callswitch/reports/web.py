"""The reports over HTTP, behind the admin bearer token (the same token as the admin API).

* ``GET /v1/admin/reports/html`` - the HTML report (:func:`callswitch.reports.html.render_html`), the page
  ``callswitch report html`` writes;
* ``GET /v1/admin/reports/{name}`` - one report's rows as JSON (``name`` as in ``callswitch report``).

Query parameters: ``since`` / ``until`` (ISO 8601 with an offset; default: the last 30 days), ``site``,
``destination``. The heat map uses each site's configured time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from callswitch.config import Config
from callswitch.intake import keys
from callswitch.intake.admin import param_time, record, require_admin
from callswitch.intake.http import ApiError, json_response
from callswitch.intake.validation import FieldError
from callswitch.reports.data import REPORTS, ReportQuery, fetch_report

DEFAULT_DAYS = 30
# the page is self-contained: inline CSS and SVG only, nothing to fetch, no script to run
HTML_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
}


def _query(request: web.Request) -> ReportQuery:
    errors: list[FieldError] = []
    since = param_time(request, "since", errors)
    until = param_time(request, "until", errors)
    if errors:
        raise ApiError(422, "validation_failed", "invalid query parameters", errors)
    if since is None:
        since = (until or datetime.now(UTC)) - timedelta(days=DEFAULT_DAYS)
    if until is not None and since >= until:
        raise ApiError(422, "validation_failed", "invalid query parameters",
                       [FieldError("since", "must be before until")])
    config: Config = request.app[keys.CONFIG]
    zones = {sid: s.time_zone for sid, s in config.sites.items()}
    return ReportQuery(since, until, request.query.get("site") or None, request.query.get("destination") or None,
                       "UTC", zones)


async def report_html(request: web.Request) -> web.Response:
    require_admin(request)
    from callswitch.reports.html import render_html  # matplotlib only once somebody asks for a report

    q = _query(request)
    async with request.app[keys.DB].acquire() as conn:
        page = await render_html(conn, q.since, q.until, q.site, destination=q.destination,
                                 default_tz=q.default_tz, site_zones=q.site_zones)
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=HTML_HEADERS)


async def report_json(request: web.Request) -> web.Response:
    require_admin(request)
    name = request.match_info["name"]
    if name not in REPORTS:
        raise ApiError(404, "not_found", f"no report {name!r}; reports: {', '.join(sorted(REPORTS))}")
    q = _query(request)
    async with request.app[keys.DB].acquire() as conn:
        rows = await fetch_report(conn, name, q)
    body: dict[str, Any] = {"report": name, "title": REPORTS[name][0],
                            "since": q.since.isoformat() if q.since else None,
                            "until": q.until.isoformat() if q.until else None,
                            "site": q.site, "destination": q.destination,
                            "rows": [record(r) for r in rows]}
    return json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/admin/reports/html", report_html)
    app.router.add_get("/v1/admin/reports/{name}", report_json)
