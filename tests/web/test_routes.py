"""The widget script, the public site settings and the demo page."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from callswitch.web.routes import WIDGET, accepts_gzip, build_widget
from tests.web.conftest import SITE_KEY, Daemon, DaemonFactory

WIDGET_URL = "/widget/v1/callswitch.js"


async def test_widget_script_is_javascript_with_long_cache_and_etag(daemon: Daemon) -> None:
    resp = await daemon.client.get(WIDGET_URL, headers={"Accept-Encoding": "identity"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert resp.headers["Cache-Control"] == "public, max-age=86400, stale-while-revalidate=604800"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Content-Encoding" not in resp.headers
    body = await resp.text()
    version = daemon.server.app[WIDGET].version
    assert resp.headers["ETag"] == f'"{version}"'
    assert "__CALLSWITCH" not in body  # stylesheet and version filled in
    assert f'var VERSION = "{version}"' in body and ".cs-launch{" in body


async def test_widget_script_gzip_revalidation_and_immutable_version(daemon: Daemon) -> None:
    asset = daemon.server.app[WIDGET]
    resp = await daemon.client.get(WIDGET_URL, headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in resp.headers["Vary"]
    assert gzip.decompress(await resp.read()) == asset.body
    resp = await daemon.client.get(WIDGET_URL, headers={"If-None-Match": asset.etag})
    assert resp.status == 304 and resp.headers["ETag"] == asset.etag
    resp = await daemon.client.get(f"{WIDGET_URL}?v={asset.version}")
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    resp = await daemon.client.head(WIDGET_URL)
    assert resp.status == 200


def test_widget_is_small() -> None:
    asset = build_widget()
    assert len(asset.gzipped) < 15 * 1024, f"widget is {len(asset.gzipped)} bytes gzipped"


@pytest.mark.parametrize(("header", "expected"), [
    ("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False), ("identity", False), ("", False),
])
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_widget_script_parses(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = tmp_path / "callswitch.js"
    script.write_bytes(build_widget().body)
    result = subprocess.run(["node", "--check", str(script)], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()


async def test_config_endpoint_serves_public_site_settings(daemon: Daemon) -> None:
    resp = await daemon.client.get(f"/widget/v1/config?site_key={SITE_KEY}", headers={"Origin": daemon.url})
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    assert resp.headers["Access-Control-Allow-Origin"] == daemon.url
    data = await resp.json()
    assert data == {
        "site_key": SITE_KEY, "name": "Example Shop", "default_region": "US", "calling_code": 1,
        "example_phone": "(201) 555-0123", "allowed_countries": ["US", "CA"], "require_consent": False,
        "time_zone": "America/Chicago", "max_preferred_days": 14,
    }
    resp = await daemon.client.get("/widget/v1/config?site_key=pk_web_consent")
    data = await resp.json()
    assert (data["default_region"], data["calling_code"], data["require_consent"]) == ("DE", 49, True)
    assert "allowed_origins" not in data and "api_key" not in data


async def test_config_endpoint_errors(daemon: Daemon) -> None:
    resp = await daemon.client.get("/widget/v1/config")
    assert (resp.status, (await resp.json())["error"]) == (400, "missing_site_key")
    resp = await daemon.client.get("/widget/v1/config?site_key=pk_nope")
    assert (resp.status, (await resp.json())["error"]) == (404, "unknown_site_key")


async def test_demo_page(daemon: Daemon) -> None:
    resp = await daemon.client.get("/demo/", headers={"Host": f"127.0.0.1:{daemon.port}"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    page = await resp.text()
    assert f'<script src="/widget/v1/callswitch.js" data-site-key="{SITE_KEY}" async></script>' in page
    assert "<noscript>" in page and 'action="/v1/callbacks"' in page
    assert "is not in" not in page  # this origin is allowed
    resp = await daemon.client.get("/demo/", headers={"Host": "elsewhere.example"})
    assert "is not in" in await resp.text()
    resp = await daemon.client.get("/demo", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/demo/"
    resp = await daemon.client.get("/demo/?site=consent")
    assert 'name="consent"' in await resp.text()
    resp = await daemon.client.get("/demo/thanks?callback_id=<b>x</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in await resp.text()


async def test_demo_page_only_when_asked(make_daemon: DaemonFactory) -> None:
    daemon = await make_daemon(demo=False)
    assert (await daemon.client.get("/demo/")).status == 404
    assert (await daemon.client.get(WIDGET_URL)).status == 200


async def test_setup_web_twice_is_harmless(daemon: Daemon) -> None:
    from aiohttp import web

    from callswitch.intake.app import create_app
    from callswitch.web import setup_web

    app = create_app(daemon.config, daemon.db)
    setup_web(app)
    setup_web(app)
    setup_web(app, demo=True)
    paths = [r.resource.canonical for r in app.router.routes() if isinstance(r.resource, web.Resource)]
    assert paths.count(WIDGET_URL) == 2  # GET and HEAD
    assert "/demo/" in paths
