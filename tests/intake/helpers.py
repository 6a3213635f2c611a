"""Constants and builders shared by the intake tests."""

from __future__ import annotations

from typing import Any

ORIGIN = "https://shop.example"
SITE_KEY = "pk_test_shop"
API_KEY = "sk_test_shop_0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789"


def valid_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_key": SITE_KEY,
        "name": "Ada Lovelace",
        "phone": "(312) 555-0142",
        "page_url": "https://shop.example/products/widget?utm_campaign=spring",
        "referrer": "https://www.google.com/",
        "pages": ["https://shop.example/", "https://shop.example/products/widget"],
        "utm": {"source": "google", "medium": "cpc", "campaign": "spring"},
        "attributes": {"product": "widget", "postal_code": "60601", "company_size": 250, "color": "blue"},
        "language": "en",
        "consent": True,
    }
    body.update(overrides)
    return body


def browser_headers(**extra: str) -> dict[str, str]:
    return {"Origin": ORIGIN, **extra}
