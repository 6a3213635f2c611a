"""Storing callback requests: one transaction per request, nothing half-written.

The request row and its first audit event are
committed together by the SQL function ``callswitch_store_request`` (migrations 0002,
0003, 0005, 0015), called for a batch of concurrent requests at once by :class:`BatchWriter`. Dialers are woken
after the commit (:mod:`callswitch.db.wakeup`). Per phone number, requests are serialised
with a transaction-level advisory lock so that duplicates, the per-phone limit and the
per-phone daily cap are decided exactly even when two daemons receive the same request at
once; a site with a daily cap has its requests serialised by a per-site lock as well.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callswitch import callback as states
from callswitch.config import RateLimit, SiteConfig
from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.intake.decision import IntakeDecision
from callswitch.intake.validation import CallbackInput


@dataclass(frozen=True)
class RequestMeta:
    client_ip: str | None
    user_agent: str | None
    idempotency_key: str | None


@dataclass(frozen=True)
class Stored:
    id: uuid.UUID
    state: str
    due_at: datetime
    created: bool  # False: an existing request was returned
    replayed: bool = False  # True: same Idempotency-Key as an earlier request


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


class LimitReached(Exception):
    """A limit counted in Postgres refused the request; it may be tried again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:.0f}s")
        self.retry_after = retry_after


class PhoneRateLimited(LimitReached):
    """``intake.rate_limits.per_phone``: too many requests for the number in the configured window."""


class PhoneDailyCapReached(LimitReached):
    """``intake.phone.max_per_day``: the number made that many requests in the last 24 hours (any site)."""


class SiteDailyCapReached(LimitReached):
    """``max_requests_per_day``: the site stored that many requests in the last 24 hours."""


class BatchWriter:
    """Stores requests in batches: whatever arrives while a write is in flight joins the next one.

    Under light load every request is written alone, at once; under heavy load concurrent
    requests share one round trip and one commit (``callswitch_store_requests``, migration
    0006) instead of queueing for their own. Each caller still gets its answer only after
    the commit that holds its request. A batch that fails for a reason other than an
    unreachable database is retried one request at a time, so one bad row cannot fail others.
    """

    def __init__(self, db: Database, max_batch: int = 32, max_in_flight: int = 8):
        self.db = db
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._pending: list[tuple[dict[str, Any], asyncio.Future[asyncpg.Record]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.largest_batch = 0

    async def store(self, item: dict[str, Any]) -> asyncpg.Record:
        future: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start_writes()
        return await future

    def _start_writes(self) -> None:
        while self._pending and self._in_flight < self.max_in_flight:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[asyncpg.Record]]]) -> None:
        try:
            await self._write_batch(batch)
        finally:
            self._in_flight -= 1
            self._start_writes()

    async def _write_batch(self, batch: list[tuple[dict[str, Any], asyncio.Future[asyncpg.Record]]]) -> None:
        try:
            async with self.db.acquire() as conn:
                rows = await conn.fetch(Q.store_requests, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and not is_unavailable(exc):
                for one in batch:
                    await self._write_batch([one])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)  # DatabaseUnavailable when Postgres is unreachable
            return
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():
                future.set_result(row)


async def store_callback(
    writer: BatchWriter,
    site: SiteConfig,
    inp: CallbackInput,
    meta: RequestMeta,
    per_phone: RateLimit | None,
    decision: IntakeDecision,
) -> Stored:
    """Store a validated request, or return the existing one (duplicate / idempotent retry)."""
    attrs = dict(inp.attributes)
    size = attrs.get("company_size")
    rejected = decision.state == states.REJECTED
    item = {
        "id": str(uuid.uuid4()),
        "site": site.id,
        "visitor_name": inp.name,
        "phone_given": inp.phone.given,
        "phone_e164": inp.phone.e164,
        "phone_country": inp.phone.region,
        "page_url": inp.page_url,
        "referrer": inp.referrer,
        "pages_visited": list(inp.pages),
        **{f"utm_{k}": inp.utm.get(k) for k in ("source", "medium", "campaign", "term", "content")},
        "product": _str_or_none(attrs.get("product")),
        "postal_code": _str_or_none(attrs.get("postal_code")),
        "company_size": size if isinstance(size, int) and not isinstance(size, bool) else None,
        "language": inp.language,
        "attributes": attrs,
        "consent": inp.consent,
        "preferred_at": inp.preferred_at.isoformat() if inp.preferred_at else None,
        "client_ip": meta.client_ip,
        "user_agent": meta.user_agent,
        "idempotency_key": meta.idempotency_key,
        "request_fingerprint": inp.fingerprint(site.id),
        "state": decision.state,
        "due_at": decision.due_at.isoformat() if decision.due_at else None,
        "phone_limit": per_phone.count if per_phone else None,
        "phone_period_s": per_phone.period if per_phone else None,
        "event_detail": {"page_url": inp.page_url, **decision.event_detail()},
        "route_rule": decision.rule,
        "route_destination": decision.destination,
        "route_chain": list(decision.chain),
        "outcome": "rejected" if rejected else None,
        "outcome_detail": decision.reject_message,
        "phone_day_limit": site.phone.max_per_day,
        "site_day_limit": site.max_requests_per_day,
    }
    try:
        row = await writer.store(item)
    except asyncpg.UniqueViolationError:
        # Only possible if the advisory lock was bypassed (e.g. a manual insert): report the winner.
        async with writer.db.acquire() as conn:
            existing = await conn.fetchrow(Q.find_active_for_phone, site.id, inp.phone.e164)
        if existing is None:
            raise
        return Stored(existing["id"], existing["state"], existing["due_at"], created=False)
    outcome = row["outcome"]
    if outcome == "phone_limited":
        raise PhoneRateLimited(float(row["retry_after_s"]))
    if outcome == "phone_day_limited":
        raise PhoneDailyCapReached(float(row["retry_after_s"]))
    if outcome == "site_day_limited":
        raise SiteDailyCapReached(float(row["retry_after_s"]))
    if outcome == "idempotency_conflict":
        raise IdempotencyConflict()
    return Stored(
        row["request_id"], row["request_state"], row["request_due_at"],
        created=outcome == "created", replayed=outcome == "replayed",
    )


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


async def fetch_status(db: Database, request_id: uuid.UUID) -> asyncpg.Record | None:
    async with db.acquire() as conn:
        return await conn.fetchrow(Q.get_public_status, request_id)


async def cancel(db: Database, request_id: uuid.UUID) -> tuple[asyncpg.Record | None, str | None]:
    """Cancel if still cancellable. Returns (row after, previous state) or (None, None) if unknown."""
    async with db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(Q.lock_request, request_id)
        if current is None:
            return None, None
        row = await conn.fetchrow(
            Q.cancel_request, request_id, "cancelled by the visitor", list(states.CANCELLABLE_STATES)
        )
        if row is None:
            return await conn.fetchrow(Q.get_public_status, request_id), current["state"]
        await conn.execute(
            Q.insert_event, request_id, "cancelled", current["state"], states.CANCELLED, "visitor", {}
        )
        await conn.execute(Q.notify_new_request, str(request_id))
        return row, current["state"]
