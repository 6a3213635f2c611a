"""The HTML report: one self-contained page (inline CSS and SVG, no JavaScript, no external request).

``render_html(conn, since, until, site)`` is what ``callswitch report html`` writes and what the
daemon can serve under an admin path. The charts are drawn by matplotlib (:mod:`callswitch.reports.charts`)
in a worker thread, so a report being drawn does not hold up the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

import asyncpg

from callswitch import __version__
from callswitch.reports import charts
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
.scroll{overflow-x:auto}figure{margin:12px 0}figcaption{font-weight:600;font-size:14px;margin-bottom:4px}
svg{display:block;max-width:100%;height:auto}details{margin:4px 0 16px;font-size:13px}summary{cursor:pointer}
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
    # tabindex: a table wider than the page scrolls, and keyboard users must be able to scroll it too
    return (f'<div class="scroll" tabindex="0"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


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
    return await asyncio.to_thread(_document, title, q, summary, data)


def _document(title: str, q: ReportQuery, summary: Row, data: Mapping[str, list[Row]]) -> str:
    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    filters = [f"site {q.site}" if q.site else "all sites"]
    if q.destination:
        filters.append(f"first destination {q.destination}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
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

    parts.append("<h2>Funnel</h2>")
    parts.append(_funnel_chart(data["funnel"]))
    parts.append(html_table(data["funnel"], REPORTS["funnel"][1]))

    parts.append("<h2>Top pages</h2>")
    parts.append(_pages_chart(data["pages"][:TOP_PAGES]))
    parts.append(html_table(data["pages"], REPORTS["pages"][1]))

    parts.append("<h2>Stores and teams</h2>")
    parts.append(_stores_chart(data["destinations"]))
    parts.append(html_table(data["destinations"], REPORTS["destinations"][1]))
    parts.append("<h3>Members</h3>")
    parts.append(html_table(data["members"], REPORTS["members"][1]))

    parts.append("<h2>When requests arrive</h2>")
    zone_note = "each site's local time" if q.site_zones else q.default_tz
    parts.append(_heatmap_chart(data["heatmap"], zone_note))

    # the rest as tables
    for name, heading in (("campaigns", "Campaigns"), ("sites", "Sites"), ("trunks", "Trunks")):
        parts.append(f"<h2>{heading}</h2>")
        parts.append(html_table(data[name], REPORTS[name][1]))
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _figure(key: str, caption: str, svg: str, summary: str) -> str:
    """A chart as a <figure>: the caption is its title, ``summary`` its text alternative (the figures in words)."""
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(summary)}" ', 1)
    svg = svg.replace(">", f"><title>{escape(caption)}</title>", 1)
    return (f'<figure id="chart-{key}" aria-labelledby="chart-{key}-caption">'
            f'<figcaption id="chart-{key}-caption">{escape(caption)}</figcaption>{svg}</figure>')


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _page_label(page: str) -> str:
    for scheme in ("https://", "http://"):
        if page.startswith(scheme):
            page = page[len(scheme):]
    return _short(page)


def _funnel_chart(funnel: Sequence[Row]) -> str:
    if not any(r["reached"] for r in funnel):
        funnel = []  # no requests: "no data" rather than bars of zero
    labels = [str(r["step"]).replace("_", " ") for r in funnel]
    texts = [f"{r['reached']} ({_pct(r['share_of_requests'])})" for r in funnel]
    svg = charts.bar_chart("funnel", labels, [charts.Panel("", "requests", [
        charts.Series("requests", [float(r["reached"]) for r in funnel], texts)])])
    summary = "; ".join(f"{label}: {text}" for label, text in zip(labels, texts, strict=True)) or "no data"
    return _figure("funnel", "Funnel: requests reaching each step", svg, summary)


def _pages_chart(pages: Sequence[Row]) -> str:
    labels = [_page_label(str(r["page"])) for r in pages]
    svg = charts.bar_chart("pages", labels, [
        charts.Panel("Requests", "requests", [charts.Series(
            "requests", [float(r["requests"]) for r in pages], [str(r["requests"]) for r in pages])]),
        charts.Panel("Connect rate", "connected / requests", [charts.Series(
            "connect rate", [r["connect_rate"] for r in pages], [_pct(r["connect_rate"]) for r in pages],
            charts.GREEN)], percent=True),
    ])
    summary = "; ".join(f"{r['page']}: {r['requests']} requests, {_pct(r['connect_rate'])} connected"
                        for r in pages) or "no data"
    return _figure("pages", "Top pages by requests, and their connect rate", svg, summary)


def _stores_chart(dests: Sequence[Row]) -> str:
    labels = [_short(str(r["destination"]), 32) for r in dests]
    median = [r["median_time_to_answer_s"] for r in dests]
    p90 = [r["p90_time_to_answer_s"] for r in dests]
    svg = charts.bar_chart("stores", labels, [
        charts.Panel("Answer rate", "answered / (answered + missed)", [charts.Series(
            "answer rate", [r["answer_rate"] for r in dests], [_pct(r["answer_rate"]) for r in dests],
            charts.GREEN)], percent=True),
        charts.Panel("Time to answer", "seconds from the first ring to pick-up", [
            charts.Series("median", median, [_secs(v) for v in median]),
            charts.Series("90th percentile", p90, [_secs(v) for v in p90], charts.LIGHT_BLUE)]),
    ])
    summary = "; ".join(f"{r['destination']}: answer rate {_pct(r['answer_rate'])}, time to answer median "
                        f"{_secs(r['median_time_to_answer_s'])}, 90th percentile {_secs(r['p90_time_to_answer_s'])}"
                        for r in dests) or "no data"
    return _figure("stores", "Answer rate and time to answer per store", svg, summary)


def _heatmap_chart(cells: Sequence[Row], zone_note: str) -> str:
    grid = {(int(r["weekday"]), int(r["hour"])): int(r["requests"]) for r in cells}
    svg = charts.heatmap("heatmap", grid, xlabel=f"hour of day ({zone_note})")
    busy = sorted((r for r in cells if r["requests"]), key=lambda r: (-r["requests"], r["weekday"], r["hour"]))
    summary = ("busiest hours: " + "; ".join(f"{_slot(r)}: {r['requests']} requests" for r in busy[:5])
               if busy else "no data")
    caption = f"Requests by weekday and hour ({zone_note})"
    rows = [{"weekday": charts.WEEKDAYS[int(r["weekday"]) - 1], "hour": f"{int(r['hour']):02d}:00-"
             f"{int(r['hour']):02d}:59", "requests": r["requests"], "connected": r["connected"]}
            for r in cells if r["requests"]]
    table = (f"<details><summary>The heat map as a table ({len(rows)} hours with requests)</summary>"
             f"{html_table(rows, ('weekday', 'hour', 'requests', 'connected'))}</details>")
    return _figure("heatmap", caption, svg, summary) + table


def _slot(r: Row) -> str:
    return f"{charts.WEEKDAYS[int(r['weekday']) - 1]} {int(r['hour']):02d}:00"
