"""``callswitch demo``: the service on the example configuration, with its own Postgres.

When the configuration names no database, a private cluster is kept under ``./var/pg``
(created on first run, reused afterwards) and stopped when the demo ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from pathlib import Path

import asyncpg

from callswitch.config import Config
from callswitch.daemon import serve
from callswitch.pgcluster import ClusterError, LocalCluster
from callswitch.routing.reload import RulesHolder

DEMO_DB = "callswitch_demo"


async def _ensure_database(server_dsn: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DB):
            await conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
    finally:
        await conn.close()


def _banner(config: Config) -> str:
    site = next(iter(config.sites.values()))
    origin = site.allowed_origins[0] if site.allowed_origins else config.http.public_url
    body = {"site_key": site.site_key, "name": "Ada Lovelace", "phone": "+1 312 555 0142",
            "page_url": f"{origin}/pricing"}
    url = f"{config.http.public_url}/v1/callbacks"
    return "\n".join([
        "",
        f"callswitch demo is running: POST callback requests to {url}",
        "",
        f"  curl -i {url} -H 'Content-Type: application/json' -H 'Origin: {origin}' \\",
        f"       -d '{json.dumps(body)}'",
        "",
        f"  then: curl {config.http.public_url}/v1/callbacks/<id>   (API: {config.http.public_url}/v1/openapi.json)",
        "  Stop with Ctrl-C.",
        "",
    ])


async def _serve_demo(config: Config, server_dsn: str | None, rules: RulesHolder | None) -> int:
    if server_dsn is not None:
        await _ensure_database(server_dsn)
    print(_banner(config), flush=True)
    return await serve(config, rules=rules)


def run_demo(config: Config, var: Path, rules: RulesHolder | None = None) -> int:
    if config.database.dsn:
        return asyncio.run(_serve_demo(config, None, rules))
    cluster = LocalCluster(var.resolve() / "pg", durable=True)
    with contextlib.suppress(ClusterError):
        cluster.stop("immediate")  # a cluster left running by a killed demo
    try:
        cluster.start()
    except ClusterError as exc:
        print(f"callswitch demo: cannot start a private Postgres: {exc}")
        return 1
    config = replace(config, database=replace(config.database, dsn=cluster.dsn(DEMO_DB)))
    try:
        return asyncio.run(_serve_demo(config, cluster.dsn(), rules))
    finally:
        cluster.stop()
