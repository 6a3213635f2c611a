"""``callswitch rules check|test`` in-process via ``register`` and argparse."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from callswitch.routing.cli import register

EXAMPLE = str(Path(__file__).resolve().parents[2] / "config" / "routing.example.yaml")


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="callswitch")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_check_example_is_ok(capsys):
    assert run(["rules", "check", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 trunks, 3 schedules, 9 destinations, 2 tables (24 rows), 9 rules, 0 warnings" in out


def test_check_invalid_file_exits_1_and_prints_locations(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("version: 1\ndestinations:\n  a: {members: [PJSIP/1], strategy: ring_all}\ndefault: a\n")
    assert run(["rules", "check", str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:3:37: destinations.a.strategy: expected one of" in captured.err
    assert "INVALID: 1 error(s)" in captured.out


def test_check_strict_fails_on_warnings(tmp_path, capsys):
    f = tmp_path / "r.yaml"
    f.write_text("version: 1\ndestinations:\n  a: {members: [PJSIP/1]}\n  b: {members: [PJSIP/2]}\ndefault: a\n")
    assert run(["rules", "check", str(f)]) == 0
    assert run(["rules", "check", "--strict", str(f)]) == 1
    assert "warning: destinations.b: never used" in capsys.readouterr().err


def test_default_file_from_environment(tmp_path, monkeypatch, capsys):
    f = tmp_path / "r.yaml"
    f.write_text("version: 1\ndestinations:\n  a: {members: [PJSIP/1]}\ndefault: a\n")
    monkeypatch.setenv("CALLSWITCH_ROUTING_FILE", str(f))
    assert run(["rules", "check"]) == 0
    monkeypatch.delenv("CALLSWITCH_ROUTING_FILE")
    monkeypatch.chdir(tmp_path)  # no config/routing.yaml here
    assert run(["rules", "check"]) == 2
    assert "no routing file given" in capsys.readouterr().err


def test_rules_test_prints_plan_and_trace(capsys):
    request = json.dumps({"name": "Ada", "phone": "0151 12345678", "attributes": {"postal_code": "10 961"}})
    assert run(["rules", "test", EXAMPLE, "--request", request, "--at", "2025-03-31T10:00"]) == 0
    out = capsys.readouterr().out
    assert "Request: Ada +4915112345678 (DE) at 2025-03-31T10:00:00+02:00" in out
    assert "rules[2] (enterprise) at " in out and "no match: company_size is missing" in out
    assert "MATCH: not (language is missing) -> route to store-berlin-kreuzberg" in out
    assert "Decision: DIAL now (2025-03-31T10:00:00+02:00) by rules[7] (nearest-store)" in out
    assert "members: +4930567890" not in out  # dial strings go through the trunk
    assert "PJSIP/+4930567890@carrier-a (20s)" in out


def test_rules_test_json_from_file_and_reject(tmp_path, capsys):
    body = tmp_path / "req.json"
    body.write_text(json.dumps({"phone": "+4930123456", "page_url": "https://x.example/careers/dev"}))
    assert run(["rules", "test", EXAMPLE, "--request", f"@{body}", "--at", "2025-03-31T10:00+02:00", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["action"] == "reject"
    assert plan["reject_message"].startswith("For job applications")
    assert plan["rule"] == "rules[0] (no-job-applications)"


def test_rules_test_deferred_outside_hours(capsys):
    request = json.dumps({"phone": "+4940123456", "postal_code": "20095"})
    # Sunday: the Hamburg store waits for its next opening (when_closed: wait)
    assert run(["rules", "test", EXAMPLE, "--request", request, "--at", "2025-03-30T12:00", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["action"], plan["start_at"]) == ("defer", "2025-03-31T07:00:00+00:00")
    assert [s["destination"] for s in plan["chain"]] == ["store-hamburg", "central-sales", "night-desk"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--request", "{not json"], "--request: not valid JSON"),
        (["--request", '{"name": "x"}'], "--request: the request needs a phone number"),
        (["--request", '{"phone": "+4930123456"}', "--at", "tomorrow"], "--at: 'tomorrow' is not an ISO 8601 time"),
        (["--request", '{"phone": "12"}'], "--request: phone '12'"),
    ],
)
def test_rules_test_usage_errors_exit_2(argv, message, capsys):
    assert run(["rules", "test", EXAMPLE, *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_subcommand_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        run(["rules"])
    assert info.value.code == 2


def test_rules_test_on_invalid_file_exits_1(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("version: 1\n")
    assert run(["rules", "test", str(bad), "--request", '{"phone": "+4930123456"}']) == 1
