"""Reports at scale: a year of a large franchise (5 M requests, ~12 M legs), every report for one month.

Seeds a scratch database with one year of callback requests, their audit events and call legs
(bench/sql/seed_year.sql: 8 sites in 8 time zones, 200 stores, ~2,000 members, 5,000 pages, campaigns,
ring-all and hunting, retries, declines, no-answers, after-hours deferrals, trunk failures), then runs the
SQL of every ``callswitch report`` subcommand (and the headline query of the HTML report) for one month with
``EXPLAIN (ANALYZE, BUFFERS)``, then once more through ``callswitch.reports.fetch_report`` (wall time, as the
CLI runs it). Without filters, then for one site and for one store. ``--write-cost N`` measures instead what
the triggers of migration 0013 add to the writes of intake and the dialer (bench/sql/write_cost.sql).

    .venv/bin/python bench/report_scale.py --scale 0.01          # quick check (50,000 requests)
    .venv/bin/python bench/report_scale.py --keep                # full year; keeps the database, prints its DSN
    .venv/bin/python bench/report_scale.py --dsn postgresql://postgres@127.0.0.1:5432/callswitch_bench_xxxx
    .venv/bin/python bench/report_scale.py --write-cost 1000

Postgres: $CALLSWITCH_BENCH_DSN, else $CALLSWITCH_TEST_DSN (server-level DSNs; a scratch database is created,
and dropped unless --keep), else a private durable cluster. ``--dsn`` reuses a database seeded by an earlier
``--keep`` run (pending migrations are applied to it first, so new indexes are measured) or seeds an empty one.

Loading: the tables stay ordinary logged tables. Their secondary indexes are dropped for the load and built
afterwards; the randomly keyed ones (request ids, leg ids, phone numbers) are built 70 % full, about the fill
a B-tree settles at under random inserts (so about as large as under the daemon's inserts; not checked against
a row-by-row load), then the fillfactor option is reset. Rows are inserted in time order (heap order = time
order, as in production). The outbox trigger, the triggers of migration 0013 and FK checks are skipped during
the load (session_replication_role = replica); cs_request_facts is then filled by cs_request_facts_rebuild(),
as the migration fills it on an existing database. Then VACUUM ANALYZE.

Plans go to bench/out/report_scale-<scale>-<month>.txt. Last line:
{"bench": "report_scale", "requests": ..., "legs": ..., "reports": {"pages": ms, ...}, "max_ms": ...}
(ms = execution time from EXPLAIN ANALYZE, median of --runs; trunks = its two queries together).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import postgres_server, scratch_database  # noqa: E402

from callswitch.db.migrate import migrate  # noqa: E402
from callswitch.db.queries import QUERIES as Q  # noqa: E402
from callswitch.reports.data import REPORTS, ReportQuery, fetch_report, fetch_summary  # noqa: E402

SEED_SQL = ROOT / "bench" / "sql" / "seed_year.sql"
OUT_DIR = ROOT / "bench" / "out"
FULL_REQUESTS = 5_000_000
YEAR = 2025
HISTORY_END = datetime(YEAR + 1, 1, 1, tzinfo=UTC)  # "now" of the seeded history
RETENTION_DAYS = 180
# the sites of bench/sql/seed_year.sql and their time zones (checked against it when seeding)
SITE_ZONES = {
    "shop-de": "Europe/Berlin", "shop-at": "Europe/Vienna", "shop-ch": "Europe/Zurich", "shop-uk": "Europe/London",
    "shop-fr": "Europe/Paris", "shop-us-east": "America/New_York", "shop-us-west": "America/Los_Angeles",
    "shop-au": "Australia/Sydney",
}
# Indexes whose keys arrive in random order in production (built 70 % full after the load).
RANDOM_KEYED = frozenset({
    "call_legs_request_idx", "call_legs_uniqueid_idx", "call_legs_leg_id_idx", "callback_events_request_idx",
    "callback_requests_phone_created_idx", "callback_requests_idempotency_idx",
})
MARKER = "report_scale"


# ------------------------------------------------------------------------------------------ seeding
def month_counts(total: int) -> list[int]:
    """Requests per month of the year: by days in the month, growing 40 % over the year."""
    weights = [calendar.monthrange(YEAR, m)[1] * (1 + 0.4 * (m - 1) / 11) for m in range(1, 13)]
    counts = [int(total * w / sum(weights)) for w in weights]
    counts[-1] += total - sum(counts)
    return counts


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def seed(conn: asyncpg.Connection, requests: int) -> dict[str, float]:
    """Load one year of history into the (migrated, empty) database; returns seconds per phase."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    await conn.execute("SET jit = off")
    await conn.execute("SET work_mem = '256MB'")
    await conn.execute("SET temp_buffers = '512MB'")
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("SET session_replication_role = replica")
    await conn.execute(SEED_SQL.read_text(encoding="utf-8"))
    await conn.execute("ANALYZE bench_seed.sites; ANALYZE bench_seed.stores; ANALYZE bench_seed.members; "
                       "ANALYZE bench_seed.pages")
    zones = dict(await conn.fetch("SELECT site, tz FROM bench_seed.sites"))
    if zones != SITE_ZONES:
        raise SystemExit(f"SITE_ZONES differ from bench/sql/seed_year.sql: {zones}")
    saved = await conn.fetch("SELECT name, tbl, def FROM bench_seed.drop_secondary_indexes()")
    n0 = 0
    anonymise_before = HISTORY_END - timedelta(days=RETENTION_DAYS)
    totals = [0, 0, 0]
    for month, n in enumerate(month_counts(requests), start=1):
        t = time.perf_counter()
        row = await conn.fetchrow(
            "SELECT * FROM bench_seed.seed_batch($1, $2, $3, $4, $5, $6, $7)",
            month, date(YEAR, month, 1), calendar.monthrange(YEAR, month)[1], n, n0, HISTORY_END, anonymise_before)
        assert row is not None
        n0 += n
        totals = [a + b for a, b in zip(totals, (row["requests"], row["events"], row["legs"]), strict=True)]
        log(f"  {YEAR}-{month:02d}: {row['requests']:>9,} requests {row['events']:>10,} events {row['legs']:>10,} "
            f"legs  {time.perf_counter() - t:6.1f} s")
    times["rows_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    for rec in saved:
        ti = time.perf_counter()
        sql = rec["def"]
        if rec["name"] in RANDOM_KEYED:
            sql = sql.replace(") WHERE ", ") WITH (fillfactor = 70) WHERE ") if ") WHERE " in sql \
                else sql + " WITH (fillfactor = 70)"
        await conn.execute(sql)
        if rec["name"] in RANDOM_KEYED:
            await conn.execute(f"ALTER INDEX {rec['name']} RESET (fillfactor)")
        log(f"  index {rec['name']}: {time.perf_counter() - ti:.1f} s")
    times["indexes_s"] = time.perf_counter() - t
    await conn.execute("DROP SCHEMA bench_seed CASCADE")
    await conn.execute("RESET session_replication_role")
    # the triggers of migration 0013 did not run during the load: fill cs_request_facts as the migration does
    tables = ["callback_requests", "callback_events", "call_legs"]
    if await conn.fetchval("SELECT to_regproc('cs_request_facts_rebuild') IS NOT NULL"):
        t = time.perf_counter()
        for table in tables:
            await conn.execute(f"ANALYZE {table}")  # statistics for the planner of the rebuild
        n = await conn.fetchval("SELECT cs_request_facts_rebuild()")
        times["facts_s"] = time.perf_counter() - t
        log(f"  cs_request_facts: {n:,} rows in {times['facts_s']:.0f} s")
        tables.append("cs_request_facts")
    t = time.perf_counter()
    for table in tables:
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    times["vacuum_s"] = time.perf_counter() - t
    times["total_s"] = time.perf_counter() - t0
    log(f"  seeded {totals[0]:,} requests, {totals[1]:,} events, {totals[2]:,} legs in {times['total_s']:.0f} s")
    return times


async def marker(conn: asyncpg.Connection) -> dict[str, Any] | None:
    text = await conn.fetchval("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                               "WHERE datname = current_database()")
    try:
        info = json.loads(text) if text else None
    except ValueError:
        return None
    return info if isinstance(info, dict) and info.get("bench") == MARKER else None


async def set_marker(conn: asyncpg.Connection, info: dict[str, Any]) -> None:
    name = await conn.fetchval("SELECT current_database()")
    text = json.dumps(info).replace("'", "''")
    await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{text}'")


# ------------------------------------------------------------------------------------------ reports
@dataclass
class Result:
    report: str
    variant: str
    runs_ms: list[float] = field(default_factory=list)  # execution time from EXPLAIN ANALYZE, per run
    planning_ms: float = 0.0
    first_ms: float = 0.0
    wall_ms: float = 0.0
    rows: int = 0
    plans: list[str] = field(default_factory=list)

    @property
    def explain_ms(self) -> float:
        """The median run."""
        return statistics.median(self.runs_ms)


def report_queries(name: str, q: ReportQuery) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(query name, SQL, arguments) exactly as callswitch.reports.data runs report ``name``."""
    if name in ("pages", "campaigns", "sites", "trunks"):
        names = {"trunks": ["report_trunks", "report_trunk_failures"]}.get(name, [f"report_{name}"])
        return [(n, getattr(Q, n), (q.since, q.until, q.site)) for n in names]
    if name in ("destinations", "members", "funnel", "summary"):
        n = f"report_{name}"
        return [(n, getattr(Q, n), (q.since, q.until, q.site, q.destination))]
    if name == "heatmap":
        return [("report_heatmap", Q.report_heatmap,
                 (q.since, q.until, q.site, q.default_tz, json.dumps(dict(q.site_zones))))]
    raise ValueError(name)


_TIME_RE = re.compile(r"^(Planning|Execution) Time: ([0-9.]+) ms$", re.MULTILINE)


class NestedPlans:
    """The plans of the statements inside the report functions, from auto_explain (as NOTICEs), when available.

    The report functions are plpgsql: EXPLAIN of ``SELECT * FROM cs_page_report(...)`` shows one Function Scan.
    auto_explain (contrib, loaded per session; needs a superuser) logs the plan of each statement they run.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.available = False
        self.notices: list[str] = []

    async def setup(self) -> None:
        try:
            await self.conn.execute("LOAD 'auto_explain'")
        except asyncpg.PostgresError as exc:
            log(f"  (no plans of the statements inside the report functions: auto_explain: {exc})")
            return
        for setting in ("log_analyze = on", "log_buffers = on", "log_nested_statements = on", "log_level = notice",
                        "log_min_duration = -1"):
            await self.conn.execute(f"SET auto_explain.{setting}")
        self.conn.add_log_listener(self._listen)
        self.available = True

    def _listen(self, _conn: object, message: asyncpg.PostgresLogMessage) -> None:
        text = str(message.message)
        if "Query Text: EXPLAIN" not in text:  # the explained statement itself: EXPLAIN prints it already
            self.notices.append(text)

    async def on(self) -> None:
        self.notices.clear()
        if self.available:
            await self.conn.execute("SET auto_explain.log_min_duration = 0")

    async def off(self) -> list[str]:
        if self.available:
            await self.conn.execute("SET auto_explain.log_min_duration = -1")
        await asyncio.sleep(0)  # let the last notices arrive
        return list(self.notices)


async def run_report(conn: asyncpg.Connection, name: str, variant: str, q: ReportQuery,
                     nested: NestedPlans, runs: int) -> Result:
    res = Result(name, variant)

    async def real() -> int:
        if name == "summary":
            await fetch_summary(conn, q)
            return 1
        return len(await fetch_report(conn, name, q))

    t = time.perf_counter()
    await real()  # first run: plans, caches
    res.first_ms = (time.perf_counter() - t) * 1000
    for run in range(runs):
        total = 0.0
        last = run == runs - 1
        for qname, sql, qargs in report_queries(name, q):
            if last:
                await nested.on()
            lines = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *qargs)
            inner = await nested.off() if last else []
            plan = "\n".join(r[0] for r in lines)
            times = {k: float(v) for k, v in _TIME_RE.findall(plan)}
            total += times["Execution"]
            if last:  # the plans of the last run (with auto_explain's timing overhead inside the functions)
                res.planning_ms += times.get("Planning", 0.0)
                res.plans.append(f"-- {qname}\n{plan}")
                res.plans.extend(f"-- {qname}: statement inside the function (auto_explain)\n{text}"
                                 for text in inner)
        res.runs_ms.append(total)
    t = time.perf_counter()
    res.rows = await real()
    res.wall_ms = (time.perf_counter() - t) * 1000
    return res


async def cpu_calibration(conn: asyncpg.Connection) -> float:
    """ms for a fixed CPU-bound statement (count 10 M rows): how busy the (shared) machine is right now."""
    await conn.execute("SET jit = off")
    lines = await conn.fetch("EXPLAIN ANALYZE SELECT count(*) FROM generate_series(1, 10000000)")
    await conn.execute("RESET jit")
    return float(dict(_TIME_RE.findall("\n".join(r[0] for r in lines)))["Execution"])


async def run_reports(conn: asyncpg.Connection, month: str, runs: int) -> list[Result]:
    since = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    until = (since + timedelta(days=32)).replace(day=1)
    busiest_site = await conn.fetchval(
        "SELECT site FROM callback_requests WHERE created_at >= $1 AND created_at < $2 "
        "GROUP BY site ORDER BY count(*) DESC LIMIT 1", since, until)
    busiest_store = await conn.fetchval(
        "SELECT route_destination FROM callback_requests WHERE created_at >= $1 AND created_at < $2 "
        "AND route_destination IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1", since, until)
    variants = {
        "all": ReportQuery(since, until, site_zones=SITE_ZONES),
        f"site {busiest_site}": ReportQuery(since, until, site=busiest_site, site_zones=SITE_ZONES),
        f"store {busiest_store}": ReportQuery(since, until, destination=busiest_store, site_zones=SITE_ZONES),
    }
    names = [*REPORTS, "summary"]
    nested = NestedPlans(conn)
    await nested.setup()
    results = []
    for variant, q in variants.items():
        for name in names:
            if variant.startswith("store") and name in ("pages", "campaigns", "sites", "heatmap", "trunks"):
                continue  # these reports take no destination filter
            r = await run_report(conn, name, variant, q, nested, runs)
            log(f"  {variant:<22} {name:<13} explain {r.explain_ms:9.1f} ms (runs "
                f"{', '.join(f'{x:.0f}' for x in r.runs_ms)})   first {r.first_ms:9.1f} ms   "
                f"again {r.wall_ms:9.1f} ms   {r.rows} rows")
            results.append(r)
    return results


# ------------------------------------------------------------------------------------------ write cost
WRITE_SQL = ROOT / "bench" / "sql" / "write_cost.sql"


async def write_cost(server_dsn: str, requests: int) -> dict[str, Any]:
    """µs per request written (intake + one dialled attempt) with and without the triggers of migration 0013.

    Measured in steady state: after a first batch of requests, ANALYZE and a new session (so that the plans
    cached by the triggers are those of a table that is not empty).
    """
    dsn, drop = await scratch_database(server_dsn)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            await conn.execute("SELECT set_config('bench.write_requests', '2000', false), "
                               "set_config('bench.write_intake_only', 'off', false)")
            await conn.execute(WRITE_SQL.read_text(encoding="utf-8"))
            await conn.execute("ANALYZE callback_requests; ANALYZE callback_events; ANALYZE call_legs; "
                               "ANALYZE cs_request_facts")
        finally:
            await conn.close()
        conn = await asyncpg.connect(dsn)
        try:
            triggers = await conn.fetch(
                "SELECT tgrelid::regclass::text AS tbl, tgname FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgname LIKE '%\\_facts%' AND tgrelid IN ('callback_requests'::regclass, "
                "'callback_events'::regclass, 'call_legs'::regclass)")
            if not triggers:
                raise SystemExit("no cs_request_facts triggers (migration 0013) in this schema")
            sql = WRITE_SQL.read_text(encoding="utf-8")

            async def run(n: int, enabled: bool, intake_only: bool) -> float:
                verb = "ENABLE" if enabled else "DISABLE"
                for t in triggers:
                    await conn.execute(f"ALTER TABLE {t['tbl']} {verb} TRIGGER {t['tgname']}")
                await conn.execute(f"SELECT set_config('bench.write_requests', '{n}', false), "
                                   f"set_config('bench.write_intake_only', '{'on' if intake_only else 'off'}', false)")
                t0 = time.perf_counter()
                await conn.execute(sql)
                return (time.perf_counter() - t0) * 1e6 / n

            out: dict[str, Any] = {"bench": "report_scale_write_cost", "requests": requests}
            for label, intake_only in (("lifecycle", False), ("intake", True)):
                await run(200, True, intake_only)  # warm-up
                await run(200, False, intake_only)
                on, off = [], []
                for _ in range(3):
                    on.append(await run(requests, True, intake_only))
                    off.append(await run(requests, False, intake_only))
                best_on, best_off = min(on), min(off)
                what = "intake (request + first event)" if intake_only else "intake + one attempt (25 writes)"
                log(f"{what}: with triggers {best_on:.0f} µs a request (runs {', '.join(f'{x:.0f}' for x in on)}), "
                    f"without {best_off:.0f} µs (runs {', '.join(f'{x:.0f}' for x in off)})")
                out[f"{label}_us_with_triggers"] = round(best_on)
                out[f"{label}_us_without"] = round(best_off)
                out[f"{label}_ratio"] = round(best_on / best_off, 2)
            await run(1, True, False)
        finally:
            await conn.close()
    finally:
        await drop()
    return out


# ------------------------------------------------------------------------------------------ main
async def main_async(args: argparse.Namespace, server_dsn: str | None) -> dict[str, Any]:
    drop = None
    if args.dsn:
        dsn = args.dsn
    else:
        assert server_dsn is not None
        dsn, drop = await scratch_database(server_dsn)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            applied = await migrate(conn)
            info = await marker(conn)
            if info is None:
                if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM callback_requests)"):
                    raise SystemExit(f"{dsn}: holds requests but was not seeded by this bench; not touching it")
                requests = round(FULL_REQUESTS * args.scale)
                log(f"seeding {requests:,} requests over {YEAR} into {urlsplit(dsn).path.lstrip('/')} ...")
                seed_times = await seed(conn, requests)
                counts = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM callback_requests) AS requests, "
                    "(SELECT count(*) FROM callback_events) AS events, (SELECT count(*) FROM call_legs) AS legs")
                assert counts is not None
                info = {"bench": MARKER, "scale": args.scale, **dict(counts),
                        "seed_s": {k: round(v, 1) for k, v in seed_times.items()},
                        "seeded_at": datetime.now(UTC).isoformat(timespec="seconds")}
                await set_marker(conn, info)
            else:
                log(f"reusing the seeded database {urlsplit(dsn).path.lstrip('/')} (scale {info['scale']}, "
                    f"seeded {info['seeded_at']}); migrations applied now: {applied or 'none'}")
                if applied and await conn.fetchval("SELECT to_regclass('cs_request_facts') IS NOT NULL"):
                    await conn.execute("VACUUM (ANALYZE) cs_request_facts")  # as autovacuum would, after a fill
            sizes = await conn.fetch(
                "SELECT c.relname, pg_size_pretty(pg_table_size(c.oid)) AS heap, "
                "pg_size_pretty(pg_indexes_size(c.oid)) AS indexes FROM pg_class c "
                "WHERE c.relname IN ('callback_requests', 'callback_events', 'call_legs', 'cs_request_facts') "
                "AND c.relkind = 'r' ORDER BY 1")
            for s in sizes:
                log(f"  {s['relname']:<18} table {s['heap']:>8}  indexes {s['indexes']:>8}")
        finally:
            await conn.close()
        # the reports run on a fresh connection with the server's settings (the seeding changed its own)
        conn = await asyncpg.connect(dsn)
        try:
            settings = dict(await conn.fetch(
                "SELECT name, current_setting(name) FROM unnest(ARRAY['shared_buffers', 'work_mem', 'jit', "
                "'max_parallel_workers_per_gather', 'random_page_cost', 'effective_cache_size']) AS name"))
            version = await conn.fetchval("SHOW server_version")
            log(f"Postgres {version}: {settings}")
            calibration = [await cpu_calibration(conn)]
            log(f"reports for {args.month} (CPU calibration: {calibration[0]:.0f} ms):")
            results = await run_reports(conn, args.month, args.runs)
            calibration.append(await cpu_calibration(conn))
            log(f"CPU calibration after the reports: {calibration[1]:.0f} ms")
        finally:
            await conn.close()
    finally:
        if drop is not None:
            if args.keep:
                log(f"kept the database: --dsn {dsn}")
            else:
                await drop()

    OUT_DIR.mkdir(exist_ok=True)
    ignore = OUT_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    out = Path(args.out) if args.out else OUT_DIR / f"report_scale-{info['scale']}-{args.month}.txt"
    with out.open("w", encoding="utf-8") as f:
        f.write(f"# bench/report_scale.py: {json.dumps(info)}\n# Postgres {version} {json.dumps(settings)}\n"
                f"# CPU calibration (count 10 M rows) before/after: {calibration}\n")
        for r in results:
            f.write(f"\n\n######## {r.report} ({r.variant}): execution {r.explain_ms:.1f} ms (median of "
                    f"{', '.join(f'{x:.1f}' for x in r.runs_ms)}), planning {r.planning_ms:.1f} ms, "
                    f"wall {r.wall_ms:.1f} ms (first run {r.first_ms:.1f} ms)\n")
            f.write("\n\n".join(r.plans) + "\n")
    log(f"plans: {out}")

    print(f"\n{'report':<13} {'variant':<22} {'EXPLAIN ms':>10} {'min':>7} {'max':>7} {'wall ms':>9} "
          f"{'1st run ms':>10} {'rows':>6}")
    for r in results:
        print(f"{r.report:<13} {r.variant:<22} {r.explain_ms:10.1f} {min(r.runs_ms):7.1f} {max(r.runs_ms):7.1f} "
              f"{r.wall_ms:9.1f} {r.first_ms:10.1f} {r.rows:6}")
    main = {r.report: round(r.explain_ms, 1) for r in results if r.variant == "all"}
    return {
        "bench": "report_scale",
        "scale": info["scale"],
        "requests": info["requests"],
        "legs": info["legs"],
        "events": info["events"],
        "month": args.month,
        "reports": main,
        "max_ms": max(main.values()),
        "max_ms_filtered": round(max(r.explain_ms for r in results if r.variant != "all"), 1),
        "max_wall_ms": round(max(r.wall_ms for r in results), 1),
        "seed_s": info["seed_s"]["total_s"],
        "runs": args.runs,
        "cpu_calibration_ms": [round(x) for x in calibration],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 5 M requests to seed (default 1)")
    parser.add_argument("--month", default=f"{YEAR}-06", help=f"month to report on, YYYY-MM (default {YEAR}-06)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (prints its DSN)")
    parser.add_argument("--dsn", help="database to use: one seeded by --keep (reused), or an empty one (seeded)")
    parser.add_argument("--out", help="file for the plans (default bench/out/report_scale-<scale>-<month>.txt)")
    parser.add_argument("--runs", type=int, default=3, help="EXPLAIN ANALYZE runs per report; the median counts "
                                                             "(default 3)")
    parser.add_argument("--write-cost", type=int, metavar="N",
                        help="instead: the cost of the 0013 triggers on the service's writes, N requests a run")
    args = parser.parse_args()
    if args.write_cost:
        with postgres_server("CALLSWITCH_BENCH_DSN", "CALLSWITCH_TEST_DSN") as server_dsn:
            print(json.dumps(asyncio.run(write_cost(server_dsn, args.write_cost))))
        return
    if args.keep and not args.dsn and not any(os.environ.get(v) for v in ("CALLSWITCH_BENCH_DSN",
                                                                           "CALLSWITCH_TEST_DSN")):
        parser.error("--keep needs a server to keep the database on: set CALLSWITCH_BENCH_DSN")
    if args.dsn:
        result = asyncio.run(main_async(args, None))
    else:
        with postgres_server("CALLSWITCH_BENCH_DSN", "CALLSWITCH_TEST_DSN") as server_dsn:
            result = asyncio.run(main_async(args, server_dsn))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
