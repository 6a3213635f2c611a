"""The aiohttp application: routes and middlewares of the HTTP API."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from callswitch.config import Config
from callswitch.db.pool import Database
from callswitch.db.wakeup import WorkSignal
from callswitch.intake import admin, api, keys
from callswitch.intake.http import cors_middleware, error_middleware, json_response
from callswitch.intake.store import BatchWriter
from callswitch.metrics import Metrics
from callswitch.ops.health import Components, setup_health
from callswitch.reports import web as reports_web
from callswitch.routing.reload import RulesHolder
from callswitch.web import setup_web


@cache
def openapi_document() -> dict[str, Any]:
    text = resources.files("callswitch.intake").joinpath("openapi.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(
        text=json.dumps(openapi_document(), indent=1), content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def create_app(
    config: Config,
    db: Database,
    metrics: Metrics | None = None,
    rules: RulesHolder | None = None,
    work: WorkSignal | None = None,
    demo: bool = False,
    components: Components | None = None,
) -> web.Application:
    app = web.Application(
        client_max_size=config.http.max_body_bytes,
        middlewares=[error_middleware(), cors_middleware(config)],
    )
    app[keys.CONFIG] = config
    app[keys.DB] = db
    app[keys.WRITER] = BatchWriter(db)
    app[keys.METRICS] = metrics or Metrics()
    app[keys.LIMITS] = api.IntakeLimits(config)
    app[keys.TRUSTED_PROXIES] = api.trusted_networks(config)
    app[keys.RULES] = rules
    app[keys.WORK] = work
    app[keys.COMPONENTS] = components
    app.router.add_post("/v1/callbacks", api.create_callback)
    app.router.add_get("/v1/callbacks/{id}", api.get_callback)
    app.router.add_post("/v1/callbacks/{id}/cancel", api.cancel_callback)
    app.router.add_get("/v1/admin/callbacks", admin.list_callbacks)
    app.router.add_get("/v1/admin/callbacks/{id}", admin.get_callback_admin)
    app.router.add_get("/v1/admin/deliveries", admin.list_notification_deliveries)
    app.router.add_post("/v1/admin/deliveries/{id}/retry", admin.retry_notification_delivery)
    reports_web.add_routes(app)
    app.router.add_get("/v1/openapi.json", _openapi)
    app.router.add_get("/healthz", _healthz)
    # CORS preflights are answered by the middleware; these routes only make them resolvable.
    for path in ("/v1/callbacks", "/v1/callbacks/{id}", "/v1/callbacks/{id}/cancel"):
        app.router.add_route("OPTIONS", path, _preflight_fallback)
    setup_web(app, demo=demo)  # the call button, live status stream, and the demo page
    if components is not None:
        setup_health(app)  # /readyz, /metrics
    return app


async def _preflight_fallback(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Allow": "GET, POST, OPTIONS"})
