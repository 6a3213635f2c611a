"""The widget in headless Chromium (Playwright): the demo page, errors, live status, cancel, no-JS, a11y.

Skipped when /usr/bin/chromium or the playwright package is missing. The dialer is not
involved: its state changes are simulated with an UPDATE plus NOTIFY callswitch_status.
Screenshots of failing tests go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.web.conftest import SITE_KEY, Daemon, axe_source, serve_page

RECORD_EVENTS = """
window.__cs = [];
["ready","open","close","submit","accepted","status","cancel","error"].forEach(function (n) {
  document.addEventListener("callswitch:" + n, function (e) { window.__cs.push([n, e.detail]); });
});
"""
DEEP_ACTIVE = """() => { let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  return a ? (a.id || a.className || a.tagName) : null; }"""


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as pw_expect

    return pw_expect(locator)


async def events(page: Any, name: str) -> list[dict[str, Any]]:
    return [d for n, d in await page.evaluate("window.__cs") if n == name]


async def latest_request(dsn: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT * FROM callback_requests ORDER BY created_at DESC LIMIT 1")
    finally:
        await conn.close()


async def open_demo(page: Any, daemon: Daemon, query: str = "") -> None:
    await page.add_init_script(RECORD_EVENTS)
    await page.goto(f"{daemon.url}/demo/{query}")
    await expect(page.get_by_role("button", name="Call me back")).to_be_visible()


async def test_submit_invalid_then_valid_then_live_status(page: Any, daemon: Daemon) -> None:
    await open_demo(page, daemon, "?utm_source=news&utm_medium=email&utm_campaign=spring")
    await page.goto(f"{daemon.url}/demo/?page=2")  # the second page of the session, no UTM
    await expect(page.get_by_role("button", name="Call me back")).to_be_visible()
    await page.get_by_role("button", name="Call me back").click()
    dialog = page.get_by_role("dialog", name="Request a call back")
    await expect(dialog).to_be_visible()
    assert await page.evaluate(DEEP_ACTIVE) == "cs-name"
    await expect(dialog.get_by_text("Without a country code we read it as United States (+1)")).to_be_visible()

    await dialog.get_by_label("Your name").fill("Ada Lovelace")
    await dialog.get_by_label("Phone number").fill("123")
    await dialog.get_by_role("button", name="Call me").click()
    phone = dialog.get_by_label("Phone number")
    await expect(phone).to_have_attribute("aria-invalid", "true")
    error = page.locator("#cs-phone-err")
    await expect(error).to_be_visible()
    await expect(error).to_have_text("Not a valid phone number for its country")
    assert await page.evaluate(DEEP_ACTIVE) == "cs-phone"  # focus moved to the field to fix
    assert "cs-phone-err" in (await phone.get_attribute("aria-describedby") or "")
    errors = await events(page, "error")
    assert errors[-1]["status"] == 422 and errors[-1]["fields"] == ["phone"]

    await phone.fill("(312) 555-0142")
    await dialog.get_by_role("button", name="Call me").click()
    message = page.locator(".cs-msg")
    await expect(message).to_have_text("We're calling our team now.")
    await expect(error).to_be_hidden()
    cancel = dialog.get_by_role("button", name="Cancel my request")
    await expect(cancel).to_be_visible()
    await expect(page.locator(".cs-sr[role=status]")).to_have_text("We're calling our team now.")

    row = await latest_request(daemon.dsn)
    assert row["visitor_name"] == "Ada Lovelace" and row["phone_e164"] == "+13125550142"
    assert row["page_url"] == f"{daemon.url}/demo/?page=2"
    assert list(row["pages_visited"]) == [
        f"{daemon.url}/demo/?utm_source=news&utm_medium=email&utm_campaign=spring", f"{daemon.url}/demo/?page=2"]
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == ("news", "email", "spring")
    assert row["language"] == "en" and row["idempotency_key"]
    rid = str(row["id"])
    assert (await events(page, "accepted"))[0] == {"id": rid, "state": "queued", "duplicate": False}

    # the dialer (simulated) moves the request along; each change arrives over SSE
    for state, text in [("dialing_agent", "We're calling our team now."),
                        ("accepted", "Connecting you: your phone will ring."),
                        ("connected", "You're connected.")]:
        await daemon.set_state(rid, state)
        await page.wait_for_function(
            "s => window.__cs.some(e => e[0] === 'status' && e[1].state === s)", arg=state, timeout=5000)
        await expect(message).to_have_text(text)
    await expect(cancel).to_be_hidden()
    states = [s["state"] for s in await events(page, "status")]
    assert states == ["queued", "dialing_agent", "accepted", "connected"]
    await daemon.set_state(rid, "completed", outcome="completed")
    await expect(message).to_have_text("Thank you for your call.", timeout=5000)
    await expect(dialog.get_by_role("button", name="New request")).to_be_visible()
    assert "Ada" not in json.dumps(await page.evaluate("window.__cs"))  # no personal data in the events


async def test_cancel_flow(page: Any, daemon: Daemon) -> None:
    await open_demo(page, daemon)
    await page.get_by_role("button", name="Talk to an expert").click()  # a trigger of the page's own
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Your name").fill("Grace Hopper")
    await dialog.get_by_label("Phone number").fill("+1 312 555 0199")
    await dialog.get_by_label("Phone number").press("Enter")
    cancel = dialog.get_by_role("button", name="Cancel my request")
    await expect(cancel).to_be_visible()
    assert await page.evaluate(DEEP_ACTIVE) == "cs-btn cs-cancel"
    await cancel.click()
    await expect(page.locator(".cs-msg")).to_have_text("Cancelled.")
    await expect(cancel).to_be_hidden()
    new = dialog.get_by_role("button", name="New request")
    await expect(new).to_be_visible()
    assert await page.evaluate(DEEP_ACTIVE) == "cs-btn cs-new"  # focus did not fall to the page
    row = await latest_request(daemon.dsn)
    assert (row["state"], row["outcome"]) == ("cancelled", "cancelled")
    assert (await events(page, "cancel")) == [{"id": str(row["id"])}]
    await new.click()
    await expect(dialog.get_by_label("Your name")).to_be_focused()


async def test_keyboard_focus_trap_escape_and_focus_return(page: Any, daemon: Daemon) -> None:
    await open_demo(page, daemon)
    launcher = page.get_by_role("button", name="Call me back")
    await launcher.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    seen = []
    for _ in range(24):  # the date-time input has several parts, each a Tab stop
        await page.keyboard.press("Tab")
        seen.append(await page.evaluate(DEEP_ACTIVE))
    # name -> phone -> when -> submit -> close (x) -> name ...: focus never leaves the dialog
    assert set(seen) <= {"cs-name", "cs-phone", "cs-when", "cs-btn cs-pri", "cs-x"}, seen
    assert seen.count("cs-x") >= 2 and seen.count("cs-name") >= 2, seen
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert await page.evaluate(DEEP_ACTIVE) == "cs-launch"
    assert [n for n, _ in await page.evaluate("window.__cs")] == ["ready", "open", "close"]


@pytest.mark.parametrize("width", [320, 375])
async def test_mobile_width(new_context: Callable[..., Awaitable[Any]], daemon: Daemon, width: int) -> None:
    ctx = await new_context(viewport={"width": width, "height": 640}, is_mobile=True, has_touch=True)
    page = await ctx.new_page()
    await open_demo(page, daemon)
    await page.get_by_role("button", name="Call me back").click()
    box = await page.locator("dialog").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    for label in ("Your name", "Phone number"):
        field = await page.get_by_label(label).bounding_box()
        assert field is not None and field["x"] >= 0 and field["x"] + field["width"] <= width
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


async def test_no_javascript_form(new_context: Callable[..., Awaitable[Any]], daemon: Daemon) -> None:
    ctx = await new_context(java_script_enabled=False)
    page = await ctx.new_page()
    await page.goto(f"{daemon.url}/demo/")
    form = page.locator("noscript form, form[action='/v1/callbacks']")
    await expect(page.get_by_role("heading", name="Request a call back")).to_be_visible()
    await page.get_by_label("Your name").fill("Alan Turing")
    await page.get_by_label("Phone number").fill("312-555-0177")
    async with page.expect_navigation():
        await form.get_by_role("button", name="Call me").click()
    assert page.url.startswith(f"http://localhost:{daemon.port}/demo/thanks?callback_id=")
    row = await latest_request(daemon.dsn)
    assert (row["visitor_name"], row["phone_e164"], row["state"]) == ("Alan Turing", "+13125550177", "queued")
    await expect(page.locator("#callback-id")).to_have_text(str(row["id"]))


async def run_axe(page: Any) -> list[dict[str, Any]]:
    source = axe_source()
    if source is None:
        pytest.skip("axe-core is not available (pip install axe-playwright-python)")
    await page.evaluate(source)
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


async def test_accessibility_of_the_open_widget(page: Any, daemon: Daemon) -> None:
    await open_demo(page, daemon)
    await page.get_by_role("button", name="Call me back").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await expect(page.locator("#cs-phone-hint")).to_be_visible()
    bad = await run_axe(page)
    assert not bad, json.dumps([(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad], indent=1)
    # with field errors shown
    await page.get_by_role("dialog").get_by_role("button", name="Call me").click()
    await expect(page.locator("#cs-name-err")).to_be_visible()
    bad = await run_axe(page)
    assert not bad, json.dumps([(v["id"], v["help"]) for v in bad])
    # the status view
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_label("Phone number").fill("312 555 0142")
    await page.get_by_role("dialog").get_by_role("button", name="Call me").click()
    await expect(page.locator(".cs-msg")).to_have_text("We're calling our team now.")
    bad = await run_axe(page)
    assert not bad, json.dumps([(v["id"], v["help"]) for v in bad])


CUSTOMER_PAGE = """<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Kunde</title></head>
<body><h1>Ein Shop auf einem anderen Origin</h1>
<script>
window.CallswitchConfig = {texts: {title: "Rückruf anfordern", submitText: "Anrufen"}, accentColor: "#7a1f5c",
  attributes: {product: "widget-3000"}};
