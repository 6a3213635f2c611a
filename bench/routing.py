"""Routing benchmark: 1,000 rules and a 40,000-row postal table, decisions per second on one core.

Run: .venv/bin/python bench/routing.py [--seconds 3]
Generates the routing file in a temp dir, loads it (timed), then routes a mix of requests:
indexed (the compiled rules) and, as a baseline, the same rules tried one by one.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callswitch.callback import CallbackRequest
from callswitch.routing import Rules, load_rules, route
from callswitch.routing.index import SingleRule

N_RULES = 1000
N_ROWS = 40_000
N_STORES = 400


def generate(directory: Path, rng: random.Random) -> Path:
    lines = [
        "version: 1",
        "defaults: {timezone: Europe/Berlin, trunk: main}",
        "trunks:",
        '  main: {dial: "PJSIP/{number}@main", caller_id: "+4930901820", failover: [backup]}',
        '  backup: {dial: "PJSIP/{number}@backup"}',
        "schedules:",
        '  store: {weekly: {mon-fri: "09:00-18:00", sat: "10:00-14:00"},',
        "          exceptions: [{date: 2025-12-25, closed: true}]}",
        '  office: {weekly: {mon-fri: "08:00-20:00"}}',
        "destinations:",
        "  central: {members: [PJSIP/100, PJSIP/101], strategy: round_robin, schedule: office}",
        "  key-accounts: {members: [PJSIP/200], schedule: office, when_closed: wait}",
    ]
    for i in range(N_STORES):
        lines.append(f'  store-{i}: {{members: ["+49305550{i:03d}"], schedule: store, overflow: central}}')
    for i in range(40):
        lines.append(f"  team-{i}: {{members: [PJSIP/3{i:02d}], overflow: central}}")
    lines += [
        "tables:",
        "  zips: {file: zips.csv, key: postal_code}",
        "rules:",
        '  - {when: {page_url: {glob: "*/careers/*"}}, reject: "Please apply online."}',
        '  - {when: {name: {regex: "(?i)^test\\\\b"}}, reject: "Test."}',
        "  - {when: {company_size: {gte: 1000}}, route: key-accounts}",
    ]
    rules = 3
    # 30 non-indexable rules: combinators and time conditions
    for i in range(30):
        lines.append(
            f"  - {{when: {{any: [{{site: site-{i}}}, {{attributes: {{segment: seg-{i}}}}}]}}, route: team-{i % 40}}}"
        )
        rules += 1
    # 600 product rules (an indexed run), some with an extra condition
    for i in range(600):
        extra = ", country: [DE, AT]" if i % 7 == 0 else ""
        lines.append(f"  - {{when: {{product: [p{i}, p{i}-pro]{extra}}}, route: team-{i % 40}}}")
        rules += 1
    # 300 campaign prefix rules (another run)
    for i in range(300):
        lines.append(f"  - {{when: {{campaign: {{prefix: c{i:03d}-}}}}, route: team-{i % 40}}}")
        rules += 1
    # postal prefix rules for special areas
    while rules < N_RULES - 2:
        n = rules
        lines.append(f'  - {{when: {{postal_code: {{prefix: "9{n % 1000:03d}"}}}}, route: store-{n % N_STORES}}}')
        rules += 1
    lines.append("  - {when: {language: [en]}, route: central}")
    lines.append("  - route: {table: zips, column: store}")
    lines.append("default: central")
    (directory / "routing.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = ["postal_code,store"]
    for n in range(N_ROWS):
        rows.append(f"{10000 + n * 2:05d},store-{rng.randrange(N_STORES)}")
    (directory / "zips.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory / "routing.yaml"


def requests(rng: random.Random, n: int) -> list[CallbackRequest]:
    out = []
    for _ in range(n):
        kind = rng.random()
        attributes: dict[str, object] = {"postal_code": f"{10000 + rng.randrange(N_ROWS) * 2:05d}"}
        utm: dict[str, str] = {}
        if kind < 0.3:
            attributes["product"] = f"p{rng.randrange(700)}"
        elif kind < 0.5:
            utm["campaign"] = f"c{rng.randrange(350):03d}-spring"
        elif kind < 0.55:
            attributes["company_size"] = rng.choice([5, 50, 5000])
        out.append(
            CallbackRequest(
                site="shop",
                name="Ada",
                phone_e164="+4915112345678",
                phone_region="DE",
                page_url="https://shop.example/products/x",
                utm=utm,
                attributes=attributes,
            )
        )
    return out


def measure(rules: Rules, reqs: list[CallbackRequest], times: list[datetime], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    n = len(reqs)
    while time.perf_counter() < deadline:
        for i in range(n):
            route(rules, reqs[i], times[i])
        done += n
    return done / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(Path(tmp), rng)
        t0 = time.perf_counter()
        rules = load_rules(path)
        load_s = time.perf_counter() - t0
    print(f"loaded {len(rules.rules)} rules, {sum(len(t) for t in rules.tables.values())} table rows "
          f"in {load_s:.2f}s; {len(rules.segments)} segments after indexing")
    reqs = requests(rng, 2000)
    monday = datetime(2025, 3, 31, 10, 0, tzinfo=UTC)
    # mostly business hours, some evenings and weekends (closed stores -> overflow or defer)
    times = [monday + timedelta(hours=rng.choice([0, 0, 0, 1, 3, 9, 30, 130])) for _ in reqs]
    # same decisions with and without explanation
    for r, t in zip(reqs[:300], times[:300], strict=True):
        fast, slow = route(rules, r, t), route(rules, r, t, explain=True)
        same = (fast.action, fast.rule, fast.chain, fast.start_at) == (
            slow.action, slow.rule, slow.chain, slow.start_at
        )
        assert same, (fast, slow)
    linear = dataclasses.replace(rules, segments=tuple(SingleRule(r) for r in rules.rules))
    baseline = measure(linear, reqs, times, args.seconds / 2)
    rate = measure(rules, reqs, times, args.seconds)
    t1 = time.perf_counter()
    for r, t in zip(reqs[:500], times[:500], strict=True):
        route(rules, r, t, explain=True)
    explain_rate = 500 / (time.perf_counter() - t1)
    print(f"indexed: {rate:,.0f} decisions/s; linear baseline: {baseline:,.0f}/s; with explain: {explain_rate:,.0f}/s")
    print(json.dumps({
        "bench": "routing",
        "decisions_per_s": round(rate),
        "rules": len(rules.rules),
        "table_rows": sum(len(t) for t in rules.tables.values()),
        "baseline_linear_decisions_per_s": round(baseline),
        "explain_decisions_per_s": round(explain_rate),
        "load_seconds": round(load_s, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
