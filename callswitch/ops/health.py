"""``/readyz`` and ``/metrics``: what ops teams look at.

``/healthz`` says the process answers. ``/readyz`` checks each dependency separately —
Postgres reachable, schema current, routing rules loaded, each Asterisk logged in — and answers
200 when requests can be accepted durably (Postgres, schema, rules), with ``"degraded": true``
while an Asterisk server is down (requests are stored and wait), and 503 otherwise or while
the daemon is draining on SIGTERM. ``/metrics`` is Prometheus text; only addresses in
``http.metrics_allow`` (or a caller with the admin token) may read it.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from callswitch.db.migrate import current_version, latest_version
from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.intake import keys
from callswitch.intake.http import ApiError, json_response
from callswitch.metrics import Metrics
from callswitch.routing.reload import RulesHolder

if TYPE_CHECKING:
    from callswitch.dialer.worker import Dialer


@dataclass
class Components:
    """The parts of the running daemon that health checks look at (filled in by the daemon)."""

    db: Database
    metrics: Metrics
    rules: RulesHolder | None = None
    dialer: Dialer | None = None
    draining: bool = False
    schema_current: bool = False
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


async def check_database(c: Components) -> tuple[Check, Check]:
    """(database, schema) checks; one round trip, two when the schema is not yet known to be current."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(2.0), c.db.acquire() as conn:
            await conn.fetchval("SELECT 1")
            latency = time.perf_counter() - started
            if not c.schema_current:
                version, latest = await current_version(conn), latest_version()
                c.schema_current = version == latest
                schema = Check(c.schema_current, f"version {version}, this release needs {latest}")
            else:
                schema = Check(True, f"version {latest_version()}")
    except Exception as exc:
        if not is_unavailable(exc) and not isinstance(exc, TimeoutError):
            raise
        c.metrics.db_up.set(0)
        return Check(False, f"unreachable: {exc or type(exc).__name__}"), Check(False, "unknown (no database)")
    c.metrics.db_latency.observe(latency)
    c.metrics.db_up.set(1)
    return Check(True, f"reachable ({latency * 1000:.1f} ms)", {"latency_ms": round(latency * 1000, 2)}), schema


def check_rules(c: Components) -> Check:
    if c.rules is None:
        return Check(True, "no routing file configured: requests are stored but not dialled")
    status = c.rules.status()
    if not c.rules.loaded:
        return Check(False, f"not loaded: {status.last_error}")
    detail = f"generation {status.generation} from {c.rules.path}"
    if status.last_error:
        detail += f"; the last reload failed and the previous rules stay in force: {status.last_error}"
    return Check(True, detail, {"generation": status.generation, "last_reload_failed": bool(status.last_error)})


def check_asterisk(c: Components) -> dict[str, Check]:
    if c.dialer is None:
        return {"dialer": Check(c.rules is None, "not started" if c.rules is not None else "disabled (no rules)")}
    out = {}
    for client in c.dialer.clients:
        name = client.server.name
        if client.connected:
            out[f"asterisk:{name}"] = Check(True, f"logged in (Asterisk {client.version or '?'})",
                                            {"reconnects": client.reconnects})
        else:
            out[f"asterisk:{name}"] = Check(False, f"{client.state}: {client.last_error or 'connecting'}",
                                            {"reconnects": client.reconnects})
    return out


async def readyz(request: web.Request) -> web.Response:
    c = request.app[keys.COMPONENTS]
    assert c is not None
    database, schema = await check_database(c)
    checks: dict[str, Check] = {"database": database, "schema": schema, "rules": check_rules(c)}
    asterisk = check_asterisk(c)
    checks.update(asterisk)
    essential = database.ok and schema.ok and checks["rules"].ok
    degraded = not all(a.ok for a in asterisk.values())
    ready = essential and not c.draining
    body = {
        "ready": ready,
        "degraded": degraded,
        "draining": c.draining,
        "checks": {name: {"ok": ch.ok, "detail": ch.detail, **ch.data} for name, ch in checks.items()},
    }
    return json_response(body, 200 if ready else 503, headers={"Cache-Control": "no-store"})


def _metrics_allowed(request: web.Request) -> bool:
    config = request.app[keys.CONFIG]
    token = config.admin_token
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip().encode("utf-8", "surrogateescape")  # non-UTF-8 bytes: refused, not a 500
    if token and auth.lower().startswith("bearer ") and hmac.compare_digest(given, token.encode()):
        return True
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net, strict=False) for net in config.http.metrics_allow)


async def refresh_gauges(c: Components) -> None:
    m = c.metrics
    try:
        async with asyncio.timeout(2.0), c.db.acquire() as conn:
            started = time.perf_counter()
            rows = await conn.fetch(Q.queue_depth)
            m.db_latency.observe(time.perf_counter() - started)
            m.db_up.set(1)
        m.queue_requests.clear()
        for row in rows:
            m.queue_requests.labels(state=row["state"]).set(row["n"])
    except Exception as exc:
        if not is_unavailable(exc) and not isinstance(exc, TimeoutError):
            raise
        m.db_up.set(0)
    if c.dialer is not None:
        m.calls_in_progress.set(c.dialer.active_calls)
        now = time.monotonic()
        for client in c.dialer.clients:
            name = client.server.name
            m.ami_connected.labels(server=name).set(1 if client.connected else 0)
            m.ami_reconnects.labels(server=name).set(client.reconnects)
            if client.last_event_at is not None:
                m.ami_event_age.labels(server=name).set(round(now - client.last_event_at, 3))
    if c.rules is not None:
        status = c.rules.status()
        m.rules_generation.set(status.generation)
        m.rules_last_reload_failed.set(1 if status.last_error else 0)


async def metrics(request: web.Request) -> web.Response:
    if not _metrics_allowed(request):
        raise ApiError(403, "forbidden",
                       "metrics are readable from http.metrics_allow addresses or with the admin token")
    c = request.app[keys.COMPONENTS]
    assert c is not None
    await refresh_gauges(c)
    return web.Response(body=c.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_health(app: web.Application) -> None:
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
