"""Call detail records: legs written per second, batched vs one INSERT per leg, same database, same run.

* per row: one INSERT statement per leg, each its own transaction (a round trip and a commit per leg);
* batched: ``INSERT ... SELECT * FROM unnest($1::uuid[], ...)`` with --batch legs per statement and transaction;
* also reported: per row inside one transaction (round trips without commits) and COPY, to show where the
  time goes.

Postgres: $CALLSWITCH_BENCH_DSN, else $CALLSWITCH_TEST_DSN (server-level DSNs; a fresh database is created and
dropped), else a private durable cluster is started for the run.

Last line: {"bench": "records", "batched_legs_per_s": ..., "per_row_legs_per_s": ..., "ratio": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import postgres_server, scratch_database  # noqa: E402

from callswitch.db.migrate import migrate  # noqa: E402

COLUMNS = ("request_id", "attempt", "leg", "destination", "member", "number_dialled", "trunk", "originated_at",
           "answered_at", "ended_at", "disposition", "hangup_cause", "billable_seconds", "leg_id")
TYPES = ("uuid", "int", "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "timestamptz", "text",
         "int", "int", "text")
PER_ROW_SQL = (f"INSERT INTO call_legs ({', '.join(COLUMNS)}) "
               f"VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))})")
BATCH_SQL = (f"INSERT INTO call_legs ({', '.join(COLUMNS)}) SELECT * FROM unnest("
             + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(TYPES)) + ")")
DISPOSITIONS = ("accepted", "answered_elsewhere", "no_answer", "busy", "declined", "answered")


def make_legs(request_ids: list[uuid.UUID], n: int, rng: random.Random) -> list[tuple[Any, ...]]:
    base = datetime(2024, 5, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        start = base + timedelta(seconds=i * 3)
        answered = start + timedelta(seconds=rng.randint(2, 20)) if rng.random() < 0.6 else None
        ended = (answered or start) + timedelta(seconds=rng.randint(1, 300))
        out.append((request_ids[i % len(request_ids)], 1 + i % 2, "agent" if i % 3 else "customer", "store-7",
                    f"+4930{rng.randint(100000, 999999)}", f"+4917{rng.randint(10**7, 10**8 - 1)}", "carrier",
                    start, answered, ended, rng.choice(DISPOSITIONS), 16,
                    int((ended - answered).total_seconds()) if answered else 0, uuid.uuid4().hex))
    return out


async def seed_requests(conn: asyncpg.Connection, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    await conn.execute(
        """INSERT INTO callback_requests (id, site, visitor_name, phone_given, phone_e164, phone_country,
               request_fingerprint, state, finished_at, outcome)
           SELECT id, 'shop', 'Bench', '+49170' || i, '+49170' || i, 'DE', 'x', 'completed', now(), 'connected'
           FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, i)""", ids)
    return ids


async def per_row(conn: asyncpg.Connection, legs: list[tuple[Any, ...]], in_transaction: bool) -> float:
    t0 = time.perf_counter()
    if in_transaction:
        async with conn.transaction():
            for leg in legs:
                await conn.execute(PER_ROW_SQL, *leg)
    else:
        for leg in legs:
            await conn.execute(PER_ROW_SQL, *leg)
    return len(legs) / (time.perf_counter() - t0)


async def batched(conn: asyncpg.Connection, legs: list[tuple[Any, ...]], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(legs), batch):
        chunk = legs[i : i + batch]
        await conn.execute(BATCH_SQL, *[list(col) for col in zip(*chunk, strict=True)])
    return len(legs) / (time.perf_counter() - t0)


async def copy(conn: asyncpg.Connection, legs: list[tuple[Any, ...]], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(legs), batch):
        await conn.copy_records_to_table("call_legs", records=legs[i : i + batch], columns=list(COLUMNS))
    return len(legs) / (time.perf_counter() - t0)


async def main_async(args: argparse.Namespace, server_dsn: str) -> dict[str, object]:
    dsn, drop_database = await scratch_database(server_dsn)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            rng = random.Random(5)
            ids = await seed_requests(conn, 1000)
            # warm-up (plans, caches), then measure
            await per_row(conn, make_legs(ids, 200, rng), False)
            await batched(conn, make_legs(ids, 2000, rng), args.batch)
            row_rate = await per_row(conn, make_legs(ids, args.per_row, rng), False)
            row_tx_rate = await per_row(conn, make_legs(ids, args.per_row, rng), True)
            batch_rate = await batched(conn, make_legs(ids, args.batched, rng), args.batch)
            copy_rate = await copy(conn, make_legs(ids, args.batched, rng), args.batch)
            total = await conn.fetchval("SELECT count(*) FROM call_legs")
        finally:
            await conn.close()
    finally:
        await drop_database()
    print(f"one INSERT per leg, own transaction: {row_rate:10.0f} legs/s ({args.per_row} legs)")
    print(f"one INSERT per leg, one transaction: {row_tx_rate:10.0f} legs/s ({args.per_row} legs)")
    print(f"unnest INSERT, {args.batch} legs a batch:  {batch_rate:10.0f} legs/s ({args.batched} legs)")
    print(f"COPY, {args.batch} legs a batch:           {copy_rate:10.0f} legs/s ({args.batched} legs)")
    print(f"{total} legs written in all")
    return {
        "bench": "records",
        "batched_legs_per_s": round(batch_rate, 1),
        "per_row_legs_per_s": round(row_rate, 1),
        "ratio": round(batch_rate / row_rate, 2),
        "per_row_one_tx_legs_per_s": round(row_tx_rate, 1),
        "copy_legs_per_s": round(copy_rate, 1),
        "batch": args.batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-row", type=int, default=3000, help="legs written one INSERT at a time")
    parser.add_argument("--batched", type=int, default=50000, help="legs written in batches")
    parser.add_argument("--batch", type=int, default=500, help="legs per batch")
    args = parser.parse_args()
    with postgres_server("CALLSWITCH_BENCH_DSN", "CALLSWITCH_TEST_DSN") as server_dsn:
        result = asyncio.run(main_async(args, server_dsn))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
