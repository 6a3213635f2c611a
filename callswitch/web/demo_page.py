"""``GET /demo/``: an example shop page with the widget, for trying the whole flow locally.

Only registered by ``setup_web(app, demo=True)`` (``callswitch demo``). The page picks the
site whose ``allowed_origins`` contain the page's own origin (``?site=<id>`` chooses
another) and embeds the script exactly as a customer's site would. Without JavaScript, a
``<noscript>`` form posts to ``/v1/callbacks`` directly.
"""

from __future__ import annotations

import html

from aiohttp import web

from callswitch.config import Config, SiteConfig
from callswitch.intake import keys

_STYLE = """
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f1f1f;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:1rem 1.5rem}header p{margin:0;color:#c9d3de}
main{max-width:52rem;margin:0 auto;padding:1.5rem}
.card{background:#fff;border-radius:12px;padding:1.25rem 1.5rem;margin:0 0 1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.price{font-size:1.5rem;font-weight:700}
.talk{min-height:44px;padding:.55rem 1.1rem;border:2px solid #0b57d0;border-radius:8px;background:#fff;color:#0b57d0;
font:inherit;font-weight:600;cursor:pointer}
pre{overflow:auto;background:#f1f3f4;padding:.75rem;border-radius:8px;font-size:.85rem}
#log{font:13px/1.4 ui-monospace,monospace;max-height:14rem;overflow:auto;padding-left:1.5rem}
.warn{background:#fff4e5;border-left:4px solid #b36200;padding:.75rem 1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input:not([type=checkbox]){width:100%;max-width:22rem;min-height:44px;padding:.5rem;box-sizing:border-box;font:inherit}
"""


def _site_for(config: Config, origin: str, wanted: str | None) -> tuple[SiteConfig | None, bool]:
    """The site to demonstrate and whether the page's origin is allowed for it."""
    if wanted and wanted in config.sites:
        site = config.sites[wanted]
        return site, origin in site.allowed_origins
    for site in config.sites.values():
        if origin in site.allowed_origins:
            return site, True
    first = next(iter(config.sites.values()), None)
    return first, False


def render_demo(config: Config, origin: str, wanted: str | None = None) -> str:
    site, allowed = _site_for(config, origin, wanted)
    e = html.escape
    if site is None:
        body = '<div class="card warn"><p>No site is configured: add one under <code>sites:</code>.</p></div>'
        return _page("callswitch demo", body)
    snippet = (f'<script src="{config.http.public_url}/widget/v1/callswitch.js"\n'
               f'        data-site-key="{site.site_key}" async></script>')
    warning = ""
    if not allowed:
        others = ", ".join(site.allowed_origins) or "(none)"
        warning = (f'<div class="card warn" role="note"><p>This page\'s origin <code>{e(origin)}</code> is not in '
                   f'<code>sites.{e(site.id)}.allowed_origins</code>, so the service will refuse its requests. '
                   f"Open the demo from one of: {e(others)}.</p></div>")
    consent = ""
    if site.require_consent:
        consent = ('<p><input type="checkbox" id="nj-consent" name="consent" value="on" required> '
                   '<label for="nj-consent" style="display:inline">I agree to be called back at this number.</label>'
                   "</p>")
    body = f"""
{warning}
<section class="card" aria-labelledby="product">
  <h2 id="product">Widget 3000</h2>
  <p>The best widget we have ever made. Questions before you buy? We call you back within minutes.</p>
  <p class="price">$129</p>
  <p><button type="button" class="talk" data-callswitch-open>Talk to an expert</button></p>
  <p>Or use the <strong>Call me back</strong> button in the corner. Both open the same dialog.</p>
</section>
<noscript>
  <section class="card" aria-labelledby="nojs">
    <h2 id="nojs">Request a call back</h2>
    <p>JavaScript is off, so this plain form posts straight to callswitch.</p>
    <form method="post" action="/v1/callbacks">
      <input type="hidden" name="site_key" value="{e(site.site_key)}">
      <input type="hidden" name="page_url" value="{e(origin)}/demo/">
      <label for="nj-name">Your name</label>
      <input id="nj-name" name="name" autocomplete="name" required maxlength="100">
      <label for="nj-phone">Phone number</label>
      <input id="nj-phone" name="phone" type="tel" autocomplete="tel" required maxlength="40">
      {consent}
      <p><button type="submit" class="talk">Call me</button></p>
    </form>
  </section>
</noscript>
<section class="card" aria-labelledby="how">
  <h2 id="how">How this page embeds callswitch</h2>
  <p>Site <code>{e(site.id)}</code> ({e(site.name)}). One tag, anywhere in the page:</p>
  <pre><code>{e(snippet)}</code></pre>
  <p>The widget reports what happens as DOM events; this page lists them (your analytics can do the same):</p>
  <ol id="log" aria-label="Widget events"></ol>
  <p>No dialer running? Move a request along by hand, e.g.
  <code>UPDATE callback_requests SET state='dialing_agent' WHERE id='…'; NOTIFY callswitch_status, '…';</code></p>
</section>
<script>
["ready","open","close","submit","accepted","status","cancel","error"].forEach(function (n) {{
  document.addEventListener("callswitch:" + n, function (ev) {{
    var li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + "  callswitch:" + n + "  " + JSON.stringify(ev.detail);
    document.getElementById("log").appendChild(li);
  }});
}});
</script>
<script src="/widget/v1/callswitch.js" data-site-key="{e(site.site_key)}" async></script>
"""
    return _page(f"{site.name} - callswitch demo", body)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><header><h1>{html.escape(title)}</h1><p>An example page for trying callswitch.</p></header>'
        f"<main>{body}</main></body></html>"
    )


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def demo(request: web.Request) -> web.Response:
    config: Config = request.app[keys.CONFIG]
    page = render_demo(config, _origin(request), request.query.get("site"))
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})


async def demo_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/demo/")


async def thanks(request: web.Request) -> web.Response:
    callback_id = request.query.get("callback_id", "")
    e = html.escape
    body = ('<section class="card"><h2>Thank you</h2><p>We have your request and will call you back.</p>'
            + (f'<p>Request <code id="callback-id">{e(callback_id)}</code>: '
               f'<a href="/v1/callbacks/{e(callback_id)}">its status</a>.</p>' if callback_id else "")
            + '<p><a href="/demo/">Back to the shop</a></p></section>')
    return web.Response(text=_page("Thank you - callswitch demo", body), content_type="text/html",
                        headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/demo", demo_redirect)
    app.router.add_get("/demo/", demo)
    app.router.add_get("/demo/thanks", thanks)
