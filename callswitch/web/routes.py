"""Routes of the web widget: the script, its public site settings, the status stream, the demo.

``setup_web(app)`` registers

* ``GET /widget/v1/callswitch.js``: the widget (CSS inlined), gzip when accepted, ``ETag``;
  ``Cache-Control: public, max-age=86400, stale-while-revalidate=604800`` at the stable
  address (a new release reaches visitors within a day), or one year ``immutable`` when
  requested as ``?v=<version>`` (the ``ETag`` without quotes, see ``widget_version``);
* ``GET /widget/v1/config?site_key=pk_...``: the site's public settings (default region,
  calling code, an example number, consent, time zone, how far ahead "call me later" may be);
* ``GET /v1/callbacks/{id}/events``: Server-Sent Events of the public status
  (:mod:`callswitch.web.events`), with one shared LISTEN connection (:mod:`callswitch.web.status`);
* with ``demo=True``: ``GET /demo/`` (an example shop page with the widget and a no-JS form)
  and ``GET /demo/thanks``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

import phonenumbers
from aiohttp import web

from callswitch.config import Config
from callswitch.intake import keys
from callswitch.intake.http import ApiError, json_response
from callswitch.web import demo_page
from callswitch.web.events import BROADCASTER, STREAM_SETTINGS, StreamSettings, callback_events
from callswitch.web.status import StatusBroadcaster

WIDGET_PATH = "/widget/v1/callswitch.js"
CONFIG_PATH = "/widget/v1/config"
EVENTS_PATH = "/v1/callbacks/{id}/events"
STABLE_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
CONFIG_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _static(name: str) -> str:
    return resources.files("callswitch.web").joinpath("static", name).read_text(encoding="utf-8")


def build_widget() -> Asset:
    """The widget script with its stylesheet inlined and its version (a content hash) filled in."""
    js = _static("callswitch.js")
    css = _static("callswitch.css").strip()
    version = hashlib.sha256((js + "\0" + css).encode()).hexdigest()[:16]
    js = js.replace('"__CALLSWITCH_CSS__"', json.dumps(css)).replace("__CALLSWITCH_VERSION__", version)
    body = js.encode()
    return Asset(body, gzip.compress(body, 9, mtime=0), "text/javascript", version)


WIDGET = web.AppKey("widget_asset", Asset)
_PARTS = web.AppKey("web_parts", set)


def accepts_gzip(header: str) -> bool:
    """True if ``Accept-Encoding`` allows gzip (``gzip``, ``*``, not ``;q=0``)."""
    for part in header.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip()
        if not q.startswith("q="):
            return True
        try:
            return float(q[2:]) > 0
        except ValueError:
            return False
    return False


async def widget_script(request: web.Request) -> web.Response:
    asset = request.app[WIDGET]
    headers = {
        "Cache-Control": IMMUTABLE_CACHE if request.query.get("v") == asset.version else STABLE_CACHE,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",  # public file; lets pages use crossorigin=anonymous
    }
    inm = request.headers.get("If-None-Match", "")
    if asset.etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*":
        return web.Response(status=304, headers=headers)
    body = asset.body
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type=asset.content_type, charset="utf-8", headers=headers)


def site_settings(config: Config, site_key: str) -> dict[str, object] | None:
    """What the widget may know about a site: public data only (never the API key or origins)."""
    site = config.site_by_key(site_key)
    if site is None:
        return None
    region = site.phone.default_region
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return {
        "site_key": site.site_key,
        "name": site.name,
        "default_region": region,
        "calling_code": phonenumbers.country_code_for_region(region) or None,
        "example_phone": phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        if example else None,
        "allowed_countries": list(site.phone.allowed_countries),
        "require_consent": site.require_consent,
        "time_zone": site.time_zone,
        "max_preferred_days": site.max_preferred_days,
    }


async def widget_config(request: web.Request) -> web.Response:
    key = request.query.get("site_key", "")
    if not key:
        raise ApiError(400, "missing_site_key", "pass ?site_key=<the site's public key>")
    settings = site_settings(request.app[keys.CONFIG], key)
    if settings is None:
        raise ApiError(404, "unknown_site_key", "unknown site key")
    return json_response(settings, headers={"Cache-Control": CONFIG_CACHE})


async def _preflight_fallback(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Allow": "GET, OPTIONS"})


def setup_web(app: web.Application, *, demo: bool = False, stream: StreamSettings | None = None,
              poll_interval: float | None = None) -> None:
    """Register the widget routes (and the demo page when ``demo``) on an app made by ``create_app``.

    Calling it again is harmless: a later call with ``demo=True`` only adds the demo pages, and
    ``stream`` / ``poll_interval`` given again replace the settings (tests use this).
    """
    parts: set[str] = app.setdefault(_PARTS, set())
    if "widget" not in parts:
        parts.add("widget")
        app[WIDGET] = build_widget()
        app[STREAM_SETTINGS] = stream or StreamSettings()
        app[BROADCASTER] = StatusBroadcaster(app[keys.DB], poll_interval=poll_interval or 5.0)
        app.router.add_get(WIDGET_PATH, widget_script)
        app.router.add_get(CONFIG_PATH, widget_config)
        app.router.add_get(EVENTS_PATH, callback_events)
        app.router.add_route("OPTIONS", EVENTS_PATH, _preflight_fallback)
        app.on_startup.append(_start_broadcaster)
        app.on_shutdown.append(_end_streams)
        app.on_cleanup.append(_stop_broadcaster)
    else:
        if stream is not None:
            app[STREAM_SETTINGS] = stream
        if poll_interval is not None:
            app[BROADCASTER].poll_interval = poll_interval
    if demo and "demo" not in parts:
        parts.add("demo")
        demo_page.add_routes(app)


async def _start_broadcaster(app: web.Application) -> None:
    app[BROADCASTER].start()


async def _end_streams(app: web.Application) -> None:
    app[BROADCASTER].close_streams()


async def _stop_broadcaster(app: web.Application) -> None:
    await app[BROADCASTER].stop()
