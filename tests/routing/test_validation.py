"""Every validation error names file:line:column and the key path; checked as exact strings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callswitch.routing import check_file, load_rules
from callswitch.yamlsrc import SourceError

from .helpers import problems, write

HEAD = """\
version: 1
defaults: {timezone: Europe/Berlin}
destinations:
  a: {members: [PJSIP/1]}
"""


def only(tmp_path, text, files=None):
    found = problems(tmp_path, textwrap.dedent(text), files)
    return found


def test_bad_time_zone(tmp_path):
    assert only(tmp_path, """\
        version: 1
        defaults:
          timezone: Europe/Berln
        destinations:
          a: {members: [PJSIP/1]}
        default: a
        """) == [
        "routing.yaml:3:13: defaults.timezone: unknown time zone 'Europe/Berln' (use an IANA name like Europe/Berlin)"
    ]


def test_bad_time_of_day(tmp_path):
    assert only(tmp_path, HEAD + """\
schedules:
  s:
    weekly:
      mon-fri: "09:00-25:00"
default: a
""") == [
        "routing.yaml:8:16: schedules.s.weekly.mon-fri: '25:00' is not a time of day "
        "(00:00 to 23:59, or 24:00 as an end)"
    ]


def test_day_set_twice_and_overlap_across_midnight(tmp_path):
    assert only(tmp_path, HEAD + """\
schedules:
  s:
    weekly:
      mon-fri: "09:00-17:00"
      fri: "10:00-11:00"
  t:
    weekly:
      mon: "22:00-02:00"
      tue: "01:00-03:00"
default: a
""") == [
        "routing.yaml:9:12: schedules.s.weekly.fri: fri is already set by 'mon-fri'",
        "routing.yaml:11:5: schedules.t.weekly: mon 22:00-02:00 overlaps tue 01:00-03:00",
    ]


def test_schedule_never_open_is_an_error(tmp_path):
    assert only(tmp_path, HEAD + """\
schedules:
  s:
    weekly: {mon: closed, tue: closed}
default: a
""") == ["routing.yaml:6:3: schedules.s: is never open: give it weekly hours or exceptions with hours"]


def test_exception_errors(tmp_path):
    assert only(tmp_path, HEAD + """\
schedules:
  s:
    weekly: {mon: "09:00-10:00"}
    exceptions:
      - {date: 2025-12-25, closed: true}
      - {from: 2025-12-24, to: 2025-12-26, closed: true}
      - {from: 2025-08-10, to: 2025-08-01, closed: true}
      - {date: "31.12.2025", closed: true}
      - {date: 2025-01-01}
default: a
""") == [
        "routing.yaml:10:9: schedules.s.exceptions[1]: 2025-12-25 is already covered by exceptions[0]",
        "routing.yaml:11:32: schedules.s.exceptions[2].to: 2025-08-01 is before from 2025-08-10 (reversed range)",
        "routing.yaml:12:16: schedules.s.exceptions[3].date: '31.12.2025' is not a date (write YYYY-MM-DD)",
        "routing.yaml:13:9: schedules.s.exceptions[4]: needs exactly one of hours or closed: true",
    ]


def test_invalid_member_numbers(tmp_path):
    assert only(tmp_path, """\
        version: 1
        destinations:
          a:
            members: ["+4930555000", "030 555000", "+491", "+49 30 555000", SIPX/1]
        default: a
        """)[:4] == [
        "routing.yaml:4:30: destinations.a.members[1]: '030 555000' is neither an E.164 number "
        "('+4930123456') nor an endpoint ('PJSIP/201')",
        "routing.yaml:4:44: destinations.a.members[2]: '+491' is not a valid phone number",
        "routing.yaml:4:52: destinations.a.members[3]: '+49 30 555000' is not in E.164 form (write '+4930555000')",
        "routing.yaml:4:69: destinations.a.members[4]: 'SIPX/1': unknown channel technology 'SIPX' "
        "(use PJSIP, SIP, IAX2, DAHDI, Local)",
    ]


def test_unknown_references_with_hints(tmp_path):
    assert only(tmp_path, """\
        version: 1
        trunks:
          carrier-a: {dial: "PJSIP/{number}@a", failover: [carrier-c]}
        destinations:
          a: {members: ["+4930555000"], schedule: office, overflow: bb, trunk: carrier-b}
          bb: {members: [PJSIP/2]}
        rules:
          - {when: {schedule_open: offices}, route: aa}
        default: a
        """) == [
        "routing.yaml:3:52: trunks.carrier-a.failover[0]: trunk 'carrier-c' is not defined (did you mean 'carrier-a'?)",
        "routing.yaml:5:43: destinations.a.schedule: schedule 'office' is not defined",
        "routing.yaml:5:72: destinations.a.trunk: trunk 'carrier-b' is not defined (did you mean 'carrier-a'?)",
        "routing.yaml:8:28: rules[0].when.schedule_open: schedule 'offices' is not defined",
        "routing.yaml:8:45: rules[0].route: destination 'aa' is not defined",
    ]


def test_overflow_loop(tmp_path):
    assert only(tmp_path, """\
        version: 1
        destinations:
          a: {members: [PJSIP/1], overflow: b}
          b: {members: [PJSIP/2], overflow: c}
          c: {members: [PJSIP/3], overflow: a}
        default: a
        """) == ["routing.yaml:5:37: destinations.c.overflow: overflow chain loops: a -> b -> c -> a"]


def test_regex_range_and_number_errors(tmp_path):
    assert only(tmp_path, HEAD + """\
