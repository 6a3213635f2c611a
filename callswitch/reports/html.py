"""The HTML report: one self-contained page (inline CSS and SVG, no JavaScript, no external request).

``render_html(conn, since, until, site)`` is what ``callswitch report html`` writes and what the
daemon can serve under an admin path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

import asyncpg

from callswitch import __version__
from callswitch.reports import svg
from callswitch.reports.data import REPORTS, ReportQuery, Row, fetch_report, fetch_summary
from callswitch.reports.formatting import cell

TOP_PAGES = 10

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;margin:24px auto;max-width:1100px;
padding:0 16px;line-height:1.4}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #d9dee5;
padding-bottom:4px}.meta{color:#6b7785;font-size:13px}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.tile{border:1px solid #d9dee5;border-radius:6px;
padding:10px 14px;min-width:150px}.tile .v{font-size:22px;font-weight:600}.tile .k{font-size:12px;color:#6b7785}
table{border-collapse:collapse;font-size:12px;margin:8px 0 16px}th,td{padding:3px 8px;border-bottom:1px solid #eef1f4;
text-align:left;white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f5f7f9}
.scroll{overflow-x:auto}.charts{display:flex;flex-wrap:wrap;gap:16px}svg{max-width:100%;height:auto}
"""


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 120:
        return f"{v:.0f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        tds = []
        for c in columns:
            v = r.get(c)
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            tds.append(f'<td class="n">{escape(cell(v))}</td>' if numeric else f"<td>{escape(cell(v))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(columns)}">no data</td></tr>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


def _period(since: datetime | None, until: datetime | None) -> str:
    a = since.isoformat() if since else "the beginning"
    b = until.isoformat() if until else "now"
    return f"requests from {a} until {b}"


async def render_html(
    conn: asyncpg.Connection,
    since: datetime | None,
    until: datetime | None,
    site: str | None = None,
    *,
    destination: str | None = None,
    default_tz: str = "UTC",
    site_zones: Mapping[str, str] | None = None,
    title: str = "callswitch report",
) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    q = ReportQuery(since, until, site, destination, default_tz, dict(site_zones or {}))
    summary = await fetch_summary(conn, q)
    data: dict[str, list[Row]] = {name: await fetch_report(conn, name, q) for name in REPORTS}
    return _document(title, q, summary, data)


def _document(title: str, q: ReportQuery, summary: Row, data: Mapping[str, list[Row]]) -> str:
    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    filters = [f"site {q.site}" if q.site else "all sites"]
    if q.destination:
        filters.append(f"first destination {q.destination}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(_period(q.since, q.until))}; {escape(", ".join(filters))}; '
        f"generated {escape(generated)} by callswitch {escape(__version__)}</p>",
        '<div class="tiles">',
    ]
    tiles = [
        ("Requests", str(summary["requests"])),
        ("Connected", str(summary["connected"])),
        ("Connect rate", _pct(summary["connect_rate"])),
        ("Median speed to lead", _secs(summary["median_speed_to_lead_s"])),
        ("Outside opening hours", str(summary["after_hours"])),
        ("Talk time", _secs(float(summary["talk_seconds"])) if summary["talk_seconds"] else "-"),
    ]
    parts += [f'<div class="tile"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div></div>'
              for k, v in tiles]
    parts.append("</div>")

    # funnel
    funnel = data["funnel"]
    parts.append("<h2>Funnel</h2>")
    parts.append(svg.funnel_chart([(r["step"].replace("_", " "), r["reached"], r["share_of_requests"])
                                   for r in funnel], title="Funnel: requests reaching each step"))
    parts.append(html_table(funnel, REPORTS["funnel"][1]))

    # pages
    pages = data["pages"][:TOP_PAGES]
    parts.append("<h2>Top pages</h2><div class=\"charts\">")
    parts.append(svg.bar_chart([(r["page"], float(r["requests"]), f"{r['requests']} requests") for r in pages],
                               title="Top pages by requests"))
    parts.append(svg.bar_chart([(r["page"], r["connect_rate"], _pct(r["connect_rate"])) for r in pages],
                               title="Connect rate of the top pages", max_value=1.0, color=svg.BAR_ALT))
    parts.append("</div>")
    parts.append(html_table(data["pages"], REPORTS["pages"][1]))

    # stores
    dests = data["destinations"]
    parts.append("<h2>Stores and teams</h2><div class=\"charts\">")
    parts.append(svg.bar_chart([(r["destination"], r["answer_rate"], _pct(r["answer_rate"])) for r in dests],
                               title="Answer rate per store", max_value=1.0, color=svg.BAR_ALT))
    parts.append(svg.bar_chart(
        [(r["destination"], r["median_time_to_answer_s"],
          f"median {_secs(r['median_time_to_answer_s'])}, p90 {_secs(r['p90_time_to_answer_s'])}") for r in dests],
        title="Time to answer per store (median)"))
    parts.append("</div>")
    parts.append(html_table(dests, REPORTS["destinations"][1]))
    parts.append("<h3>Members</h3>")
    parts.append(html_table(data["members"], REPORTS["members"][1]))

    # heat map
    grid = {(int(r["weekday"]), int(r["hour"])): int(r["requests"]) for r in data["heatmap"]}
    connected = {(int(r["weekday"]), int(r["hour"])): int(r["connected"]) for r in data["heatmap"]}
    zone_note = "each site's local time" if q.site_zones else q.default_tz
    parts.append("<h2>When requests arrive</h2>")
    parts.append(svg.heatmap_chart(
        grid, title=f"Requests by weekday and hour ({zone_note})",
        note=lambda d, h, n: f"{svg.WEEKDAYS[d - 1]} {h:02d}:00-{h:02d}:59: {n} requests, "
                             f"{connected.get((d, h), 0)} connected"))

    # the rest as tables
    for name, heading in (("campaigns", "Campaigns"), ("sites", "Sites"), ("trunks", "Trunks")):
        parts.append(f"<h2>{heading}</h2>")
        parts.append(html_table(data[name], REPORTS[name][1]))
    parts.append("</body></html>\n")
    return "\n".join(parts)
