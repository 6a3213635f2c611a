"""The HTML report: self-contained, with the expected titles and figures."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from callswitch.reports.html import render_html
from callswitch.reports.svg import bar_chart
from tests.reports.history import SINCE, UNTIL, ZONES

CHROMIUM = "/usr/bin/chromium"


async def test_html_report_content(conn: asyncpg.Connection) -> None:
    page = await render_html(conn, SINCE, UNTIL, site_zones=ZONES)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for title in ("Funnel: requests reaching each step", "Top pages by requests", "Connect rate of the top pages",
                  "Answer rate per store", "Time to answer per store (median)",
                  "Requests by weekday and hour (each site&#x27;s local time)", "Members", "Campaigns", "Trunks"):
        assert title in page, title
    # headline tiles: 9 requests, 2 connected, 22.2 %, median speed to lead 325 s = 5.4 min
    tiles = dict((k, v) for v, k in re.findall(r'<div class="v">([^<]*)</div><div class="k">([^<]*)</div>', page))
    assert tiles == {"Requests": "9", "Connected": "2", "Connect rate": "22.2%", "Median speed to lead": "5.4 min",
                     "Outside opening hours": "1", "Talk time": "6.8 min"}
    assert "9 (100.0%)" in page and "2 (22.2%)" in page  # funnel bars
    assert "3 requests" in page and "66.7%" in page  # top page /widgets
    assert "median 10 s, p90 20 s" in page  # berlin (20.5 s shown rounded)
    assert "Sat 22:00-22:59: 1 requests, 0 connected" in page  # heat map cell of R4 (Berlin time)
    assert "<td>https://shop.example/widgets</td>" in page
    assert "<td>carrier</td>" in page and "34=1" in page
    # offline: no scripts, no external resources
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert page.count("<svg") == 6


async def test_html_report_escapes_and_handles_no_data(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE callback_requests SET page_url = 'https://x.example/<script>alert(1)</script>' "
                       "WHERE page_url LIKE 'https://blog.example/pricing%'")
    page = await render_html(conn, SINCE, UNTIL)
    assert "<script>" not in page and "&lt;script&gt;" in page
    empty = await render_html(conn, UNTIL, None, site="nowhere")
    assert "no data" in empty and "<svg" in empty
    assert "no data" in bar_chart([], title="x")


@pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
                    reason="Debian chromium is not installed")
async def test_html_report_renders_in_headless_chromium(conn: asyncpg.Connection, tmp_path: Path) -> None:
    page = await render_html(conn, SINCE, UNTIL, site_zones=ZONES)
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")

    def dump() -> subprocess.CompletedProcess[str]:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                               html.as_uri()], capture_output=True, text=True, timeout=90, check=False)

    result = await asyncio.to_thread(dump)
    if result.returncode != 0 and not result.stdout:
        pytest.skip(f"chromium could not run here: {result.stderr[-300:]}")
    dom = result.stdout
    assert "Top pages by requests" in dom
    assert dom.count("<svg") == 6 and dom.count("<rect") > 168
