"""Client IP: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import ipaddress

from aiohttp.test_utils import make_mocked_request

from callswitch.intake.http import client_ip

TRUSTED = [ipaddress.ip_network("10.0.0.0/8")]


def ip(peer: str, forwarded: str | None = None) -> str | None:
    req = make_mocked_request("POST", "/v1/callbacks", headers={"X-Forwarded-For": forwarded} if forwarded else {})
    req._cache["remote"] = peer  # what aiohttp's cached Request.remote property reads
    return client_ip(req, TRUSTED)


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert ip("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_trusted_proxy_gives_the_rightmost_untrusted_address() -> None:
    assert ip("10.1.2.3", "198.51.100.1, 203.0.113.7, 10.9.9.9") == "203.0.113.7"


def test_trusted_proxy_without_header_is_the_client() -> None:
    assert ip("10.1.2.3") == "10.1.2.3"


def test_garbage_in_forwarded_header_stops_the_walk() -> None:
    assert ip("10.1.2.3", "198.51.100.1, not-an-ip") == "10.1.2.3"
