"""Open-loop load generator for bench/load.py and bench/faults.py, run as a process of its own.

    python bench/_loadgen.py --url http://127.0.0.1:8080 --schedule 10:5,60:200,60:5 --out results.jsonl

Requests arrive at the scheduled rate (Poisson arrivals, ``--seed``) whatever the server does: a
slow answer never delays the next request, so latency is measured honestly from the moment the
request was *due* (no coordinated omission). ``--schedule`` is a list of ``SECONDS:RATE`` phases
(``inf:5`` runs until SIGTERM). Each request is one callback request with a phone number of its
own (no two requests are duplicates of each other). On SIGTERM (or at the end of the schedule) no
new request is started, those in flight get ``--grace`` seconds, then every result is written to
``--out`` as one JSON line:

    {"i": n, "phase": p, "due": t, "sent": t, "done": t, "status": 202, "id": "...", "error": null}

(Unix times; status 0 = no answer: connection refused or reset, timeout.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import time
from typing import Any

import aiohttp

SITE_KEY = "pk_bench_site"
ORIGIN = "https://shop.example"


def phone_for(i: int, prefix: str) -> str:
    """A distinct valid NANP number per request: prefix (+1NPA) + exchange 200-999 (not 555) + 4 digits."""
    exchange = 200 + (i // 10_000) % 790
    if exchange >= 555:
        exchange += 1
    return f"{prefix}{exchange:03d}{i % 10_000:04d}"


def body_for(i: int, prefix: str) -> bytes:
    page = "https://shop.example/support/contact" if i % 2 else "https://shop.example/pricing"
    return json.dumps({
        "site_key": SITE_KEY,
        "name": f"Visitor {i}",
        "phone": phone_for(i, prefix),
        "page_url": page,
        "pages": ["https://shop.example/", page],
        "utm": {"source": "tv", "campaign": "spring-spot"},
        "attributes": {"product": "widget", "postal_code": "60601"},
        "consent": True,
    }).encode()


def parse_schedule(text: str) -> list[tuple[float, float]]:
    phases = []
    for part in text.split(","):
        seconds, _, rate = part.partition(":")
        phases.append((math.inf if seconds == "inf" else float(seconds), float(rate)))
    return phases


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rnd = random.Random(args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    url = args.url.rstrip("/") + "/v1/callbacks"
    headers = {"Content-Type": "application/json", "Origin": ORIGIN}
    results: list[dict[str, Any]] = []
    inflight: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, phase: int, due: float) -> None:
            rec: dict[str, Any] = {"i": i, "phase": phase, "due": due, "sent": time.time(), "done": None,
                                   "status": 0, "id": None, "error": None}
            results.append(rec)
            try:
                async with session.post(url, data=body_for(i, args.prefix), headers=headers) as resp:
                    rec["status"] = resp.status
                    data = await resp.read()
                    if resp.status in (200, 202):
                        rec["id"] = json.loads(data).get("id")
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                rec["error"] = type(exc).__name__
            rec["done"] = time.time()

        i = args.first
        start = time.time()
        phase_start = start
        for phase, (seconds, rate) in enumerate(parse_schedule(args.schedule)):
            phase_end = phase_start + seconds
            due = phase_start
            while not stop.is_set():
                due += rnd.expovariate(rate) if rate > 0 else math.inf
                if due >= phase_end:
                    break
                delay = due - time.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                task = loop.create_task(one(i, phase, due))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                i += 1
            if stop.is_set():
                break
            phase_start = phase_end
        if inflight:
            await asyncio.wait(set(inflight), timeout=args.grace)
        for task in inflight:
            task.cancel()
        for rec in results:
            if rec["done"] is None:
                rec["error"] = rec["error"] or "unfinished"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="open-loop callback request generator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--schedule", required=True, help="SECONDS:RATE[,SECONDS:RATE...]; inf:RATE until SIGTERM")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="number of the first request (phone numbers)")
    parser.add_argument("--prefix", default="+1773", help="+1 and the area code of the visitors' numbers")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=35.0)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    with open(args.out, "w") as out:
        for rec in sorted(results, key=lambda r: r["i"]):
            out.write(json.dumps(rec) + "\n")
    ok = sum(1 for r in results if r["status"] == 202)
    print(f"loadgen: {len(results)} requests, {ok} accepted (202)", flush=True)


if __name__ == "__main__":
    main()
