"""Request floods (issue 8): from one address, from many, and with forged X-Forwarded-For."""

from __future__ import annotations

import asyncio
from typing import Any

from callswitch.config import RateLimit
from callswitch.intake.ratelimit import TokenBuckets
from tests.intake.helpers import browser_headers, valid_body
from tests.intake.test_create import post, rows


def from_ip(ip: str) -> dict[str, str]:
    return browser_headers(**{"X-Forwarded-For": ip})


async def test_flood_from_one_address_is_limited_while_another_is_served(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_ip="3/minute", trusted_proxies="[127.0.0.1/32]")
    flood = await asyncio.gather(*(
        post(client, valid_body(phone=f"312 555 01{i:02d}"), from_ip("198.51.100.7")) for i in range(20)
    ))
    statuses = sorted(status for status, _, _ in flood)
    assert statuses == [202] * 3 + [429] * 17
    refused = [data for status, data, _ in flood if status == 429]
    assert all(d["error"] == "rate_limited" and "address" in d["message"] for d in refused)
    assert all(1 <= int(h["Retry-After"]) <= 60 for s, _, h in flood if s == 429)
    # another visitor is not affected
    status, _, _ = await post(client, valid_body(phone="312 555 0199"), from_ip("203.0.113.9"))
    assert status == 202
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 4


async def test_flood_from_many_addresses_hits_the_per_site_limit(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_ip="2/minute", per_site="5/minute", trusted_proxies="[127.0.0.1/32]")
    flood = await asyncio.gather(*(
        post(client, valid_body(phone=f"312 555 02{i:02d}"), from_ip(f"198.51.100.{i + 1}")) for i in range(12)
    ))
    statuses = sorted(status for status, _, _ in flood)
    assert statuses == [202] * 5 + [429] * 7
    assert all("site" in data["message"] for status, data, _ in flood if status == 429)
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 5


async def test_forged_forwarded_for_from_an_untrusted_peer_does_not_escape_the_per_ip_limit(make_client: Any) -> None:
    client = await make_client(per_ip="2/minute")  # no trusted proxies: the peer address counts
    results = [
        (await post(client, valid_body(phone=f"312 555 03{i:02d}"), from_ip(f"203.0.113.{i + 1}")))[0]
        for i in range(4)
    ]
    assert results == [202, 202, 429, 429]


def test_token_buckets_stay_bounded_under_a_flood_of_addresses() -> None:
    now = [0.0]
    buckets = TokenBuckets(RateLimit(2, 60), max_keys=100, clock=lambda: now[0])
    for i in range(10_000):
        assert buckets.take(f"10.0.{i // 256}.{i % 256}") == 0.0  # each new address gets its first token
    assert len(buckets) == 100
    # a recent address is still limited; its bucket refills over time
    assert buckets.take("10.0.39.15") == 0.0
    wait = buckets.take("10.0.39.15")
    assert 29 < wait <= 30
    now[0] += wait
    assert buckets.take("10.0.39.15") == 0.0
