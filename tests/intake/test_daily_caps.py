"""Daily caps (issue 8): requests per phone number and per site in any 24 hours, counted in Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.intake.helpers import browser_headers, valid_body
from tests.intake.test_create import PATH, post, rows

CONSENT_HEADERS = {"Origin": "https://consent.example"}


def consent_body(**overrides: Any) -> dict[str, Any]:
    return valid_body(site_key="pk_test_consent", phone="+1 312 555 0142", **overrides)


async def cancel(client: TestClient, request_id: str) -> None:
    resp = await client.post(f"{PATH}/{request_id}/cancel")
    assert resp.status == 200


async def accepted_then_cancelled(client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None
                                  ) -> str:
    """One stored request, finished at once so that the next one is not a pending duplicate."""
    status, data, _ = await post(client, body, headers)
    assert status == 202, data
    await cancel(client, data["id"])
    return str(data["id"])


async def test_phone_daily_cap_answers_429_naming_the_phone(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_phone="off", phone_per_day="2")
    for _ in range(2):
        await accepted_then_cancelled(client, valid_body())
    status, data, headers = await post(client, valid_body(phone="+1 312-555-0142"))  # same number, other spelling
    assert (status, data["error"]) == (429, "phone_daily_limit")
    assert [f["field"] for f in data["fields"]] == ["phone"]
    assert "2 requests per number in 24 hours" in data["fields"][0]["reason"]
    assert 86000 < int(headers["Retry-After"]) <= 86400
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 2
    # another number is not affected
    assert (await post(client, valid_body(phone="312 555 0199")))[0] == 202


async def test_phone_daily_cap_counts_every_site(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_phone="off", phone_per_day="2")
    await accepted_then_cancelled(client, valid_body())
    await accepted_then_cancelled(client, consent_body(), CONSENT_HEADERS)
    status, data, _ = await post(client, valid_body())
    assert (status, data["error"]) == (429, "phone_daily_limit")
    status, data, _ = await post(client, consent_body(), CONSENT_HEADERS)
    assert (status, data["error"]) == (429, "phone_daily_limit")


async def test_phone_daily_cap_is_a_rolling_24_hours(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_phone="off", phone_per_day="2")
    first = await accepted_then_cancelled(client, valid_body())
    await accepted_then_cancelled(client, valid_body())
    # the first request was made 23 hours ago: one more is allowed in about an hour
    await rows(clean_db, "UPDATE callback_requests SET created_at = now() - interval '23 hours' WHERE id = $1",
               first)
    status, _, headers = await post(client, valid_body())
    assert status == 429
    assert 3500 < int(headers["Retry-After"]) <= 3600
    # 25 hours ago: it no longer counts
    await rows(clean_db, "UPDATE callback_requests SET created_at = now() - interval '25 hours' WHERE id = $1",
               first)
    assert (await post(client, valid_body()))[0] == 202


async def test_pending_duplicate_and_idempotent_retry_are_answered_at_the_cap(make_client: Any) -> None:
    client = await make_client(per_phone="off", phone_per_day="1")
    headers = browser_headers(**{"Idempotency-Key": "cap-1"})
    status, first, _ = await post(client, valid_body(), headers)
    assert status == 202
    status, again, _ = await post(client, valid_body(), headers)  # replay: the same answer, nothing stored
    assert (status, again["id"]) == (202, first["id"])
    status, dup, _ = await post(client, valid_body())  # still pending: the existing request
    assert (status, dup["id"], dup["duplicate"]) == (200, first["id"], True)
    await cancel(client, first["id"])
    status, data, _ = await post(client, valid_body())
    assert (status, data["error"]) == (429, "phone_daily_limit")


async def test_phone_daily_cap_holds_across_daemons_and_concurrent_requests(make_client: Any, clean_db: str) -> None:
    # two daemons (two applications, one database); the number has made 2 requests today, the cap is 3
    a = await make_client(per_phone="off", phone_per_day="3")
    b = await make_client(per_phone="off", phone_per_day="3")
    await accepted_then_cancelled(a, valid_body())
    await accepted_then_cancelled(b, valid_body())
    results = await asyncio.gather(*(
        post(client, body, headers)
        for _ in range(4)
        for client, body, headers in ((a, valid_body(), None), (b, consent_body(), CONSENT_HEADERS))
    ))
    statuses = sorted(status for status, _, _ in results)
    created = await rows(clean_db, "SELECT site FROM callback_requests WHERE finished_at IS NULL")
    assert len(created) == 1  # exactly one more, whichever site won
    winner = created[0]["site"]
    assert statuses.count(202) == 1
    # the winner's site answers its other requests with the pending request, the other site is capped
    assert statuses.count(200) == 3 and statuses.count(429) == 4, (winner, statuses)


async def test_phone_daily_cap_off(make_client: Any, clean_db: str) -> None:
    client = await make_client(per_phone="off", phone_per_day="off")
    for _ in range(7):
        await accepted_then_cancelled(client, valid_body())
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 7


async def test_default_phone_daily_cap_is_five(make_client: Any) -> None:
    client = await make_client(per_phone="off")
    for _ in range(5):
        await accepted_then_cancelled(client, valid_body())
    status, data, _ = await post(client, valid_body())
    assert (status, data["error"]) == (429, "phone_daily_limit")


async def test_site_daily_cap(make_client: Any, clean_db: str) -> None:
    client = await make_client(site_per_day="3")
    for i in range(3):
        assert (await post(client, valid_body(phone=f"312 555 01{i:02d}")))[0] == 202
    status, data, headers = await post(client, valid_body(phone="312 555 0199"))
    assert (status, data["error"]) == (429, "site_daily_limit")
    assert "fields" not in data
    assert 86000 < int(headers["Retry-After"]) <= 86400
    # each site has its own count
    assert (await post(client, consent_body(), CONSENT_HEADERS))[0] == 202
    assert len(await rows(clean_db, "SELECT id FROM callback_requests WHERE site = 'shop'")) == 3


async def test_site_daily_cap_is_exact_under_concurrency_across_daemons(make_client: Any, clean_db: str) -> None:
    a = await make_client(site_per_day="4")
    b = await make_client(site_per_day="4")
    results = await asyncio.gather(*(
        post(a if i % 2 else b, valid_body(phone=f"312 555 02{i:02d}")) for i in range(12)
    ))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [202] * 4 + [429] * 8
    assert len(await rows(clean_db, "SELECT id FROM callback_requests")) == 4
