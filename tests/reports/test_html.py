"""The HTML report: self-contained, every chart present with its labels and the figures of the known history.

The charts are matplotlib SVG with text kept as text, so the checks read titles, axis labels and figures
from the page, and in Chromium where each figure is drawn (next to the right row label, in the right
heat map cell), never pixels.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from html import unescape
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callswitch.reports import charts
from callswitch.reports.html import render_html
from tests.reports.history import SINCE, UNTIL, ZONES

CHROMIUM = "/usr/bin/chromium"
CHARTS = {  # figure id -> caption
    "chart-funnel": "Funnel: requests reaching each step",
    "chart-pages": "Top pages by requests, and their connect rate",
    "chart-stores": "Answer rate and time to answer per store",
    "chart-heatmap": "Requests by weekday and hour (each site's local time)",
}


def svg_texts(page: str, figure_id: str) -> list[str]:
    """The text elements of one chart, in document order."""
    m = re.search(rf'<figure id="{figure_id}".*?</figure>', page, re.S)
    assert m, f"no figure {figure_id}"
    return [unescape(t) for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", m.group(0))]


def without_timestamp(page: str) -> str:
    return re.sub(r"generated \S+ by", "generated - by", page)


async def test_html_report_content(conn: asyncpg.Connection) -> None:
    page = await render_html(conn, SINCE, UNTIL, site_zones=ZONES)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # headline tiles: 9 requests, 2 connected, 22.2 %, median speed to lead 325 s = 5.4 min
    tiles = dict((k, v) for v, k in re.findall(r'<div class="v">([^<]*)</div><div class="k">([^<]*)</div>', page))
    assert tiles == {"Requests": "9", "Connected": "2", "Connect rate": "22.2%", "Median speed to lead": "5.4 min",
                     "Outside opening hours": "1", "Talk time": "6.8 min"}

    # every chart: a <figure> with its caption, an <svg> with a role, an accessible summary and a <title>
    figures = re.findall(r'<figure id="([^"]+)" aria-labelledby="\1-caption"><figcaption id="\1-caption">([^<]*)'
                         r'</figcaption><svg role="img" aria-label="([^"]*)"[^>]*><title>([^<]*)</title>', page)
    assert [(f, unescape(c)) for f, c, _, _ in figures] == list(CHARTS.items())
    assert all(unescape(t) == unescape(c) for _, c, _, t in figures)
    summaries = {f: unescape(s) for f, _, s, _ in figures}
    assert "requested: 9 (100.0%)" in summaries["chart-funnel"]
    assert "https://shop.example/widgets: 3 requests, 66.7% connected" in summaries["chart-pages"]
    assert "berlin: answer rate 100.0%, time to answer median 10 s, 90th percentile 20 s" in summaries["chart-stores"]
    assert summaries["chart-heatmap"].startswith("busiest hours: Wed 10:00: 2 requests; Mon 11:00: 1 requests")

    # the figures are text in the SVG (svg.fonttype none), next to their labels and axis titles
    funnel = svg_texts(page, "chart-funnel")
    for label in ("requested", "agent rung", "agent answered", "accepted", "visitor answered", "connected",
                  "9 (100.0%)", "6 (66.7%)", "5 (55.6%)", "4 (44.4%)", "2 (22.2%)", "requests"):
        assert label in funnel, label
    pages = svg_texts(page, "chart-pages")
    for label in ("Requests", "Connect rate", "requests", "connected / requests", "shop.example/widgets",
                  "shop.example/contact", "blog.example/post-1", "blog.example/pricing", "66.7%", "0.0%", "100%"):
        assert label in pages, label
    assert Counter(pages)["3"] >= 2 and "2" in pages and "1" in pages  # bar texts (and maybe ticks)
    stores = svg_texts(page, "chart-stores")
    for label in ("Answer rate", "Time to answer", "answered / (answered + missed)",
                  "seconds from the first ring to pick-up", "median", "90th percentile", "berlin", "hamburg",
                  "support", "100.0%", "50.0%", "10 s", "20 s", "8 s"):
        assert label in stores, label
    heat = svg_texts(page, "chart-heatmap")
    assert "hour of day (each site's local time)" in heat
    assert all(d in heat for d in charts.WEEKDAYS) and all(str(h) in heat for h in range(24))
    cells = dict(re.findall(r'<g id="heatmap-cell-(\d-\d+)">\s*<text\b[^>]*>(\d+)</text>', page))
    assert cells == {"1-11": "1", "1-12": "1", "1-13": "1", "2-10": "1", "2-11": "1", "3-10": "2", "4-5": "1",
                     "6-22": "1"}  # Berlin and New York time; R4 is Saturday 22:00 in Berlin
    # the heat map's data as a table too
    assert "<td>Sat</td><td>22:00-22:59</td><td class=\"n\">1</td><td class=\"n\">0</td>" in page

    # tables of every report
    for heading in ("Members", "Campaigns", "Sites", "Trunks"):
        assert f">{heading}</h" in page, heading
    assert "<td>https://shop.example/widgets</td>" in page
    assert "<td>carrier</td>" in page and "34=1" in page

    # one file, offline: no script, no raster image, no reference outside the page
    assert "<script" not in page and "src=" not in page and "<image" not in page and "@import" not in page
    assert page.count("<svg") == 4
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    refs = re.findall(r'href="([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page)
    assert refs and all(r.startswith("#") and r[1:] in ids for r in refs), refs


async def test_html_report_is_deterministic(conn: asyncpg.Connection) -> None:
    first = await render_html(conn, SINCE, UNTIL, site_zones=ZONES)
    second = await render_html(conn, SINCE, UNTIL, site_zones=ZONES)
    assert without_timestamp(first) == without_timestamp(second)
    assert "<metadata" not in first and "<dc:date" not in first
    # ids are the same but for the chart's key, so two charts on one page never share one
    a = charts.bar_chart("a", ["x"], [charts.Panel("t", "n", [charts.Series("s", [1.0], ["1"])])])
    b = charts.bar_chart("b", ["x"], [charts.Panel("t", "n", [charts.Series("s", [1.0], ["1"])])])
    assert a.replace('"a-', '"b-').replace("#a-", "#b-") == b and a != b


async def test_html_report_escapes_and_handles_no_data(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE callback_requests SET page_url = 'https://x.example/$5$/<script>alert(1)</script>' "
                       "WHERE page_url LIKE 'https://blog.example/pricing%'")
    page = await render_html(conn, SINCE, UNTIL)
    assert "<script>" not in page and "&lt;script&gt;" in page
    # in the chart as it was sent: escaped, and "$5$" is not taken for a formula
    assert "x.example/$5$/<script>alert(1)</script>" in svg_texts(page, "chart-pages")
    assert "Requests by weekday and hour (UTC)" in page  # no site zones given

    empty = await render_html(conn, UNTIL, None, site="nowhere")
    assert empty.count("<svg") == 4
    for figure_id in CHARTS:
        assert "no data" in svg_texts(empty, figure_id), figure_id
    assert empty.count('aria-label="no data"') == 4
    assert "0 hours with requests" in empty


def test_matplotlib_is_imported_only_when_a_chart_is_drawn() -> None:
    code = ("import sys, callswitch.cli, callswitch.daemon, callswitch.reports, callswitch.reports.html\n"
            "before = 'matplotlib' in sys.modules\n"
            "from callswitch.reports import charts\n"
            "charts.heatmap('h', {(1, 0): 1})\n"
            "print(before, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["False", "True"]


# --- in Chromium -------------------------------------------------------------------------------------------

TEXTS_JS = """(id) => Array.from(document.querySelectorAll('#' + id + ' svg text')).map(t => {
  const r = t.getBoundingClientRect(); const ids = [];
  for (let g = t.closest('g[id]'); g; g = g.parentElement.closest('g[id]')) ids.push(g.id);
  return {text: t.textContent, x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width, g: ids.join(' ')};
})"""


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    async with async_playwright() as pw:
        try:
            browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                               args=["--headless", "--no-sandbox", "--disable-gpu"])
        except Exception as exc:  # e.g. a driver/browser mismatch
            pytest.skip(f"cannot launch {CHROMIUM}: {exc}")
        yield browser
        await browser.close()


async def open_report(chromium: Any, page_html: str, tmp_path: Path) -> Any:
    path = tmp_path / "report.html"
    path.write_text(page_html, encoding="utf-8")
    context = await chromium.new_context(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = await context.new_page()
    await page.goto(path.as_uri())
    await page.wait_for_load_state("load")
    assert requests == [path.as_uri()], requests  # nothing fetched but the file itself
    return page


def row_of(texts: list[dict[str, Any]], label: str) -> list[str]:
    """The texts right of a row label and on its line: the figures drawn for that row in every panel."""
    row = next(t for t in texts if t["text"] == label)
    return [t["text"] for t in texts if t is not row and abs(t["y"] - row["y"]) < 12 and t["x"] > row["x"]]


async def test_html_report_in_chromium(conn: asyncpg.Connection, chromium: Any, tmp_path: Path) -> None:
    page = await open_report(chromium, await render_html(conn, SINCE, UNTIL, site_zones=ZONES), tmp_path)
    for figure_id, caption in CHARTS.items():
        figure = page.locator(f"#{figure_id}")
        assert await figure.get_attribute("aria-labelledby") == f"{figure_id}-caption"
        assert (await page.locator(f"#{figure_id} figcaption").inner_text()).strip() == caption
        box = await page.locator(f"#{figure_id} svg").bounding_box()
        assert box and 900 < box["width"] <= 1100 and box["height"] > 150, (figure_id, box)
        img = page.get_by_role("img", name=re.compile("."), exact=False).and_(page.locator(f"#{figure_id} svg"))
        assert await img.count() == 1, figure_id

    funnel = await page.evaluate(TEXTS_JS, "chart-funnel")
    assert row_of(funnel, "requested") == ["9 (100.0%)"]
    assert row_of(funnel, "accepted") == ["4 (44.4%)"]
    assert row_of(funnel, "connected") == ["2 (22.2%)"]

    pages = await page.evaluate(TEXTS_JS, "chart-pages")
    assert row_of(pages, "shop.example/widgets") == ["3", "66.7%"]
    assert row_of(pages, "shop.example/contact") == ["3", "0.0%"]
    assert row_of(pages, "blog.example/pricing") == ["1", "0.0%"]
    labels = [t["text"] for t in sorted(pages, key=lambda t: t["y"]) if t["text"].startswith(("shop.", "blog."))]
    assert labels[:2] == ["shop.example/contact", "shop.example/widgets"] and len(labels) == 4  # most requests first

    stores = await page.evaluate(TEXTS_JS, "chart-stores")
    assert row_of(stores, "berlin") == ["100.0%", "10 s", "20 s"]  # answer rate, median, 90th percentile
    assert row_of(stores, "hamburg") == ["50.0%", "10 s", "10 s"]
    assert row_of(stores, "support") == ["100.0%", "8 s", "8 s"]

    heat = await page.evaluate(TEXTS_JS, "chart-heatmap")

    def at(text: str, axis: str) -> dict[str, Any]:
        return next(t for t in heat if t["text"] == text and axis in t["g"])

    cells = {t["g"].split()[0]: t for t in heat if "-cell-" in t["g"]}
    assert sorted(int(t["text"]) for t in cells.values()) == [1, 1, 1, 1, 1, 1, 1, 2]  # 9 requests in May
    for (d, h), n in (((6, 22), "1"), ((3, 10), "2"), ((4, 5), "1")):
        cell = cells[f"heatmap-cell-{d}-{h}"]
        hour, day = at(str(h), "xtick"), at(charts.WEEKDAYS[d - 1], "ytick")
        assert cell["text"] == n
        assert abs(cell["x"] - hour["x"]) < 3 and abs(cell["y"] - day["y"]) < 3, (cell, hour, day)

    # no overlapping row labels: each fits left of the bars and the rows are apart
    for texts, names in ((pages, [t["text"] for t in pages if t["text"].startswith(("shop.", "blog."))]),
                         (stores, ["berlin", "hamburg", "support"])):
        ys = sorted(t["y"] for t in texts if t["text"] in names)
        assert all(b - a > 14 for a, b in pairwise(ys)), ys


async def test_html_report_accessibility(conn: asyncpg.Connection, chromium: Any, tmp_path: Path) -> None:
    try:
        import axe_playwright_python
    except ImportError:
        pytest.skip("axe-core is not available (pip install axe-playwright-python)")
    page = await open_report(chromium, await render_html(conn, SINCE, UNTIL, site_zones=ZONES), tmp_path)
    await page.add_script_tag(path=str(Path(axe_playwright_python.__file__).with_name("axe.min.js")))
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert bad == [], bad
