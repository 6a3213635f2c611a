"""The rule index must give exactly the first match that trying rules in order gives."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callswitch.routing import loads_rules, route
from callswitch.routing.index import KeyedRun, SingleRule

from .helpers import req

VALUES = ["a1", "a2", "b1", "b2", "c1"]
CONDITIONS = [
    "{product: %s}",
    "{product: [%s, b1]}",
    "{site: %s}",
    "{campaign: {prefix: %s}}",
    "{language: [de, %s]}",
    "{any: [{product: %s}, {site: b2}]}",
    "{all: [{product: %s}, {company_size: {gte: 10}}]}",
    "{company_size: {lt: 5}, site: %s}",
    "{not: {product: %s}}",
]

rule_lists = st.lists(
    st.tuples(st.integers(0, len(CONDITIONS) - 1), st.sampled_from(VALUES), st.sampled_from("abc")),
    min_size=1,
    max_size=25,
)
requests = st.builds(
    lambda product, site, campaign, language, size: req(
        product=product, site=site, utm={"campaign": campaign} if campaign else {}, language=language,
        company_size=size,
    ),
    st.sampled_from([*VALUES, "zz"]),
    st.sampled_from([*VALUES, "web"]),
    st.sampled_from(["", "a1-x", "b2y", "c1"]),
    st.sampled_from([None, "de-AT", "a1", "en"]),
    st.sampled_from([0, 7, 50]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists, st.lists(requests, min_size=1, max_size=10))
def test_indexed_equals_linear(rule_specs, reqs):
    lines = ["version: 1", "destinations:"]
    lines += [f"  {d}: {{members: [PJSIP/{i}]}}" for i, d in enumerate("abcz")]
    lines.append("rules:")
    for n, (c, value, target) in enumerate(rule_specs):
        lines.append(f"  - {{name: r{n}, when: {CONDITIONS[c] % value}, route: {target}}}")
    lines.append("default: z")
    rules = loads_rules("\n".join(lines) + "\n")
    linear = dataclasses.replace(rules, segments=tuple(SingleRule(r) for r in rules.rules))
    at = datetime(2025, 3, 31, 10, tzinfo=UTC)
    for r in reqs:
        fast, slow = route(rules, r, at), route(linear, r, at)
        assert fast.rule == slow.rule
        assert fast.chain == slow.chain


def test_runs_are_built_for_keyed_rules():
    lines = ["version: 1", "destinations:", "  a: {members: [PJSIP/1]}", "rules:"]
    lines += [f"  - {{when: {{product: p{i}}}, route: a}}" for i in range(5)]
    lines += ["  - {when: {company_size: {gte: 5}}, route: a}"]
    lines += [f"  - {{when: {{any: [{{site: s{i}}}, {{campaign: {{prefix: c{i}}}}}]}}, route: a}}" for i in range(4)]
    lines.append("default: a")
    rules = loads_rules("\n".join(lines) + "\n")
    kinds = [type(s).__name__ for s in rules.segments]
    assert kinds == ["KeyedRun", "SingleRule", "KeyedRun"]
    run = rules.segments[2]
    assert isinstance(run, KeyedRun) and isinstance(rules.segments[1], SingleRule)
    assert sorted(i.field.name for i in run.indexes) == ["campaign", "site"]
