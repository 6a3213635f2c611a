"""Exact figures of every analyst view and report function over the known history (tests/reports/history.py)."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from callswitch.reports.data import ReportQuery, fetch_report, fetch_summary
from tests.reports.history import SINCE, UNTIL, ZONES, rid, t

Q = ReportQuery(SINCE, UNTIL, site_zones=ZONES)
N = None


def table(rows: list[dict], *cols: str) -> list[tuple]:
    return [tuple(r[c] for c in cols) for r in rows]


async def test_request_funnel_per_request(conn: asyncpg.Connection) -> None:
    rows = {r["request_id"]: r for r in await conn.fetch("SELECT * FROM cs_request_funnel")}
    assert len(rows) == 10
    r1 = rows[rid("R1")]  # ring-all: three agent legs, one winner
    assert (r1["agent_legs"], r1["agent_declines"], r1["attempts"]) == (3, 0, 1)
    assert (r1["agent_rung_at"], r1["agent_answered_at"], r1["accepted_at"]) == (
        t("2024-05-06 10:00:05"), t("2024-05-06 10:00:15"), t("2024-05-06 10:00:20"))
    assert (r1["accepted_destination"], r1["accepted_member"]) == ("berlin", "+4930111")
    assert (r1["visitor_dialled_at"], r1["visitor_answered_at"], r1["connected_at"]) == (
        t("2024-05-06 10:00:21"), t("2024-05-06 10:00:30"), t("2024-05-06 10:00:30"))
    assert (r1["talk_seconds"], r1["speed_to_lead_s"]) == (290, Decimal(30))
    assert (r1["furthest_step"], r1["stop_reason"], r1["page"], r1["after_hours"]) == (
        "connected", "connected", "https://shop.example/widgets", False)
    r2 = rows[rid("R2")]  # retry: first step times from attempt 1, the connection from attempt 2
    assert (r2["attempts"], r2["agent_legs"], r2["agent_answered_at"], r2["accepted_at"]) == (
        2, 3, t("2024-05-06 11:00:30"), t("2024-05-06 11:00:35"))
    assert (r2["accepted_member"], r2["connected_at"], r2["talk_seconds"], r2["speed_to_lead_s"]) == (
        "+4930111", t("2024-05-06 11:10:20"), 120, Decimal(620))
    assert r2["after_hours"] is False  # a retry is scheduled too, but it is not the intake decision
    expected = {  # furthest step, stop reason, after hours, scheduled for
        "R3": ("agent_answered", "no_agent", False, None),
        "R4": ("accepted", "customer_no_answer", True, t("2024-05-13 07:00:00")),
        "R5": ("requested", "cancelled", False, t("2024-05-08 16:00:00")),
        "R6": ("accepted", "customer_unreachable", False, None),
        "R7": ("requested", "rejected", False, None),
        "R8": ("requested", "waiting", False, None),
        "R9": ("agent_rung", "no_agent", False, None),
        "R10": ("agent_rung", "no_agent", False, None),
    }
    for key, want in expected.items():
        r = rows[rid(key)]
        assert (r["furthest_step"], r["stop_reason"], r["after_hours"], r["scheduled_for"]) == want, key
        assert r["connected"] is False and r["talk_seconds"] is None and r["speed_to_lead_s"] is None
    assert rows[rid("R3")]["agent_declines"] == 1


async def test_agent_rings_and_offers(conn: asyncpg.Connection) -> None:
    rings = await conn.fetch("SELECT member, result, time_to_answer_s FROM cs_agent_rings "
                             "WHERE request_id = $1 ORDER BY leg_id", rid("R1"))
    assert [(r["member"], r["result"], r["time_to_answer_s"]) for r in rings] == [
        ("+4930111", "accepted", Decimal(10)), ("+4930222", "answered_elsewhere", None),
        ("PJSIP/201", "answered_elsewhere", None)]
    offers = await conn.fetch("SELECT request_id, attempt, destination, members_rung, result, time_to_answer_s "
                              "FROM cs_destination_offers WHERE request_created_at >= $1 "
                              "ORDER BY offered_at", SINCE)
    assert [(r["attempt"], r["destination"], r["members_rung"], r["result"], r["time_to_answer_s"])
            for r in offers] == [
        (1, "berlin", 3, "accepted", Decimal(10)),   # R1 ring-all
        (1, "berlin", 2, "accepted", Decimal(25)),   # R2 attempt 1: 111 rang out, 222 accepted
        (2, "berlin", 1, "accepted", Decimal(10)),   # R2 retry
        (1, "hamburg", 2, "declined", Decimal(10)),  # R3
        (1, "support", 2, "accepted", Decimal(8)),   # R6: congestion, then the backup trunk
        (1, "berlin", 1, "accepted", Decimal(8)),    # R4
        (1, "hamburg", 2, "missed", None),           # R10
    ]


async def test_page_campaign_site_reports(conn: asyncpg.Connection) -> None:
    cols = ("requests", "after_hours", "connected", "connect_rate", "median_speed_to_lead_s",
            "median_speed_to_lead_in_hours_s", "talk_seconds")
    assert table(await fetch_report(conn, "pages", Q), "page", *cols) == [
        ("https://shop.example/contact", 3, 0, 0, 0.0, N, N, 0),
        ("https://shop.example/widgets", 3, 1, 2, 0.6667, 325.0, 325.0, 410),
        ("https://blog.example/post-1", 2, 0, 0, 0.0, N, N, 0),
        ("https://blog.example/pricing", 1, 0, 0, 0.0, N, N, 0),
    ]
    assert table(await fetch_report(conn, "campaigns", Q), "campaign", *cols) == [
        ("(none)", 4, 0, 0, 0.0, N, N, 0),
        ("spring", 3, 1, 2, 0.6667, 325.0, 325.0, 410),
        ("newsletter", 2, 0, 0, 0.0, N, N, 0),
    ]
    assert table(await fetch_report(conn, "sites", Q), "site", *cols) == [
        ("shop", 6, 1, 2, 0.3333, 325.0, 325.0, 410),
        ("blog", 3, 0, 0, 0.0, N, N, 0),
    ]
    only_blog = ReportQuery(SINCE, UNTIL, site="blog")
    assert table(await fetch_report(conn, "pages", only_blog), "page", "requests") == [
        ("https://blog.example/post-1", 2), ("https://blog.example/pricing", 1)]
    # all time (the view) includes R9 of April
    rows = await conn.fetch("SELECT site, requests, connected FROM cs_site_stats ORDER BY site")
    assert [tuple(r) for r in rows] == [("blog", 3, 0), ("shop", 7, 2)]


async def test_destination_report(conn: asyncpg.Connection) -> None:
    cols = ("destination", "requests", "offered", "answered", "accepted", "declined", "missed", "answer_rate",
            "accept_rate", "median_time_to_answer_s", "p90_time_to_answer_s", "after_hours_share")
    assert table(await fetch_report(conn, "destinations", Q), *cols) == [
        ("berlin", 3, 4, 4, 4, 0, 0, 1.0, 1.0, 10.0, 20.5, 0.3333),
        ("hamburg", 2, 2, 1, 0, 1, 1, 0.5, 0.0, 10.0, 10.0, 0.0),
        ("support", 1, 1, 1, 1, 0, 0, 1.0, 1.0, 8.0, 8.0, 0.0),
    ]
    one = ReportQuery(SINCE, UNTIL, destination="hamburg")
    assert [r["destination"] for r in await fetch_report(conn, "destinations", one)] == ["hamburg"]
    # all time: R9's April ring at berlin is a missed offer
    row = await conn.fetchrow("SELECT offered, missed, answer_rate FROM cs_destination_stats "
                              "WHERE destination = 'berlin'")
    assert tuple(row) == (5, 1, Decimal("0.8000"))


async def test_member_report(conn: asyncpg.Connection) -> None:
    cols = ("destination", "member", "offered", "answered", "accepted", "declined", "missed", "answered_elsewhere",
            "answer_rate", "median_time_to_answer_s", "p90_time_to_answer_s", "after_hours_share")
    assert table(await fetch_report(conn, "members", Q), *cols) == [
        ("berlin", "+4930111", 4, 3, 3, 0, 1, 0, 0.75, 10.0, 10.0, 0.3333),
        ("berlin", "+4930222", 2, 1, 1, 0, 0, 1, 1.0, 4.0, 4.0, 0.0),
        ("berlin", "PJSIP/201", 1, 0, 0, 0, 0, 1, N, N, N, 0.0),
        ("hamburg", "+4940111", 2, 1, 0, 1, 1, 0, 0.5, 10.0, 10.0, 0.0),
        ("hamburg", "+4940222", 2, 0, 0, 0, 2, 0, 0.0, N, N, 0.0),
        ("support", "+12125550100", 2, 1, 1, 0, 1, 0, 0.5, 6.0, 6.0, 0.0),
    ]


async def test_funnel_report(conn: asyncpg.Connection) -> None:
    rows = await fetch_report(conn, "funnel", Q)
    assert table(rows, "step_no", "step", "reached", "share_of_requests", "stopped_here", "stop_reasons") == [
        (1, "requested", 9, 1.0, 3, {"cancelled": 1, "rejected": 1, "waiting": 1}),
        (2, "agent_rung", 6, 0.6667, 1, {"no_agent": 1}),
        (3, "agent_answered", 5, 0.5556, 1, {"no_agent": 1}),
        (4, "accepted", 4, 0.4444, 2, {"customer_no_answer": 1, "customer_unreachable": 1}),
        (5, "visitor_answered", 2, 0.2222, 0, {}),
        (6, "connected", 2, 0.2222, 2, {"connected": 2}),
    ]
    berlin = await fetch_report(conn, "funnel", ReportQuery(SINCE, UNTIL, destination="berlin"))
    assert [r["reached"] for r in berlin] == [3, 3, 3, 3, 2, 2]
    summary = await fetch_summary(conn, Q)
    assert summary == {"requests": 9, "connected": 2, "connect_rate": 0.2222, "median_speed_to_lead_s": 325.0,
                       "after_hours": 1, "talk_seconds": 410}


async def test_heatmap_in_each_sites_time_zone(conn: asyncpg.Connection) -> None:
    rows = await fetch_report(conn, "heatmap", Q)
    assert len(rows) == 168
    cells = {(r["weekday"], r["hour"]): (r["requests"], r["connected"]) for r in rows if r["requests"]}
    assert cells == {
        (1, 12): (1, 1), (1, 13): (1, 1),  # R1, R2: Monday 10:00Z, 11:00Z = 12:00, 13:00 in Berlin
        (1, 11): (1, 0),                   # R8 Monday 09:00Z
        (2, 10): (1, 0), (2, 11): (1, 0),  # R3, R10 (Tuesdays)
        (6, 22): (1, 0),                   # R4 Saturday 20:00Z = 22:00 Berlin
        (3, 10): (2, 0),                   # R5, R6 Wednesday 14:00Z, 14:30Z = 10:00 New York
        (4, 5): (1, 0),                    # R7 Thursday 09:00Z = 05:00 New York
    }
    utc = await fetch_report(conn, "heatmap", ReportQuery(SINCE, UNTIL, default_tz="UTC"))
    assert {(r["weekday"], r["hour"]) for r in utc if r["requests"]} == {
        (1, 10), (1, 11), (1, 9), (2, 8), (2, 9), (6, 20), (3, 14), (4, 9)}


async def test_trunk_report(conn: asyncpg.Connection) -> None:
    rows = await fetch_report(conn, "trunks", Q)
    assert table(rows, "trunk", "calls", "agent_calls", "visitor_calls", "answered", "minutes", "peak_concurrent",
                 "failed", "failure_rate", "failures_by_cause") == [
        ("carrier", 15, 11, 4, 7, 15.0, 3, 1, 0.0667, {"34": 1}),
        ("backup", 2, 1, 1, 1, 0.2, 2, 1, 0.5, {"1": 1}),
    ]
    # leg time: April alone holds only R9's ring
    april = await fetch_report(conn, "trunks", ReportQuery(t("2024-04-01 00:00"), SINCE))
    assert table(april, "trunk", "calls", "peak_concurrent", "failed") == [("carrier", 1, 1, 0)]


async def test_every_view_and_column_is_commented(conn: asyncpg.Connection) -> None:
    missing = await conn.fetch("""
        SELECT c.relname, a.attname
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('v', 'r') AND c.relnamespace = 'public'::regnamespace
          AND (c.relname LIKE 'cs\\_%' OR c.relname = 'retention_runs')
          AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)""")
    assert [tuple(r) for r in missing] == []
    undocumented = await conn.fetch("""
        SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'cs\\_%'
          AND obj_description(p.oid, 'pg_proc') IS NULL""")
    assert [r["proname"] for r in undocumented] == []
