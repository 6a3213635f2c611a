"""Load: the running daemon under a TV-ad spike, with a simulated PBX and a real, durable Postgres.

    .venv/bin/python bench/load.py [--rate 200] [--duration 60] [--quick] [--dsn postgresql://...]

Three separate processes besides this one: the daemon (`callswitch serve`), the AMI simulator
(bench/_pbxsim.py, which logs every Originate and channel it sees) and an open-loop load generator
(bench/_loadgen.py: Poisson arrivals at the scheduled rate whatever the answers, latency measured from
the moment each request was due). Phases: warm-up at the steady rate, the spike (``--rate`` requests/s
for ``--duration`` s), the steady rate again, a drain period, then SIGTERM (calls in progress finish,
queued requests stay queued). Two agent teams of 10 (sales, support, by page URL) behind one trunk;
limits: trunk 12 calls and 30 calls/s, 8 calls per team, 16 in all, one call per agent. Visitors: 80 %
talk and hang up, 10 % busy, 10 % no answer (one retry after 2 s).

Then two shorter runs measure memory: RSS growth while ``--queued`` requests pile up with Asterisk
unreachable, and RSS per active call with ``--active`` visitors staying on the line.

Checks: every accepted (202) request is stored and, after the daemon stopped, final or still waiting
(``lost`` counts the others); the concurrency the simulated PBX actually carried and the call records
never exceed a limit (``limit_violations``).

Postgres: ``--dsn`` or $CALLSWITCH_BENCH_DSN (a server-level DSN; a scratch database is created per
run and dropped), else a private durable cluster (fsync on) for the run.

Last line: {"bench": "load", "accepted_per_s": ..., "intake_p99_ms": ..., "ring_p99_ms": ..., "lost": ...,
"limit_violations": ..., "rss_mb_per_10k_queued": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _loadkit import (  # noqa: E402
    Limits,
    Sampler,
    SimLog,
    db_limit_report,
    hang_up_all,
    limit_report,
    percentile,
    read_results,
    records_report,
    rss_bytes,
    snapshot_code,
    spawn_loadgen,
    start_stack,
    stop_process,
    until,
    wait_done,
)
from benchdb import postgres_server  # noqa: E402

SALES = [f"+1312555010{i}" for i in range(10)]  # accept (lab plan)
SUPPORT = [f"+1312555018{i}" for i in range(10)]  # accept (lab plan)
LOAD_LIMITS = Limits(max_calls=16, trunk_channels=12, trunk_cps=30, per_destination=8,
                     members={**dict.fromkeys(SALES, "sales"), **dict.fromkeys(SUPPORT, "support")})


def rank_correlation(rings: list[Any]) -> float:
    """Spearman's rho between the order requests arrived in and the order their first agent was dialled."""
    pairs = [(float(r["created"]), float(r["first_orig"])) for r in rings]
    n = len(pairs)
    if n < 3:
        return float("nan")
    arrival = {i: k for k, i in enumerate(sorted(range(n), key=lambda i: pairs[i][0]))}
    dialled = {i: k for k, i in enumerate(sorted(range(n), key=lambda i: pairs[i][1]))}
    d2 = sum((arrival[i] - dialled[i]) ** 2 for i in range(n))
    return 1 - 6 * d2 / (n * (n * n - 1))


def ms(v: float) -> float:
    return round(v * 1000, 1) if not math.isnan(v) else v


