"""Test helpers: request rows and events written as intake and the dialer write them, a webhook receiver."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from callswitch.notify.signing import SIGNATURE_HEADER, SignatureError, verify

FINAL = ("completed", "failed", "cancelled", "expired", "rejected")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def create_request(
    conn: asyncpg.Connection, *, site: str = "shop", name: str = "Ada Lovelace", phone: str | None = None,
    state: str = "queued", destination: str | None = "berlin", **columns: Any,
) -> uuid.UUID:
    """A request and its first event, as callswitch_store_request() writes them (one transaction)."""
    rid = uuid.uuid4()
    phone = phone or f"+4930{uuid.uuid4().int % 10**8:08d}"
    values: dict[str, Any] = {
        "id": rid, "site": site, "visitor_name": name, "phone_given": phone.replace("+49", "0"), "phone_e164": phone,
        "phone_country": "DE", "page_url": "https://shop.example/kitchens?utm_campaign=spring",
        "referrer": "https://www.google.com/", "pages_visited": ["https://shop.example/", "https://shop.example/kitchens"],
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-sale", "product": "kitchen",
        "postal_code": "10115", "language": "de", "attributes": {"product": "kitchen", "postal_code": "10115"},
        "consent": True, "request_fingerprint": "f" * 64, "state": state, "route_rule": "rules[0] (berlin)",
        "route_destination": destination, "route_chain": [destination] if destination else [],
        "finished_at": datetime.now(UTC) if state in FINAL else None,
        "outcome": "rejected" if state == "rejected" else None,
    }
    values.update(columns)
    cols = ", ".join(values)
    params = ", ".join(f"${i + 1}" for i in range(len(values)))
    async with conn.transaction():
        await conn.execute(f"INSERT INTO callback_requests ({cols}) VALUES ({params})", *values.values())
        await conn.execute(
            "INSERT INTO callback_events (request_id, event, from_state, to_state, actor, detail) "
            "VALUES ($1, 'accepted', NULL, $2, 'intake', $3)",
            rid, state, {"rule": values["route_rule"]},
        )
    return rid


async def set_state(
    conn: asyncpg.Connection, rid: uuid.UUID, state: str, event: str, previous: str | None, *,
    outcome: str | None = None, detail: dict[str, Any] | None = None, actor: str = "dialer",
) -> None:
    """What Queue.set_state() does: the state change and its audit event in one transaction."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE callback_requests SET state = $2, state_changed_at = now(), "
            "finished_at = CASE WHEN $2 = ANY($4::text[]) THEN now() END, outcome = COALESCE($3, outcome) "
            "WHERE id = $1", rid, state, outcome, list(FINAL),
        )
        await conn.execute(
            "INSERT INTO callback_events (request_id, event, from_state, to_state, actor, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6)", rid, event, previous, state, actor, detail or {},
        )


async def add_attempt(conn: asyncpg.Connection, rid: uuid.UUID, attempt: int, destination: str = "berlin", *,
                      outcome: str | None = "connected", finished: bool = True) -> None:
    await conn.execute(
        "INSERT INTO call_attempts (request_id, attempt, node, route_rule, destination, finished_at, outcome) "
        "VALUES ($1, $2, 'test-node', 'rules[0] (berlin)', $3, CASE WHEN $4 THEN now() END, $5)",
        rid, attempt, destination, finished, outcome,
    )


