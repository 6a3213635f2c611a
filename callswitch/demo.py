"""``callswitch demo``: the service on the example configuration, with its own Postgres and PBX.

The PBX is the AMI simulator (:mod:`callswitch.testing.pbx`): posted requests go through
every state to call detail records without a real Asterisk.

When the configuration names no database, a private cluster is kept under ``./var/pg``
(created on first run, reused afterwards) and stopped when the demo ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import asyncpg

from callswitch.config import AmiConfig, Config
from callswitch.daemon import serve
from callswitch.pgcluster import ClusterError, LocalCluster
from callswitch.routing.reload import RulesHolder
from callswitch.testing.pbx import PbxSimulator, lab_behaviour

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


def demo_behaviour(agent_numbers: set[str]) -> Callable[[str], str]:
    """Every member of the routing file answers and accepts; every visitor answers, talks, hangs up,
    except the lab plan's visitor numbers (+1773555020X.. see callswitch.testing.pbx), which keep
    their scripted behaviour so the demo can show a busy or unreachable visitor too."""

    def behaviour(number: str) -> str:
        if number in agent_numbers:
            return "accept"
        digits = number.lstrip("+")
        if len(digits) == 11 and digits.startswith("177355502"):
            return lab_behaviour(number)
        return "hangs_up"

    return behaviour


async def _serve_demo(config: Config, server_dsn: str | None, rules: RulesHolder | None) -> int:
    if server_dsn is not None:
        await _ensure_database(server_dsn)
    sim: PbxSimulator | None = None
    if rules is not None and rules.loaded:
        # The simulated PBX stands in for Asterisk, replaying real Asterisk 22 call flows.
        agents = {m.dial.split("/")[-1] for d in rules.rules.destinations.values() for m in d.members}
        sim = PbxSimulator(users={"callswitch": "demo-secret"}, time_scale=0.5,
                           default_behaviour=demo_behaviour(agents))
        await sim.start()
        server = AmiConfig(name="simulated-pbx", host="127.0.0.1", port=sim.port, username="callswitch",
                           secret="demo-secret")  # noqa: S106 - the simulator's own login
        config = replace(config, ami=server, ami_servers=(server,))
    print(_banner(config), flush=True)
    try:
        return await serve(config, rules=rules, demo=True)
    finally:
        if sim is not None:
            await sim.stop()


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
