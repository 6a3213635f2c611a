"""Intake throughput: durable accepted requests/s vs a bare aiohttp handler, same machine, same run.

Both servers run as separate processes; this process is the load generator (50 concurrent
clients on keep-alive connections by default). The durable server is the real service
(`callswitch serve`): every 202 is answered only after the request row and its event are
committed to a Postgres with fsync and synchronous_commit on. The bare server parses the
same JSON body and answers 202 without doing anything.

A third run measures the ceiling: the same service with its storing step answered at once
(bench/_intake_nostore.py), i.e. what the Python request path alone allows. For the durable
run the CPU time per request of the server, of its Postgres backends (when Postgres runs on
this machine) and of the load generator is printed as well, so that a shortfall can be put
where it belongs.

Postgres: $CALLSWITCH_BENCH_DSN (a server-level DSN; a fresh database is created), else
a private durable cluster is started for the run.

Last line: {"bench": "intake", "durable_rps": ..., "bare_rps": ..., "ratio": ..., "p50_ms": ..., "p99_ms": ...,
"ceiling_rps": ..., "ceiling_ratio": ..., "cpu_us_per_request": {"server": ..., "postgres": ..., "loadgen": ...}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _loadkit import cpu_seconds  # noqa: E402
from benchdb import postgres_server, scratch_database  # noqa: E402

from callswitch.pgcluster import free_port  # noqa: E402

CONFIG = """
http:
  listen: 127.0.0.1:{port}
  public_url: http://127.0.0.1:{port}
database:
  dsn: {dsn}
  min_connections: 10
  max_connections: 20
logging:
  level: warning
  format: json
intake:
  rate_limits: {{per_ip: "off", per_phone: "off", per_site: "off"}}