async def add_leg(conn: asyncpg.Connection, rid: uuid.UUID, attempt: int, leg: str, *, member: str | None = None,
                  disposition: str = "answered", talk: int | None = None, accepted: bool = False,
                  destination: str = "berlin", start: datetime | None = None) -> None:
    t0 = start or datetime(2025, 3, 31, 8, 0, tzinfo=UTC)
    answered = t0 + timedelta(seconds=5) if disposition in ("answered", "accepted") else None
    ended = t0 + timedelta(seconds=5 + (talk or 0) + 1)
    await conn.execute(
        "INSERT INTO call_legs (leg_id, request_id, attempt, leg, destination, member, number_dialled, trunk, "
        "originated_at, ringing_at, answered_at, accepted_at, ended_at, disposition, hangup_cause, billable_seconds) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, 'carrier-a', $8, $9, $10, $11, $12, $13, 16, $14)",
        uuid.uuid4().hex, rid, attempt, leg, destination, member, member or "+4930555000", t0,
        t0 + timedelta(seconds=1), answered, answered + timedelta(seconds=2) if accepted and answered else None,
        ended, disposition, talk,
    )


async def connected_call(conn: asyncpg.Connection, rid: uuid.UUID, talk: int = 95) -> None:
    """The dialer's events and CDRs of a request that was connected and completed on its first attempt."""
    await add_attempt(conn, rid, 1, finished=False)
    await set_state(conn, rid, "dialing_agent", "dialing", "queued", detail={"attempt": 1})
    await set_state(conn, rid, "agent_answered", "agent_answered", "dialing_agent")
    await set_state(conn, rid, "accepted", "agent_accepted", "agent_answered", detail={"member": "PJSIP/201"})
    await set_state(conn, rid, "dialing_customer", "customer_dialing", "accepted")
    await set_state(conn, rid, "connected", "customer_answered", "dialing_customer")
    await add_leg(conn, rid, 1, "agent", member="PJSIP/202", disposition="answered_elsewhere")
    await add_leg(conn, rid, 1, "agent", member="PJSIP/201", disposition="accepted", accepted=True, talk=talk)
    await add_leg(conn, rid, 1, "customer", disposition="answered", talk=talk)
    await set_state(conn, rid, "completed", "hangup", "connected", outcome="connected", detail={"talk_seconds": talk})
    await conn.execute("UPDATE call_attempts SET finished_at = now(), outcome = 'connected' WHERE request_id = $1", rid)


async def missed_call(conn: asyncpg.Connection, rid: uuid.UUID, outcome: str = "no_agent") -> None:
    await add_attempt(conn, rid, 1, outcome=outcome)
    await set_state(conn, rid, "dialing_agent", "dialing", "queued", detail={"attempt": 1})
    await add_leg(conn, rid, 1, "agent", member="PJSIP/201", disposition="no_answer")
    await set_state(conn, rid, "failed", "failed", "dialing_agent", outcome=outcome,
                    detail={"message": "nobody answered"})


@dataclass
class Hit:
    path: str
    event_id: str
    delivery: str
    attempt: int
    payload: dict[str, Any]
    signature_ok: bool


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies signatures; can be down, fail, or be slow."""

    secrets: dict[str, str]  # path -> secret
    port: int = field(default_factory=free_port)
    hits: list[Hit] = field(default_factory=list)
    fail_with: int | None = None  # answer this status instead of 200
    retry_after: str | None = None
    slow_once: set[str] = field(default_factory=set)  # event ids answered late (after the sender's timeout) once
    delay: float = 0.0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.secrets[request.path]
        try:
            verify(secret, request.headers.get(SIGNATURE_HEADER, ""), body)
            ok = True
        except SignatureError:
            ok = False
        if not ok:
            return web.Response(status=401, text="bad signature")
        if self.fail_with is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=self.fail_with, text="receiver is failing", headers=headers)
        payload = json.loads(body)
        event_id = request.headers["Callswitch-Event-Id"]
        assert payload["id"] == event_id
        self.hits.append(Hit(request.path, event_id, request.headers["Callswitch-Delivery"],
                             int(request.headers["Callswitch-Delivery-Attempt"]), payload, ok))
        if event_id in self.slow_once:
            self.slow_once.discard(event_id)
            await asyncio.sleep(2.0)  # processed, but the answer comes after the sender gave up
        elif self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=200, text="ok")

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def down(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def ids(self, path: str) -> list[str]:
        return [h.event_id for h in self.hits if h.path == path]
