"""A plain HTML form posting to /v1/callbacks (no JavaScript)."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from tests.intake.helpers import ORIGIN, SITE_KEY

FORM = {
    "site_key": SITE_KEY,
    "name": "Grace Hopper",
    "phone": "312-555-0177",
    "page_url": "https://shop.example/pricing",
    "product": "widget",
    "company_size": "40",
    "utm_campaign": "newsletter",
    "consent": "on",
}


async def test_browser_form_is_redirected_to_thank_you_page(client: TestClient, clean_db: str) -> None:
    data = [*FORM.items(), ("pages", "https://shop.example/"), ("pages", "https://shop.example/pricing")]
    resp = await client.post(
        "/v1/callbacks", data=data, headers={"Origin": ORIGIN, "Accept": "text/html,*/*"}, allow_redirects=False
    )
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location.startswith("https://shop.example/thanks?from=callback&callback_id=")
    conn = await asyncpg.connect(clean_db)
    row = await conn.fetchrow("SELECT * FROM callback_requests")
    await conn.close()
    assert str(row["id"]) == location.rsplit("=", 1)[1]
    assert row["phone_e164"] == "+13125550177"
    assert row["company_size"] == 40 and row["product"] == "widget" and row["utm_campaign"] == "newsletter"
    assert row["pages_visited"] == ["https://shop.example/", "https://shop.example/pricing"]
    assert row["consent"] is True


async def test_form_without_html_accept_gets_json(client: TestClient) -> None:
    resp = await client.post("/v1/callbacks", data=FORM, headers={"Origin": ORIGIN})
    assert resp.status == 202
    assert (await resp.json())["state"] == "queued"


async def test_browser_form_error_is_an_html_page_naming_the_field(client: TestClient, clean_db: str) -> None:
    resp = await client.post(
        "/v1/callbacks", data={**FORM, "phone": "123"}, headers={"Origin": ORIGIN, "Accept": "text/html"}
    )
    assert resp.status == 422
    assert resp.content_type == "text/html"
    text = await resp.text()
    assert "phone: not a valid phone number" in text
    conn = await asyncpg.connect(clean_db)
    assert await conn.fetchval("SELECT count(*) FROM callback_requests") == 0
    await conn.close()