sites:
  shop:
    site_key: pk_bench_site
    allowed_origins: [https://shop.example]
    phone: {{default_region: US}}
"""

BARE = """
import json, sys
from aiohttp import web
async def handler(request):
    body = json.loads(await request.read())
    return web.json_response({"id": "x", "state": "queued", "name": body["name"]}, status=202)
app = web.Application()
app.router.add_post("/v1/callbacks", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def body(i: int) -> bytes:
    return json.dumps({
        "site_key": "pk_bench_site",
        "name": f"Visitor {i}",
        "phone": f"+1312{200 + (i // 10000) % 700:03d}{i % 10000:04d}",
        "page_url": "https://shop.example/products/widget",
        "pages": ["https://shop.example/", "https://shop.example/products/widget"],
        "utm": {"source": "google", "campaign": "bench"},
        "attributes": {"product": "widget", "postal_code": "60601", "company_size": 50},
        "consent": True,
    }).encode()


async def wait_up(port: int, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status in (200, 404):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


async def load(port: int, seconds: float, clients: int, offset: int) -> tuple[float, list[float], int]:
    """Run `clients` workers for `seconds`; return (rps, latencies ms, errors)."""
    url = f"http://127.0.0.1:{port}/v1/callbacks"
    headers = {"Content-Type": "application/json", "Origin": "https://shop.example"}
    latencies: list[float] = []
    errors = 0
    counter = offset
    stop_at = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal counter, errors
            while time.monotonic() < stop_at:
                counter += 1
                data = body(counter)
                t0 = time.perf_counter()
                async with session.post(url, data=data, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 202:
                        errors += 1
                        continue
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.monotonic() - started
    return len(latencies) / elapsed, latencies, errors


def cpu_or_none(pid: int) -> float | None:
    """:func:`_loadkit.cpu_seconds`, or None if the process is gone (or not on this machine)."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


async def backend_cpu(dsn: str) -> dict[int, float]:
    """CPU seconds so far of each Postgres backend serving the bench database, if they run on this machine."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = [r["pid"] for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    finally:
        await conn.close()
    found = {}
    for pid in pids:
        used = cpu_or_none(pid) if _is_local_postgres(pid) else None
        if used is not None:
            found[pid] = used
    return found


def _is_local_postgres(pid: int) -> bool:
    """Is process `pid` of this machine a Postgres process (and not some other one that has the same pid)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"postgres" in f.read()
    except OSError:
        return False


async def measured_load(
    port: int, seconds: float, clients: int, offset: int, server_pid: int, dsn: str
) -> tuple[float, list[float], int, dict[str, float | None]]:
    """`load`, plus the CPU time per request (µs) the server, its Postgres backends and this process spent."""
    server0, pg0, own0 = cpu_or_none(server_pid), await backend_cpu(dsn), time.process_time()
    rps, latencies, errors = await load(port, seconds, clients, offset)
    server1, pg1, own1 = cpu_or_none(server_pid), await backend_cpu(dsn), time.process_time()
    n = max(len(latencies), 1)

    def per_request(used: float | None) -> float | None:
        return None if used is None else round(used / n * 1e6)

    cpu = {
        "server": per_request(server1 - server0 if server0 is not None and server1 is not None else None),
        "postgres": per_request(sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) if pg1 else None),
        "loadgen": per_request(own1 - own0),
    }
    return rps, latencies, errors, cpu


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def main_async(args: argparse.Namespace, server_dsn: str) -> dict[str, object]:
    dsn, drop_database = await scratch_database(server_dsn)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        tmp = Path(tempfile.mkdtemp(prefix="callswitch-bench-"))
        durable_port, bare_port, ceiling_port = free_port(), free_port(), free_port()
        cfg, ceiling_cfg = tmp / "callswitch.yaml", tmp / "ceiling.yaml"
        cfg.write_text(CONFIG.format(port=durable_port, dsn=dsn))
        ceiling_cfg.write_text(CONFIG.format(port=ceiling_port, dsn=dsn))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        durable = subprocess.Popen([sys.executable, "-m", "callswitch", "serve", "-c", str(cfg)], env=env)  # noqa: ASYNC220
        procs.append(durable)
        procs.append(subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)], env=env))  # noqa: ASYNC220
        await wait_up(durable_port)  # its migrations first: the ceiling server would wait for them anyway
        ceiling = [sys.executable, str(ROOT / "bench" / "_intake_nostore.py"), "serve", "-c", str(ceiling_cfg)]
        procs.append(subprocess.Popen(ceiling, env=env))  # noqa: ASYNC220
        await wait_up(bare_port)
        await wait_up(ceiling_port)
        conn = await asyncpg.connect(dsn)
        for _ in range(100):  # migrations run at start-up
            if await conn.fetchval("SELECT to_regclass('callback_requests') IS NOT NULL"):
                break
            await asyncio.sleep(0.1)
        await conn.close()
        # warm-up both, then measure
        await load(bare_port, 1.0, args.clients, 0)
        await load(durable_port, 1.0, args.clients, 10_000_000)
        await load(ceiling_port, 1.0, args.clients, 30_000_000)
        bare_rps, _, bare_err = await load(bare_port, args.seconds, args.clients, 0)
        durable_rps, latencies, durable_err, cpu = await measured_load(
            durable_port, args.seconds, args.clients, 20_000_000, durable.pid, dsn)
        ceiling_rps, _, ceiling_err = await load(ceiling_port, args.seconds, args.clients, 40_000_000)
        conn = await asyncpg.connect(dsn)
        stored = await conn.fetchval("SELECT count(*) FROM callback_requests")
        await conn.close()
        print(f"bare handler:   {bare_rps:8.0f} req/s ({bare_err} errors)")
        print(f"durable intake: {durable_rps:8.0f} req/s ({durable_err} errors), {stored} rows stored in all")
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        print(f"latency of durable intake: p50 {p50:.2f} ms, p99 {p99:.2f} ms at {args.clients} concurrent clients")
        print(f"ceiling (the service, storing nothing): {ceiling_rps:8.0f} req/s ({ceiling_err} errors)")
        shown = ", ".join(f"{k} {'n/a' if v is None else f'{v:.0f}'}" for k, v in cpu.items())
        print(f"CPU time per durable request, µs: {shown}")
        return {
            "bench": "intake",
            "durable_rps": round(durable_rps, 1),
            "bare_rps": round(bare_rps, 1),
            "ratio": round(durable_rps / bare_rps, 3) if bare_rps else None,
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "ceiling_rps": round(ceiling_rps, 1),
            "ceiling_ratio": round(ceiling_rps / bare_rps, 3) if bare_rps else None,
            "cpu_us_per_request": cpu,
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        await drop_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    with postgres_server("CALLSWITCH_BENCH_DSN") as server_dsn:
        result = asyncio.run(main_async(args, server_dsn))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
