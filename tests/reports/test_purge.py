"""Retention: personal data go, the statistics stay."""

from __future__ import annotations

import json

import asyncpg
import pytest

from callswitch.reports.data import REPORTS, ReportQuery, fetch_report
from callswitch.reports.retention import purge
from tests.reports.history import SINCE, UNTIL, ZONES, rid, t


async def all_reports(conn: asyncpg.Connection) -> dict[str, list[dict]]:
    q = ReportQuery(None, None, site_zones=ZONES)
    return {name: await fetch_report(conn, name, q) for name in REPORTS}


async def test_purge_anonymises_old_finished_requests_only(conn: asyncpg.Connection) -> None:
    before = await all_reports(conn)
    # 2024-05-10 minus 5 days: only R9 (April) is old enough
    dry = await purge(conn, 5, dry_run=True, now=t("2024-05-10 00:00"))
    assert (dry["requests"], dry["call_legs"], dry["events"], dry["run_id"]) == (1, 0, 1, None)
    assert await conn.fetchval("SELECT count(*) FROM callback_requests WHERE anonymised_at IS NOT NULL") == 0
    done = await purge(conn, 5, now=t("2024-05-10 00:00"), actor="test")
    assert (done["requests"], done["call_legs"], done["events"]) == (1, 0, 1)
    assert done["cutoff"] == t("2024-05-05 00:00")
    r9 = await conn.fetchrow("SELECT * FROM callback_requests WHERE id = $1", rid("R9"))
    assert (r9["visitor_name"], r9["phone_e164"], r9["phone_given"], r9["client_ip"], r9["user_agent"]) == (
        "", "", "", None, None)
    r1 = await conn.fetchrow("SELECT * FROM callback_requests WHERE id = $1", rid("R1"))
    assert r1["visitor_name"] == "Visitor R1" and r1["anonymised_at"] is None

    # everything finished before 2024-06-01, in batches of 2: R8 (still queued) keeps its data
    done = await purge(conn, 0, now=UNTIL, batch_size=2, actor="test")
    assert (done["requests"], done["call_legs"], done["events"]) == (8, 5, 8)
    rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM callback_requests")}
    for key in ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R9", "R10"):
        r = rows[rid(key)]
        assert r["anonymised_at"] is not None, key
        assert (r["visitor_name"], r["phone_given"], r["phone_e164"], r["request_fingerprint"]) == ("", "", "", ""), key
        assert (r["client_ip"], r["user_agent"], r["idempotency_key"]) == (None, None, None), key
        assert json.loads(r["attributes"]) == {"product": "widget", "company_size": 12}, key
        assert r["referrer"] == "https://www.google.com/search"
        assert r["pages_visited"][1] == "https://shop.example/"
        assert r["phone_country"] == "DE" and r["site"] in ("shop", "blog")
    assert rows[rid("R1")]["page_url"] == "https://shop.example/widgets"
    assert rows[rid("R1")]["utm_campaign"] == "spring"
    r8 = rows[rid("R8")]
    assert (r8["visitor_name"], r8["phone_e164"], r8["anonymised_at"]) == ("Visitor R8", "+491703333333", None)
    legs = await conn.fetch("SELECT leg, number_dialled, member FROM call_legs")
    assert {leg["number_dialled"] for leg in legs if leg["leg"] == "customer"} == {""}
    assert all(leg["number_dialled"] == leg["member"] for leg in legs if leg["leg"] == "agent")
    details = await conn.fetch("SELECT detail FROM callback_events WHERE event = 'accepted' AND request_id = $1",
                               rid("R1"))
    assert json.loads(details[0]["detail"])["page_url"] == "https://shop.example/widgets"
    runs = await conn.fetch(
        "SELECT older_than_days, requests, call_legs, events, actor FROM retention_runs ORDER BY id")
    assert [tuple(r) for r in runs] == [(5, 1, 0, 1, "test"), (0, 8, 5, 8, "test")]

    # the statistics are the same as before
    assert await all_reports(conn) == before
    # nothing left to do: no new audit row
    again = await purge(conn, 0, now=UNTIL)
    assert (again["requests"], again["run_id"]) == (0, None)
    assert await conn.fetchval("SELECT count(*) FROM retention_runs") == 2
    # a window report still works on anonymised data
    assert (await fetch_report(conn, "sites", ReportQuery(SINCE, UNTIL)))[0]["requests"] == 6


async def test_purge_rejects_nonsense(conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError):
        await purge(conn, -1)
    with pytest.raises(ValueError):
        await purge(conn, 1, batch_size=0)
