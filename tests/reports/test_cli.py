"""`callswitch report ...` and `callswitch purge` through their argparse wiring (register())."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from callswitch.reports.cli import register

WINDOW = ["--since", "2024-05-01", "--until", "2024-06-01", "--tz", "UTC"]


def run_sync(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="callswitch")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


async def run(argv: list[str]) -> int:
    """The command runs its own event loop (asyncio.run), so off the test's loop, in a thread."""
    return await asyncio.to_thread(run_sync, argv)


async def report_json(capsys: pytest.CaptureFixture[str], dsn: str, *argv: str) -> dict:
    assert await run(["report", *argv, "--dsn", dsn, "--format", "json", *WINDOW]) == 0
    return json.loads(capsys.readouterr().out)


async def test_json_output_of_every_report(conn: asyncpg.Connection, clean_db: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pages = (await report_json(capsys, clean_db, "pages"))
    assert pages["report"] == "pages" and pages["since"] == "2024-05-01T00:00:00+00:00"
    assert pages["until"] == "2024-06-01T00:00:00+00:00"
    assert pages["rows"][1] == {
        "page": "https://shop.example/widgets", "requests": 3, "after_hours": 1, "connected": 2,
        "connect_rate": 0.6667, "median_speed_to_lead_s": 325.0, "median_speed_to_lead_in_hours_s": 325.0,
        "talk_seconds": 410}
    campaigns = (await report_json(capsys, clean_db, "campaigns"))["rows"]
    assert [(r["campaign"], r["requests"]) for r in campaigns] == [
        ("(none)", 4), ("spring", 3), ("newsletter", 2)]
    sites = (await report_json(capsys, clean_db, "sites"))["rows"]
    assert [(r["site"], r["requests"], r["connect_rate"]) for r in sites] == [
        ("shop", 6, 0.3333), ("blog", 3, 0.0)]
    dests = (await report_json(capsys, clean_db, "destinations"))["rows"]
    assert dests[0] == {"destination": "berlin", "requests": 3, "offered": 4, "answered": 4, "accepted": 4,
                        "declined": 0, "missed": 0, "answer_rate": 1.0, "accept_rate": 1.0,
                        "median_time_to_answer_s": 10.0, "p90_time_to_answer_s": 20.5, "after_hours_share": 0.3333}
    members = (await report_json(capsys, clean_db, "members", "--destination", "hamburg"))["rows"]
    assert [(m["member"], m["offered"], m["declined"], m["missed"], m["answer_rate"]) for m in members] == [
        ("+4940111", 2, 1, 1, 0.5), ("+4940222", 2, 0, 2, 0.0)]
    funnel = (await report_json(capsys, clean_db, "funnel", "--site", "shop"))["rows"]
    assert [(s["step"], s["reached"], s["stopped_here"]) for s in funnel] == [
        ("requested", 6, 1), ("agent_rung", 5, 1), ("agent_answered", 4, 1), ("accepted", 3, 1),
        ("visitor_answered", 2, 0), ("connected", 2, 2)]
    assert funnel[0]["stop_reasons"] == {"waiting": 1}
    heat = (await report_json(capsys, clean_db, "heatmap"))
    assert heat["time_zone"] == "UTC" and len(heat["rows"]) == 168
    assert {(r["weekday"], r["hour"]): r["requests"] for r in heat["rows"] if r["requests"]} == {
        (1, 10): 1, (1, 11): 1, (1, 9): 1, (2, 8): 1, (2, 9): 1, (6, 20): 1, (3, 14): 2, (4, 9): 1}
    trunks = (await report_json(capsys, clean_db, "trunks"))["rows"]
    assert trunks == [
        {"trunk": "carrier", "calls": 15, "agent_calls": 11, "visitor_calls": 4, "answered": 7, "minutes": 15.0,
         "peak_concurrent": 3, "failed": 1, "failure_rate": 0.0667, "failures_by_cause": {"34": 1}},
        {"trunk": "backup", "calls": 2, "agent_calls": 1, "visitor_calls": 1, "answered": 1, "minutes": 0.2,
         "peak_concurrent": 2, "failed": 1, "failure_rate": 0.5, "failures_by_cause": {"1": 1}}]


async def test_table_and_csv(conn: asyncpg.Connection, clean_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(["report", "destinations", "--dsn", clean_db, *WINDOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["destination", "requests", "offered", "answered", "accepted", "declined", "missed",
                                "answer_rate", "accept_rate", "median_time_to_answer_s", "p90_time_to_answer_s",
                                "after_hours_share"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["berlin", "3", "4", "4", "4", "0", "0", "1", "1", "10", "20.5", "0.3333"]
    assert lines[3].split() == ["hamburg", "2", "2", "1", "0", "1", "1", "0.5", "0", "10", "10", "0"]
    assert len({len(line) for line in lines[:2]}) == 1  # aligned: header as wide as the rule
    assert await run(["report", "trunks", "--dsn", clean_db, "--format", "csv", *WINDOW]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "trunk,calls,agent_calls,visitor_calls,answered,minutes,peak_concurrent,failed,failure_rate,failures_by_cause",
        "carrier,15,11,4,7,15,3,1,0.0667,34=1",
        "backup,2,1,1,1,0.2,2,1,0.5,1=1"]
    assert await run(["report", "heatmap", "--dsn", clean_db, *WINDOW]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[0] == "Mon" and out[2].split()[1:] == ["0"] * 9 + ["1", "1", "1"] + ["0"] * 12


async def test_since_default_and_usage_errors(conn: asyncpg.Connection, clean_db: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # the default window is the last 30 days: nothing of 2024 in it
    assert await run(["report", "sites", "--dsn", clean_db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == []
    assert await run(["report", "sites", "--dsn", clean_db, "--since", "yesterday"]) == 2
    assert "not a date or time" in capsys.readouterr().err
    assert await run(["report", "sites", "--dsn", clean_db, "--tz", "Mars/Olympus"]) == 2
    assert await run(["report", "sites", "--dsn", clean_db, "--since", "2024-06-01", "--until", "2024-05-01"]) == 2
    assert await run(["report", "sites", "--dsn", "postgresql://nobody@127.0.0.1:1/none"]) == 1


async def test_dsn_and_time_zones_from_the_config(conn: asyncpg.Connection, clean_db: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "callswitch.yaml"
    cfg.write_text(f"""
database:
  dsn: {clean_db}
sites:
  shop:
    site_key: pk_shop_site_key
    allowed_origins: [https://shop.example]
    time_zone: Europe/Berlin
  blog:
    site_key: pk_blog_site_key
    allowed_origins: [https://blog.example]
    time_zone: America/New_York
""")
    assert await run(["report", "heatmap", "-c", str(cfg), "--format", "json", "--since", "2024-05-01",
                "--until", "2024-06-01"]) == 0
    heat = json.loads(capsys.readouterr().out)
    assert heat["site_time_zones"] == {"shop": "Europe/Berlin", "blog": "America/New_York"}
    assert {(r["weekday"], r["hour"]): r["requests"] for r in heat["rows"] if r["requests"]} == {
        (1, 12): 1, (1, 13): 1, (1, 11): 1, (2, 10): 1, (2, 11): 1, (6, 22): 1, (3, 10): 2, (4, 5): 1}
    # --site: dates are midnight in the site's zone (2024-05-06 00:00 Berlin = 05-05 22:00Z)
    assert await run(["report", "sites", "-c", str(cfg), "--site", "shop", "--format", "json", "--since", "2024-05-06",
                "--until", "2024-05-07"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["since"] == "2024-05-06T00:00:00+02:00"
    assert [(r["site"], r["requests"]) for r in out["rows"]] == [("shop", 2)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: {dsn: mysql://x}\n")
    assert await run(["report", "sites", "-c", str(bad)]) == 78


async def test_html_command_writes_the_file(conn: asyncpg.Connection, clean_db: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert await run(["report", "html", "--dsn", clean_db, "-o", str(out), *WINDOW]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "Top pages by requests" in text


async def test_purge_command(conn: asyncpg.Connection, clean_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(["purge", "--dsn", clean_db, "--older-than-days", "0", "--dry-run", "--format", "json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["dry_run"], dry["requests"], dry["call_legs"], dry["events"], dry["run_id"]) == (True, 9, 5, 9, None)
    assert await conn.fetchval("SELECT count(*) FROM callback_requests WHERE anonymised_at IS NOT NULL") == 0
    assert await run(["purge", "--dsn", clean_db, "--older-than-days", "0"]) == 0
    assert capsys.readouterr().out.startswith("anonymised 9 request(s), 5 visitor leg(s), 9 event(s) created before")
    assert await conn.fetchval("SELECT count(*) FROM retention_runs") == 1
