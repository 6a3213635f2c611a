"""Dialer figures: AMI events/s read and dispatched, and time from 202 Accepted to the Originate.

1. Reader: the same byte stream (real Asterisk 22 call-flow transcripts repeated, cut into random
   1-4 KiB chunks) through (a) callswitch's reader as the daemon runs it — ``AmiParser`` and every
   message handed to the dialer's ``Interpreter`` — and (b) panoramisk 1.4's own reader
   (``AMIProtocol.data_received`` building its ``Message`` objects) with a no-op dispatch.
2. Originate latency: the real intake app, Postgres, the dialer and the AMI simulator in this process;
   one request at a time with the agent free; the clock runs from the moment the client has the
   ``202 Accepted`` to the moment the simulator has read the Originate from its socket.

Postgres: $CALLSWITCH_BENCH_DSN (server-level DSN; a database is created and dropped), else a private
durable cluster. Last line:
{"bench": "dialer", "reader_events_per_s": ..., "panoramisk_events_per_s": ..., "ratio": ...,
 "originate_p50_ms": ..., "originate_p99_ms": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from ami_reader import load_corpus, make_chunks, run_panoramisk  # noqa: E402
from benchdb import postgres_server, scratch_database  # noqa: E402

from callswitch.ami.protocol import AmiParser  # noqa: E402
from callswitch.config import load_config  # noqa: E402
from callswitch.db.migrate import migrate  # noqa: E402
from callswitch.db.pool import Database  # noqa: E402
from callswitch.db.wakeup import WorkSignal  # noqa: E402
from callswitch.dialer.interpret import Interpreter  # noqa: E402
from callswitch.dialer.worker import Dialer  # noqa: E402
from callswitch.intake.app import create_app  # noqa: E402
from callswitch.pgcluster import free_port  # noqa: E402
from callswitch.routing.reload import RulesHolder  # noqa: E402
from callswitch.testing.pbx import PbxSimulator  # noqa: E402


def run_daemon_reader(chunks: list[bytes]) -> tuple[int, float]:
    """What the daemon does per received chunk: parse, then hand every event to the interpreter."""
    parser = AmiParser()
    interpreter = Interpreter()
    now = datetime.now(UTC)
    count = 0
    t0 = time.perf_counter()
    for chunk in chunks:
        for msg in parser.feed(chunk):
            interpreter.feed(msg, now)
            count += 1
    return count, time.perf_counter() - t0


def reader_figures(rounds: int = 3) -> tuple[float, float]:
    corpus, source = load_corpus()
    chunks, size = make_chunks(corpus, 10 << 20, seed=1)
    print(f"corpus: {source}, stream {size / (1 << 20):.1f} MiB in {len(chunks)} chunks")
    best_ours = best_pano = 0.0
    for _ in range(rounds):
        n, t = run_daemon_reader(chunks)
        best_ours = max(best_ours, n / t)
        n2, t2 = run_panoramisk(chunks)
        best_pano = max(best_pano, n2 / t2)
    print(f"callswitch reader + interpreter: {best_ours:,.0f} events/s")
    print(f"panoramisk 1.4 reader:           {best_pano:,.0f} events/s")
    return best_ours, best_pano


CONFIG = """\
http: {{listen: "127.0.0.1:{http_port}"}}
database: {{dsn: "{dsn}", min_connections: 2, max_connections: 10}}
ami: {{host: 127.0.0.1, port: {ami_port}, username: callswitch, secret: secret}}
logging: {{level: warning, format: json}}
dialing: {{poll_interval: 5s}}
intake: {{rate_limits: {{per_ip: "off", per_phone: "off", per_site: "off"}}}}
routing: {{file: routing.yaml}}
sites:
  shop: {{site_key: pk_bench_site, allowed_origins: ["https://shop.example"]}}
"""
ROUTING = """\
version: 1
defaults: {timezone: UTC, ring_timeout: 5}
trunks: {carrier: {dial: "PJSIP/{number}@carrier"}}
destinations: {store: {members: ["+13125550100"]}}
default: store
"""


async def originate_latency(server_dsn: str, samples: int) -> list[float]:
    dsn, drop_database = await scratch_database(server_dsn)
    tmp = Path(tempfile.mkdtemp(prefix="callswitch-bench-dialer-"))
    sim = PbxSimulator(users={"callswitch": "secret"}, time_scale=0.01,
                       default_behaviour=lambda n: "accept" if n.endswith("3125550100") else "hangs_up")
    await sim.start()
    http_port = free_port()
    (tmp / "routing.yaml").write_text(ROUTING)
    (tmp / "callswitch.yaml").write_text(textwrap.dedent(CONFIG.format(http_port=http_port, dsn=dsn,
                                                                       ami_port=sim.port)))
    config = load_config(tmp / "callswitch.yaml", env={})
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    db = Database(config.database)
    await db.connect()
    rules = RulesHolder(tmp / "routing.yaml")
    assert rules.reload(), rules.last_error
    work = WorkSignal(db)
    work_task = asyncio.create_task(work.run())
    dialer = Dialer(config, db, rules, work=work, node="bench")
    await dialer.start()
    await dialer.clients[0].wait_connected(10)
    from aiohttp import web

    runner = web.AppRunner(create_app(config, db, rules=rules, work=work), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            for i in range(samples):
                seen = len(sim.originates)
                body = {"site_key": "pk_bench_site", "name": "Bench", "phone": f"+1773555{3000 + i}"}
                async with http.post(f"http://127.0.0.1:{http_port}/v1/callbacks", json=body,
                                     headers={"Origin": "https://shop.example"}) as resp:
                    await resp.read()
                    accepted_at = time.monotonic()
                    assert resp.status == 202, resp.status
                while len(sim.originates) == seen:  # noqa: ASYNC110 - polling the simulator's record
                    await asyncio.sleep(0.0005)
                latencies.append((sim.originates[seen].received_at - accepted_at) * 1000)
                while dialer.active_calls:  # noqa: ASYNC110 - the agent is free before the next request
                    await asyncio.sleep(0.005)
    finally:
        await runner.cleanup()
        await dialer.stop(5)
        work_task.cancel()
        await db.close()
        await sim.stop()
        await drop_database()
    return latencies


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    from callswitch import logs

    logs.configure("warning", "json")
    ours, pano = reader_figures()
    with postgres_server("CALLSWITCH_BENCH_DSN") as server_dsn:
        latencies = asyncio.run(originate_latency(server_dsn, args.samples))
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print("slowest:", ", ".join(f"{v:.1f}" for v in sorted(latencies)[-5:]), "ms")
    print(f"202 Accepted -> Originate read by the PBX: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(latencies)} requests)")
    result: dict[str, Any] = {
        "bench": "dialer",
        "reader_events_per_s": round(ours),
        "panoramisk_events_per_s": round(pano),
        "ratio": round(ours / pano, 2),
        "originate_p50_ms": round(p50, 2),
        "originate_p99_ms": round(p99, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
