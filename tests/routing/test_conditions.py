"""Each condition type, each combinator, first-match order and table lookups."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from .helpers import MONDAY_NOON, dest, req, rules_with


def test_first_match_wins_in_file_order(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {product: solar}, route: a}
        - {when: {product: [solar, wind]}, route: b}
        """,
    )
    assert dest(rules, req(product="solar")) == "a"
    assert dest(rules, req(product="wind")) == "b"
    assert dest(rules, req(product="gas")) == "z"
    assert dest(rules, req()) == "z"


def test_text_equality_is_case_insensitive_and_trimmed(tmp_path):
    rules = rules_with(tmp_path, "- {when: {site: {is: Shop-DE}}, route: a}\n")
    assert dest(rules, req(site=" shop-de ")) == "a"
    assert dest(rules, req(site="shop-at")) == "z"


def test_postal_code_exact_prefix_range(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {postal_code: "10115"}, route: a}
        - {when: {postal_code: {prefix: ["20", "21"]}}, route: b}
        - {when: {postal_code: {range: [["80000", "81999"], ["85000", "85999"]]}}, route: c}
        """,
    )
    assert dest(rules, req(postal_code="10115")) == "a"
    assert dest(rules, req(postal_code="10 115")) == "a"  # spaces do not matter
    assert dest(rules, req(postal_code="21029")) == "b"
    assert dest(rules, req(postal_code="81999")) == "c"
    assert dest(rules, req(postal_code="85000")) == "c"
    assert dest(rules, req(postal_code="82000")) == "z"
    assert dest(rules, req(postal_code="8100")) == "z"  # shorter codes are not in a 5-digit range
    assert dest(rules, req(postal_code="810000")) == "z"


def test_country_and_phone_conditions(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {phone: {prefix: "+4930"}}, route: a}
        - {when: {phone_country: [AT, CH]}, route: b}
        - {when: {country: US}, route: c}
        """,
    )
    assert dest(rules, req(phone_e164="+4930123456")) == "a"
    assert dest(rules, req(phone_e164="+43123456789", phone_region="AT")) == "b"
    # country is the address country when given, else the phone's region
    assert dest(rules, req(phone_e164="+4940123456", country="US")) == "c"
    assert dest(rules, req(phone_e164="+14155550100", phone_region="US")) == "c"
    assert dest(rules, req(phone_e164="+4940123456")) == "z"


def test_page_url_glob_regex_contains(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {page_url: {glob: "https://*/careers/*"}}, route: a}
        - {when: {page_url: {regex: "/products/(solar|wind)\\\\b"}}, route: b}
        - {when: {referrer: {contains: google.}}, route: c}
        """,
    )
    assert dest(rules, req(page_url="https://shop.example/careers/dev")) == "a"
    assert dest(rules, req(page_url="HTTPS://SHOP.EXAMPLE/CAREERS/x")) == "a"  # globs ignore case
    assert dest(rules, req(page_url="https://shop.example/products/wind?x=1")) == "b"
    assert dest(rules, req(page_url="https://shop.example/products/windows")) == "z"
    assert dest(rules, req(referrer="https://www.google.de/")) == "c"


def test_campaign_and_utm(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {campaign: {prefix: spring-}}, route: a}
        - {when: {utm_source: newsletter, utm_medium: email}, route: b}
        """,
    )
    assert dest(rules, req(utm={"campaign": "spring-2025"})) == "a"
    assert dest(rules, req(utm={"source": "newsletter", "medium": "email"})) == "b"
    assert dest(rules, req(utm={"source": "newsletter", "medium": "cpc"})) == "z"


def test_company_size_comparisons(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {company_size: {gte: 1000}}, route: a}
        - {when: {company_size: {between: [50, 999]}}, route: b}
        - {when: {company_size: {lt: 50, gt: 0}}, route: c}
        """,
    )
    assert dest(rules, req(company_size=1000)) == "a"
    assert dest(rules, req(company_size=999)) == "b"
    assert dest(rules, req(company_size=50)) == "b"
    assert dest(rules, req(company_size="49")) == "c"  # numeric strings count
    assert dest(rules, req(company_size=0)) == "z"
    assert dest(rules, req()) == "z"


def test_language_matches_primary_subtag(tmp_path):
    rules = rules_with(tmp_path, "- {when: {language: [de, fr]}, route: a}\n")
    assert dest(rules, req(language="de-AT")) == "a"
    assert dest(rules, req(language="FR")) == "a"
    assert dest(rules, req(language="en-GB")) == "z"


def test_free_attributes_text_and_numeric(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {attributes: {plan: premium, seats: {gte: 10}}}, route: a}
        - {when: {attributes: {plan: {present: true}}}, route: b}
        """,
    )
    assert dest(rules, req(plan="Premium", seats=12)) == "a"
    assert dest(rules, req(plan="premium", seats=3)) == "b"
    assert dest(rules, req()) == "z"


def test_present_false(tmp_path):
    rules = rules_with(tmp_path, "- {when: {postal_code: {present: false}}, route: a}\n")
    assert dest(rules, req()) == "a"
    assert dest(rules, req(postal_code="10115")) == "z"