async def count_where(dsn: str, where: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM callback_requests WHERE {where}"))
    finally:
        await conn.close()


async def no_unfinished(dsn: str) -> bool:
    return await count_where(dsn, "finished_at IS NULL") == 0


async def run_load(args: argparse.Namespace, server_dsn: str, tmp: Path) -> dict[str, Any]:
    async with start_stack(server_dsn, tmp / "load", limits=LOAD_LIMITS, pool=args.pool,
                           time_scale=args.time_scale, seed=args.seed) as stack:
        dsn, url, daemon, work = stack.dsn, stack.url, stack.daemon, stack.work
        sampler = Sampler(daemon.pid, dsn)
        sampler.start()
        schedule = f"{args.warmup}:{args.steady_rate},{args.duration}:{args.rate},{args.after}:{args.steady_rate}"
        print(f"load: schedule {schedule} (seconds:requests/s), then up to {args.drain:g} s of drain; "
              f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
        t_load = time.time()
        gen = spawn_loadgen(url, schedule, work / "requests.jsonl", seed=args.seed)
        if stack.sim is not None:
            sampler.watch("simulator", stack.sim.pid)
        sampler.watch("load generator", gen.pid)
        await wait_done(gen)
        t_gen_done = time.time()
        await until(lambda: no_unfinished(dsn), args.drain, 1.0)  # drain: the queue is empty, or time is up
        t_stop = time.time()
        await asyncio.to_thread(stop_process, daemon, signal.SIGTERM, 90)
        await sampler.stop()
        stop_process(stack.sim)
        results = read_results(work / "requests.jsonl")
        sim_log = SimLog.read(work / "sim.jsonl")
        conn = await asyncpg.connect(dsn)
        try:
            accepted = [r["id"] for r in results if r["status"] == 202]
            records = await records_report(conn, sim_log, accepted)
            db_limits = await db_limit_report(conn, LOAD_LIMITS)
            rings = await conn.fetch("""
                SELECT r.id::text AS id, extract(epoch FROM min(l.ringing_at) - r.created_at)::float8 AS ring,
                       extract(epoch FROM min(l.originated_at) - r.created_at)::float8 AS orig,
                       extract(epoch FROM r.created_at)::float8 AS created,
                       extract(epoch FROM min(l.originated_at))::float8 AS first_orig
                FROM callback_requests r JOIN call_legs l ON l.request_id = r.id AND l.leg = 'agent'
                GROUP BY r.id, r.created_at""")
            attempts = await conn.fetch("SELECT outcome, count(*) AS n FROM call_attempts GROUP BY outcome")
        finally:
            await conn.close()
        sim_limits = limit_report(sim_log, LOAD_LIMITS)
        return analyse(args, results, records, sim_limits, db_limits, rings, attempts, sampler.samples,
                       t_load, t_gen_done, t_stop, daemon.returncode)


def analyse(args: argparse.Namespace, results: list[dict[str, Any]], records: dict[str, Any],
            sim_limits: dict[str, Any], db_limits: dict[str, Any], rings: list[Any], attempts: list[Any],
            samples: list[dict[str, Any]], t_load: float, t_gen_done: float, t_stop: float,
            exit_code: int | None) -> dict[str, Any]:
    by_phase: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
    for r in results:
        by_phase.setdefault(r["phase"], []).append(r)
    names = {0: "warm-up", 1: "spike", 2: "after"}
    print(f"\nintake (latency from the moment each request was due to its answer; {len(results)} requests)")
    print("  phase      offered/s  accepted/s   202   other  no-answer   p50 ms   p99 ms   max ms")
    spike_p99 = float("nan")
    accepted_per_s = 0.0
    for p, recs in sorted(by_phase.items()):
        secs = {0: args.warmup, 1: args.duration, 2: args.after}.get(p, 1.0)
        ok = [r for r in recs if r["status"] == 202]
        lat = [r["done"] - r["due"] for r in ok]
        other = sum(1 for r in recs if r["status"] not in (202, 0))
        none = sum(1 for r in recs if r["status"] == 0)
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        if p == 1:
            spike_p99, accepted_per_s = p99, len(ok) / secs
        print(f"  {names.get(p, p):<9} {len(recs) / secs:10.1f} {len(ok) / secs:11.1f} {len(ok):6d} {other:7d}"
              f" {none:10d} {ms(p50):8.1f} {ms(p99):8.1f} {ms(max(lat, default=float('nan'))):8.1f}")
    created = {r["id"]: r for r in results if r["id"]}
    ring_all = [float(r["ring"]) for r in rings if r["ring"] is not None]
    ring_warm = [float(r["ring"]) for r in rings
                 if r["ring"] is not None and created.get(r["id"], {}).get("phase") == 0]
    orig_warm = [float(r["orig"]) for r in rings if created.get(r["id"], {}).get("phase") == 0]
    print("\nrequest -> agent ringing (call_legs.ringing_at - created_at, first agent leg)")
    print(f"  warm-up (queue empty): n={len(ring_warm)}  p50 {ms(percentile(ring_warm, 50))} ms  "
          f"p99 {ms(percentile(ring_warm, 99))} ms   (request -> Originate p50 {ms(percentile(orig_warm, 50))} ms)")
    print(f"  every request rung:    n={len(ring_all)}  p50 {percentile(ring_all, 50):.1f} s  "
          f"p99 {percentile(ring_all, 99):.1f} s  (includes the wait in the queue behind the spike)")
    print(f"  dial order vs arrival order (Spearman rank correlation, 1 = first come first served): "
          f"{rank_correlation(rings):.2f}")
    print("\nqueue over time (every 5 s; requests not finished, by state; daemon CPU (100 = one core) and RSS;"
          " the whole machine's CPU (100 = both cores busy))")
    print("     t  queued  sched  in-call  cpu %  rss MB  machine %")
    for s in samples[::5]:
        print(f"  {s['t']:5.0f} {s['queued']:7d} {s['scheduled']:6d} {s['in_call']:8d} {s['cpu_pct']:6.1f}"
              f" {s['rss_mb']:7.1f} {s['machine_pct']:9.1f}")
    load_samples = [s for s in samples if s["t"] <= t_gen_done - t_load]
    cpu = [s["cpu_pct"] for s in load_samples] or [0.0]
    rss = [s["rss_mb"] for s in samples] or [0.0]
    peak_queue = max((s["queued"] + s["scheduled"] for s in samples), default=0)
    print(f"\ndaemon CPU while loaded: mean {statistics.fmean(cpu):.0f} %, max {max(cpu):.0f} % (of one core); "
          f"RSS {rss[0]:.0f} MB at start, peak {max(rss):.0f} MB; peak backlog {peak_queue}")
    machine = [s["machine_pct"] for s in load_samples] or [0.0]
    secs = max(1.0, len(load_samples))
    share = {"daemon": sum(cpu) / 100}
    for s in load_samples:
        for name, v in s["cpu_s"].items():
            share[name] = share.get(name, 0.0) + v
    parts = ", ".join(f"{name} {100 * v / secs:.0f} %" for name, v in share.items())
    rest = statistics.fmean(machine) * 2 - sum(100 * v / secs for v in share.values())
    print(f"whole machine while loaded: {statistics.fmean(machine):.0f} % of both cores busy; of one core: "
          f"{parts} (its backends for this database), everything else {max(0.0, rest):.0f} %")
    print(f"daemon exit code after SIGTERM: {exit_code}; drained for {t_stop - t_gen_done:.0f} s")
    print(f"\nrecords: {records['accepted']} accepted, {records['stored']} stored, {records['final']} final "
          f"{records['outcomes']}, {records['still_waiting']} still waiting (queued/scheduled)")
    print(f"  attempts by outcome: { {str(a['outcome']): int(a['n']) for a in attempts} }")
    lost = len(records["missing"]) + len(records["stuck"])
    print(f"  lost: {lost} (missing {len(records['missing'])}, stuck mid-call {len(records['stuck'])}); "
          f"legs left open: {records['open_legs']}; Originates without a call_legs row: "
          f"{len(records['dialled_without_record'])}")
    print(f"limits (simulated PBX): peaks {sim_limits['peaks']}, violations {sim_limits['violations']} "
          f"{sim_limits.get('exceeded', '')}")
    print(f"  both legs on the trunk at once, peak: {sim_limits['trunk_channels_peak_both_legs']} "
          "(the trunk limit counts calls)")
    print(f"limits (call records): violations {db_limits['violations']} {db_limits.get('exceeded', '')}; "
          f"calls/s peak {db_limits.get('cps_peak:carrier')}")
    return {
        "accepted_per_s": round(accepted_per_s, 1),
        "intake_p99_ms": ms(spike_p99),
        "ring_p99_ms": ms(percentile(ring_all, 99)),
        "ring_p99_ms_queue_empty": ms(percentile(ring_warm, 99)),
        "lost": lost,
        "limit_violations": int(sim_limits["violations"]) + int(db_limits["violations"]),
    }


async def run_queued_memory(args: argparse.Namespace, server_dsn: str, tmp: Path) -> dict[str, Any]:
    """RSS growth while requests pile up: Asterisk unreachable, so nothing is dialled."""
    async with start_stack(server_dsn, tmp / "queued", limits=LOAD_LIMITS, pool=args.pool,
                           time_scale=args.time_scale, seed=args.seed, with_sim=False) as stack:
        dsn, url, daemon, work = stack.dsn, stack.url, stack.daemon, stack.work
        warm = spawn_loadgen(url, "5:200", work / "warm.jsonl", seed=args.seed, first=5_000_000)
        await wait_done(warm)
        await asyncio.sleep(2)
        rss0 = rss_bytes(daemon.pid)
        rate = args.rate
        gen = spawn_loadgen(url, f"{args.queued / rate:g}:{rate:g}", work / "fill.jsonl", seed=args.seed + 1,
                            first=6_000_000)
        await wait_done(gen)
        await asyncio.sleep(2)
        rss1 = rss_bytes(daemon.pid)
        fill = read_results(work / "fill.jsonl")
        filled = sum(1 for r in fill if r["status"] == 202)
        lat = [r["done"] - r["due"] for r in fill if r["status"] == 202]
        queued = await count_where(dsn, "state = 'queued'")
        per_10k = (rss1 - rss0) / 2**20 * 10_000 / max(1, filled)
        print(f"\nmemory per queued request: RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MB while {filled} requests "
              f"were queued ({queued} queued in all): {per_10k:.2f} MB per 10,000")
        print(f"  intake alone (nothing dialled) at {rate:g} requests/s: p50 {ms(percentile(lat, 50))} ms, "
              f"p99 {ms(percentile(lat, 99))} ms")
        return {"rss_mb_per_10k_queued": round(per_10k, 2), "intake_p99_ms_no_dialling": ms(percentile(lat, 99))}


async def run_active_memory(args: argparse.Namespace, server_dsn: str, tmp: Path) -> dict[str, Any]:
    """RSS per call in progress: ``--active`` visitors stay on the line with as many agents."""
    k = int(args.active)
    limits = Limits(max_calls=k + 10, trunk_channels=None, trunk_cps=None, per_destination=None,
                    members={f"+13124{i:06d}": "desk" for i in range(k)})
    async with start_stack(server_dsn, tmp / "active", limits=limits, pool=10, time_scale=args.time_scale,
                           seed=args.seed) as stack:
        dsn, url, daemon, work = stack.dsn, stack.url, stack.daemon, stack.work
        warm = spawn_loadgen(url, f"4:{k / 2:g}", work / "warm.jsonl", seed=args.seed, first=7_000_000)
        await wait_done(warm)
        if not await until(lambda: no_unfinished(dsn), 120):
            raise RuntimeError("warm-up calls did not finish")
        await asyncio.sleep(2)
        rss0 = rss_bytes(daemon.pid)
        gen = spawn_loadgen(url, f"2:{k / 2:g}", work / "stay.jsonl", seed=args.seed + 2, first=8_000_000,
                            prefix="+1872")
        await wait_done(gen)
        posted = sum(1 for r in read_results(work / "stay.jsonl") if r["status"] == 202)
        target = min(posted, k)

        async def all_connected() -> bool:
            return await count_where(dsn, "state = 'connected'") >= target

        if not await until(all_connected, 120):
            raise RuntimeError("the calls did not all connect")
        connected = await count_where(dsn, "state = 'connected'")
        await asyncio.sleep(2)
        rss1 = rss_bytes(daemon.pid)
        per_call = (rss1 - rss0) / max(1, connected)
        print(f"memory per active call: RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MB with {connected} calls "
              f"connected: {per_call / 1024:.0f} KiB per call")
        await hang_up_all(stack.sim_port)
        await until(lambda: no_unfinished(dsn), 60)
        return {"rss_kib_per_active_call": round(per_call / 1024, 1), "active_calls": connected}


async def main_async(args: argparse.Namespace, server_dsn: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="callswitch-load-"))
    try:
        print(f"code under test: {snapshot_code(tmp / 'code')} (a copy, so edits during the run do not count)")
        out: dict[str, Any] = {"bench": "load"}
        out.update(await run_load(args, server_dsn, tmp))
        if not args.no_memory:
            out.update(await run_queued_memory(args, server_dsn, tmp))
            out.update(await run_active_memory(args, server_dsn, tmp))
        print(f"\nlogs: {tmp}" if args.keep else "")
        return out
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s during the spike")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of spike")
    parser.add_argument("--steady-rate", type=float, default=5.0, help="requests/s before and after the spike")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=60.0, help="seconds at the steady rate after the spike")
    parser.add_argument("--drain", type=float, default=30.0, help="at most this long for the queue to empty")
    parser.add_argument("--queued", type=int, default=10_000, help="requests queued for the memory figure")
    parser.add_argument("--active", type=int, default=50, help="calls in progress for the memory figure")
    parser.add_argument("--time-scale", type=float, default=0.05, help="simulated call time / real capture time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=int, default=10, help="the daemon's database.max_connections")
    parser.add_argument("--quick", action="store_true", help="10 s spike, shorter phases, smaller memory runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the two memory runs")
    parser.add_argument("--keep", action="store_true", help="keep the logs (daemon, simulator, requests)")
    parser.add_argument("--dsn", help="server-level Postgres DSN (default $CALLSWITCH_BENCH_DSN, else a private "
                                      "durable cluster)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.after, args.drain = 10.0, 5.0, 10.0, 10.0
        args.queued, args.active = 2_000, 20
    if args.dsn:
        result = asyncio.run(main_async(args, args.dsn))
    else:
        with postgres_server("CALLSWITCH_BENCH_DSN") as server_dsn:
            result = asyncio.run(main_async(args, server_dsn))
    print(json.dumps({k: result.get(k) for k in ("bench", "accepted_per_s", "intake_p99_ms", "ring_p99_ms",
                                                  "lost", "limit_violations", "rss_mb_per_10k_queued")}
                     | {k: v for k, v in result.items() if k not in ("bench", "accepted_per_s", "intake_p99_ms",
                                                                       "ring_p99_ms", "lost", "limit_violations",
                                                                       "rss_mb_per_10k_queued")}))


if __name__ == "__main__":
    main()