</script>
<script>{record}</script>
<script src="{api}/widget/v1/callswitch.js" data-site-key="{key}" data-button-text="Rückruf"
  data-attr-postal_code="60601" data-position="left" async></script>
</body></html>"""


async def test_embedded_on_another_origin_with_options(page: Any, daemon: Daemon) -> None:
    html = (CUSTOMER_PAGE.replace("{api}", daemon.url).replace("{key}", SITE_KEY)
            .replace("{record}", RECORD_EVENTS))
    runner = await serve_page(html, daemon.other_port)
    try:
        await page.goto(f"http://127.0.0.1:{daemon.other_port}/produkt?utm_source=ads")
        launcher = page.get_by_role("button", name="Rückruf")
        await launcher.click()
        dialog = page.get_by_role("dialog", name="Rückruf anfordern")
        await expect(dialog).to_be_visible()
        colour = await page.locator(".cs-pri").evaluate("el => getComputedStyle(el).backgroundColor")
        assert colour == "rgb(122, 31, 92)"
        box = await launcher.bounding_box()
        assert box is not None and box["x"] < 100  # data-position="left"
        await dialog.get_by_label("Your name").fill("Ada")
        await dialog.get_by_label("Phone number").fill("312 555 0142")
        tomorrow = (datetime.now() + timedelta(days=1)).replace(hour=10, minute=30, second=0, microsecond=0)
        await dialog.get_by_label("Call me later (optional)").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
        await dialog.get_by_role("button", name="Anrufen").click()
        await expect(page.locator(".cs-msg")).to_have_text("We'll call you at the time shown.")
        await expect(page.locator(".cs-when-t")).to_contain_text("10:30")
        row = await latest_request(daemon.dsn)
        assert row["state"] == "scheduled" and row["preferred_at"] is not None
        assert row["attributes"] and "widget-3000" in row["attributes"] and "60601" in row["attributes"]
        assert (row["product"], row["postal_code"], row["utm_source"], row["language"]) == (
            "widget-3000", "60601", "ads", "de")
        await daemon.set_state(str(row["id"]), "dialing_agent")  # cross-origin EventSource
        await expect(page.locator(".cs-msg")).to_have_text("We're calling our team now.", timeout=5000)
    finally:
        await runner.cleanup()


async def test_polls_when_event_source_fails(page: Any, daemon: Daemon) -> None:
    await page.route("**/events", lambda route: asyncio.ensure_future(route.abort()))
    await open_demo(page, daemon)
    await page.get_by_role("button", name="Call me back").click()
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_label("Phone number").fill("312 555 0142")
    await page.get_by_role("dialog").get_by_role("button", name="Call me").click()
    await expect(page.locator(".cs-msg")).to_have_text("We're calling our team now.")
    rid = str((await latest_request(daemon.dsn))["id"])
    await daemon.set_state(rid, "accepted", notify=False)
    await expect(page.locator(".cs-msg")).to_have_text("Connecting you: your phone will ring.", timeout=8000)


async def test_a_request_follows_the_visitor_to_the_next_page(page: Any, daemon: Daemon) -> None:
    await open_demo(page, daemon)
    await page.get_by_role("button", name="Call me back").click()
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_label("Phone number").fill("312 555 0142")
    await page.get_by_role("dialog").get_by_role("button", name="Call me").click()
    await expect(page.locator(".cs-msg")).to_have_text("We're calling our team now.")
    await page.keyboard.press("Escape")
    await page.goto(f"{daemon.url}/demo/?next=1")
    rid = str((await latest_request(daemon.dsn))["id"])
    await daemon.set_state(rid, "accepted")
    await page.get_by_role("button", name="Call me back").click()
    await expect(page.locator(".cs-msg")).to_have_text("Connecting you: your phone will ring.", timeout=5000)
    await expect(page.get_by_role("dialog").get_by_role("button", name="Cancel my request")).to_be_hidden()