def test_combinators_all_any_not(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - when:
            all:
              - product: solar
              - not: {country: AT}
          route: a
        - when:
            any:
              - product: wind
              - campaign: windy
          route: b
        - when:
            not: {any: [{language: de}, {language: fr}]}
          route: c
        """,
    )
    assert dest(rules, req(product="solar")) == "a"
    assert dest(rules, req(product="solar", country="AT", language="de")) == "z"
    assert dest(rules, req(utm={"campaign": "windy"})) == "b"
    assert dest(rules, req(language="en")) == "c"
    assert dest(rules, req(language="fr")) == "z"


def test_time_condition_days_hours_across_midnight(tmp_path):
    rules = rules_with(
        tmp_path,
        """
        - {when: {time: {days: fri, hours: "22:00-02:00"}}, route: a}
        - {when: {time: {days: [sat, sun]}}, route: b}
        - {when: {time: {hours: "12:00-13:00", timezone: America/New_York}}, route: c}
        """,
    )
    berlin_fri_2330 = datetime(2025, 4, 4, 21, 30, tzinfo=UTC)
    berlin_sat_0130 = datetime(2025, 4, 4, 23, 30, tzinfo=UTC)  # still Friday's interval
    berlin_sat_0230 = datetime(2025, 4, 5, 0, 30, tzinfo=UTC)
    assert dest(rules, req(), berlin_fri_2330) == "a"
    assert dest(rules, req(), berlin_sat_0130) == "a"
    assert dest(rules, req(), berlin_sat_0230) == "b"
    new_york_noon = datetime(2025, 4, 2, 16, 30, tzinfo=UTC)
    assert dest(rules, req(), new_york_noon) == "c"
    assert dest(rules, req(), MONDAY_NOON) == "z"


def test_schedule_open_and_closed_conditions(tmp_path):
    extra = """\
    schedules:
      office:
        weekly: {mon-fri: "09:00-17:00"}
    """
    rules = rules_with(
        tmp_path,
        """
        - {when: {schedule_open: office, product: x}, route: a}
        - {when: {schedule_closed: office}, route: b}
        """,
        extra,
    )
    assert dest(rules, req(product="x")) == "a"
    sunday = datetime(2025, 3, 30, 10, tzinfo=UTC)
    assert dest(rules, req(product="x"), sunday) == "b"
    assert dest(rules, req(), MONDAY_NOON) == "z"


TABLES = """\
tables:
  zips:
    file: tables/zips.csv
    key: postal_code
  areas:
    file: tables/areas.csv
    key: prefix
    match: prefix
"""
FILES = {
    "tables/zips.csv": "postal_code,store\n10115,a\n10117,b\n",
    "tables/areas.csv": "prefix;region\n+49;de\n+4930;berlin\n",
}


def test_route_by_table_and_in_table(tmp_path):
    files = dict(FILES)
    files["tables/areas.csv"] = "prefix,region\n+49,de\n+4930,berlin\n"
    rules = rules_with(
        tmp_path,
        """
        - {when: {phone: {in_table: {table: areas, column: region, is: berlin}}}, route: c}
        - {route: {table: zips, column: store}}
        - {when: {phone: {in_table: areas}}, route: a}
        """,
        TABLES,
        files,
    )
    assert dest(rules, req(phone_e164="+4930123456", postal_code="10117")) == "c"
    assert dest(rules, req(postal_code="10117")) == "b"
    assert dest(rules, req(postal_code="10115")) == "a"
    # not in the table: the rule does not apply and the next one is tried
    assert dest(rules, req(postal_code="99999")) == "a"  # +49 mobile is in areas (prefix +49)
    assert dest(rules, req(phone_e164="+14155550100", phone_region="US")) == "z"


def test_reject_and_defer_actions(tmp_path):
    extra = """\
    schedules:
      office:
        weekly: {mon-fri: "09:00-17:00"}
    """
    text_rules = """
        - {when: {product: spam}, reject: "No thanks."}
        - {when: {product: later}, defer: a}
        """
    rules = rules_with(tmp_path, text_rules, extra.replace("office", "office") + "")
    assert dest(rules, req(product="spam")) == "reject: No thanks."
    assert dest(rules, req(product="later")) == "a"


@pytest.mark.parametrize("n_rules", [3, 10])
def test_many_keyed_rules_keep_first_match_order(tmp_path, n_rules):
    # a run of rules keyed on product is indexed; the outcome must equal file order semantics
    lines = []
    for i in range(n_rules):
        target = "abc"[i % 3]
        lines.append(f"- {{when: {{product: [p{i}, shared], company_size: {{gte: {i}}}}}, route: {target}}}")
    lines.append("- {when: {product: {prefix: p1}}, route: c}")
    rules = rules_with(tmp_path, "\n".join(lines) + "\n")
    assert dest(rules, req(product="shared", company_size=0)) == "a"
    assert dest(rules, req(product="shared", company_size=2)) == "a"
    assert dest(rules, req(product="p2", company_size=1)) == "z"
    assert dest(rules, req(product="p2", company_size=5)) == "c"
    assert dest(rules, req(product="p1x", company_size=5)) == "c"
