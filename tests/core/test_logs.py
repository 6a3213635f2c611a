"""Logs: JSON lines, phone numbers masked, secrets hidden."""

from __future__ import annotations

import io
import json

import structlog

from callswitch.logs import configure, get_logger, mask_phone


def test_mask_phone_keeps_last_digits() -> None:
    assert mask_phone("+4930123456789") == "+**********789"
    assert mask_phone("(312) 555-0142") == "*******142"
    assert mask_phone("12") == "**"


def test_json_logs_mask_numbers_and_hide_secrets() -> None:
    out = io.StringIO()
    configure("debug", "json", stream=out)
    try:
        get_logger("t").info(
            "dialing number +13125550142 now",
            phone="+13125550142",
            customer="+4930123456789",
            secret="s3cr3t",
            admin_token="tok-0123456789abcdef",
            dsn="postgresql://user:pw@db/callswitch",
            page_url="https://shop.example/p?id=12345",
            public_url="http://127.0.0.1:8080",
            note="due 2026-11-23 at 1.5 s",
            version="22.10.1",
            member="PJSIP/201",
        )
        line = json.loads(out.getvalue().strip().splitlines()[-1])
    finally:
        structlog.reset_defaults()
    assert line["event"] == "dialing number +********142 now"
    assert line["phone"] == "+********142"
    assert line["customer"] == "+**********789"
    assert line["secret"] == "***" and line["admin_token"] == "***"
    assert line["dsn"] == "postgresql://user:***@db/callswitch"
    assert line["page_url"] == "https://shop.example/p?id=12345"  # short digit runs in URLs are kept
    assert line["public_url"] == "http://127.0.0.1:8080"  # addresses and dates are not phone numbers
    assert line["note"] == "due 2026-11-23 at 1.5 s" and line["version"] == "22.10.1"
    assert line["member"] == "PJSIP/201"
    assert line["level"] == "info" and "timestamp" in line
    assert "3125550142" not in out.getvalue() and "s3cr3t" not in out.getvalue()