rules:
  - {when: {page_url: {regex: "([a-z"}}, route: a}
  - {when: {postal_code: {range: ["14999", "10000"]}}, route: a}
  - {when: {postal_code: {range: [["10000", "14999"], ["14000", "15999"]]}}, route: a}
  - {when: {postal_code: {range: ["1000", "14999"]}}, route: a}
  - {when: {company_size: {between: [100, 10]}}, route: a}
  - {when: {company_size: {gte: 100, lt: 50}}, route: a}
  - {when: {postal_code: 12345}, route: a}
  - {when: {produkt: x}, route: a}
default: a
""") == [
        "routing.yaml:6:31: rules[0].when.page_url.regex: regex '([a-z' does not compile: "
        "unterminated character set at position 1",
        "routing.yaml:7:27: rules[1].when.postal_code.range: range '14999'..'10000' is reversed",
        "routing.yaml:8:55: rules[2].when.postal_code.range[1]: range '14000'..'15999' overlaps '10000'..'14999'",
        "routing.yaml:9:27: rules[3].when.postal_code.range: range bounds '1000' and '14999' must have the same length",
        "routing.yaml:10:28: rules[4].when.company_size.between: between [100, 10] is reversed",
        "routing.yaml:11:13: rules[5].when.company_size: can never match: no company_size is above 100 and below 50",
        "routing.yaml:12:26: rules[6].when.postal_code: write codes as quoted strings ('01234'): "
        "YAML reads unquoted digits as a number",
        "routing.yaml:13:22: rules[7].when.produkt: unknown key (did you mean 'product'?)",
    ]


def test_rule_needs_one_action_and_default_is_required(tmp_path):
    assert only(tmp_path, HEAD + """\
rules:
  - {when: {product: x}}
  - {route: a, reject: no}
""") == [
        "routing.yaml:6:5: rules[0]: needs exactly one action: route, defer or reject",
        "routing.yaml:7:5: rules[1]: needs exactly one action: route, defer or reject (found route, reject)",
        "routing.yaml:1:1: default: required: say where requests go when no rule matches (a destination name)",
    ]


def test_table_errors_point_at_csv_lines(tmp_path):
    files = {"t/zips.csv": "# comment\npostal_code,store\n10115,a\n10117, bogus\n10115,a\n10119\n,a\n"}
    assert only(tmp_path, HEAD + """\
tables:
  zips: {file: t/zips.csv, key: postal_code}
  other: {file: t/zips.csv, key: zip}
  gone: {file: t/none.csv, key: x}
rules:
  - {when: {postal_code: {in_table: {table: zips, column: shop, is: a}}}, route: a}
  - route: {table: zips, column: store}
default: a
""", files) == [
        "t/zips.csv:6:1: tables.zips: expected 2 values like the header, found 1",
        "t/zips.csv:5:1: tables.zips: duplicate postal_code '10115' (first on line 3)",
        "t/zips.csv:7:1: tables.zips: empty postal_code",
        "t/zips.csv:6:1: tables.other: expected 2 values like the header, found 1",
        "routing.yaml:7:34: tables.other.key: t/zips.csv has no column 'zip' (columns: postal_code, store)",
        "routing.yaml:8:16: tables.gone.file: cannot read t/none.csv: No such file or directory",
        "routing.yaml:10:59: rules[0].when.postal_code.in_table.column: table 'zips' has no column 'shop'",
        "t/zips.csv:4:8: tables.zips: store 'bogus' is not a destination",
    ]


def test_warnings_unreachable_and_unused(tmp_path):
    path = write(tmp_path, HEAD + """\
  b: {members: [PJSIP/2]}
schedules:
  s: {weekly: {mon: "09:00-10:00"}}
rules:
  - {route: a}
  - {when: {product: x}, route: a}
default: a
""")
    result = check_file(path)
    assert result.rules is not None
    assert [str(p).replace(str(tmp_path) + "/", "") for p in result.warnings] == [
        "routing.yaml:10:5: warning: rules[1]: unreachable: rules[0] above always matches",
        "routing.yaml:11:10: warning: default: never used: rules[0] always matches",
        "routing.yaml:5:3: warning: destinations.b: never used: no rule, default, table or overflow leads here",
        "routing.yaml:7:3: warning: schedules.s: never used by a destination or rule",
    ]
    assert result.rules.warnings == tuple(result.warnings)


def test_load_rules_raises_with_all_errors(tmp_path):
    path = write(tmp_path, "version: 1\ndestinations: {a: {members: []}}\n")
    with pytest.raises(SourceError) as info:
        load_rules(path)
    messages = [p.message for p in info.value.problems]
    assert messages == ["needs at least one member", "required: say where requests go when no rule matches "
                        "(a destination name)"]


def test_yaml_syntax_error_has_a_location(tmp_path):
    found = only(tmp_path, "version: 1\ndestinations: [\n")
    assert len(found) == 1 and found[0].startswith("routing.yaml:3:1: (document): YAML syntax error")


def test_trunk_dial_template_takes_number_or_digits(tmp_path: Path) -> None:
    text = """\
version: 1
trunks:
  plus: {dial: "PJSIP/{number}@carrier"}
  bare: {dial: "PJSIP/{digits}@carrier"}
destinations: {a: {members: ["+13125550100"], trunk: plus}, b: {members: ["+13125550101"], trunk: bare}}
rules: [{when: {name: x}, route: b}]
default: a
"""
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    rules = load_rules(path)
    assert rules.trunks["plus"].dial_string("+4930123") == "PJSIP/+4930123@carrier"
    assert rules.trunks["bare"].dial_string("+4930123") == "PJSIP/4930123@carrier"
    path.write_text(text.replace("PJSIP/{digits}@carrier", "PJSIP/{digits}{number}@carrier"))
    errors = [str(p) for p in check_file(path).errors]
    assert any("trunks.bare.dial: must contain {number}" in e and "{digits}" in e for e in errors), errors
