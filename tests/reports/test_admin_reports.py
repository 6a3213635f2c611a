"""The reports over the admin API: the HTML page and each report as JSON, behind the admin token."""

from __future__ import annotations

import asyncpg

from callswitch.reports.data import REPORTS, ReportQuery, fetch_report
from tests.intake.conftest import ClientFactory
from tests.reports.history import SINCE, UNTIL

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
WINDOW = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


async def test_reports_need_the_admin_token(conn: asyncpg.Connection, make_client: ClientFactory) -> None:
    client = await make_client()
    for path in ("/v1/admin/reports/html", "/v1/admin/reports/pages"):
        resp = await client.get(path, params=WINDOW)
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        resp = await client.get(path, params=WINDOW, headers={"Authorization": "Bearer wrong-token"})
        assert resp.status == 403 and (await resp.json())["error"] == "invalid_admin_token"


async def test_each_report_as_json_matches_the_cli_rows(conn: asyncpg.Connection, make_client: ClientFactory) -> None:
    client = await make_client()
    for name in REPORTS:
        resp = await client.get(f"/v1/admin/reports/{name}", params=WINDOW, headers=ADMIN)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        expected = await fetch_report(conn, name, ReportQuery(SINCE, UNTIL))
        assert body["report"] == name and len(body["rows"]) == len(expected)
        assert [r.get(k) for r in body["rows"] for k in ("requests", "connected") if k in r] == \
               [r.get(k) for r in expected for k in ("requests", "connected") if k in r]
    pages = (await (await client.get("/v1/admin/reports/pages", params=WINDOW, headers=ADMIN)).json())["rows"]
    assert sum(r["requests"] for r in pages) > 0  # the known history has requests in the window


async def test_bad_report_queries_name_the_problem(conn: asyncpg.Connection, make_client: ClientFactory) -> None:
    client = await make_client()
    resp = await client.get("/v1/admin/reports/nonsense", headers=ADMIN)
    assert resp.status == 404 and "pages" in (await resp.json())["message"]
    resp = await client.get("/v1/admin/reports/pages", params={"since": "last tuesday"}, headers=ADMIN)
    assert resp.status == 422
    assert [f["field"] for f in (await resp.json())["fields"]] == ["since"]
    resp = await client.get("/v1/admin/reports/pages", params={"since": UNTIL.isoformat(), "until": SINCE.isoformat()},
                            headers=ADMIN)
    assert resp.status == 422


async def test_html_report_is_served_self_contained(conn: asyncpg.Connection, make_client: ClientFactory) -> None:
    client = await make_client()
    resp = await client.get("/v1/admin/reports/html", params=WINDOW, headers=ADMIN)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert resp.headers["Cache-Control"] == "no-store"
    page = await resp.text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 4
    assert "<script" not in page  # nothing to run, nothing to fetch
    assert not any(attr in page for attr in ('src="http', "src='http", 'href="http', "url(http"))
