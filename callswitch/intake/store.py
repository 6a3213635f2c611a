"""Storing callback requests: one transaction per request, nothing half-written.

The request row, its first audit event and the dialer's wake-up notification are
committed together, by one call of the SQL function ``callswitch_store_request``
(migration 0002): one round trip per request. Per phone number, requests are serialised
with a transaction-level advisory lock so that duplicates and the per-phone limit are
decided exactly even when two daemons receive the same request at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callswitch import callback as states
from callswitch.config import RateLimit, SiteConfig
from callswitch.db.pool import Database, DatabaseUnavailable, is_unavailable
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


class PhoneRateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:.0f}s")
        self.retry_after = retry_after


def _unavailable(exc: BaseException) -> DatabaseUnavailable:
    return exc if isinstance(exc, DatabaseUnavailable) else DatabaseUnavailable(str(exc) or type(exc).__name__)


async def store_callback(
    db: Database,
    site: SiteConfig,
    inp: CallbackInput,
    meta: RequestMeta,
    per_phone: RateLimit | None,
    decision: IntakeDecision,
) -> Stored:
    """Store a validated request, or return the existing one (duplicate / idempotent retry)."""
    request_id = uuid.uuid4()
    attrs = dict(inp.attributes)
    size = attrs.get("company_size")
    detail: dict[str, Any] = {"page_url": inp.page_url, **decision.event_detail()}
    rejected = decision.state == states.REJECTED
    try:
        async with db.acquire() as conn:
            row = await conn.fetchrow(
                Q.store_request,
                request_id, site.id, inp.name, inp.phone.given, inp.phone.e164, inp.phone.region,
                inp.page_url, inp.referrer, list(inp.pages),
                inp.utm.get("source"), inp.utm.get("medium"), inp.utm.get("campaign"),
                inp.utm.get("term"), inp.utm.get("content"),
                _str_or_none(attrs.get("product")), _str_or_none(attrs.get("postal_code")),
                size if isinstance(size, int) and not isinstance(size, bool) else None,
                inp.language, attrs, inp.consent, inp.preferred_at,
                meta.client_ip, meta.user_agent, meta.idempotency_key, inp.fingerprint(site.id),
                decision.state, decision.due_at,
                per_phone.count if per_phone else None, per_phone.period if per_phone else None,
                detail, decision.rule, decision.destination, list(decision.chain),
                "rejected" if rejected else None, decision.reject_message,
            )
    except asyncpg.UniqueViolationError:
        # Only possible if the advisory lock was bypassed (e.g. a manual insert): report the winner.
        async with db.acquire() as conn:
            existing = await conn.fetchrow(Q.find_active_for_phone, site.id, inp.phone.e164)
        if existing is None:
            raise
        return Stored(existing["id"], existing["state"], existing["due_at"], created=False)
    except Exception as exc:
        if is_unavailable(exc):
            raise _unavailable(exc) from exc
        raise
    outcome = row["outcome"]
    if outcome == "phone_limited":
        raise PhoneRateLimited(float(row["retry_after_s"]))
    if outcome == "idempotency_conflict":
        raise IdempotencyConflict()
    return Stored(
        row["request_id"], row["request_state"], row["request_due_at"],
        created=outcome == "created", replayed=outcome == "replayed",
    )


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


async def fetch_status(db: Database, request_id: uuid.UUID) -> asyncpg.Record | None:
    try:
        async with db.acquire() as conn:
            return await conn.fetchrow(Q.get_public_status, request_id)
    except Exception as exc:
        if is_unavailable(exc):
            raise _unavailable(exc) from exc
        raise


async def cancel(db: Database, request_id: uuid.UUID) -> tuple[asyncpg.Record | None, str | None]:
    """Cancel if still cancellable. Returns (row after, previous state) or (None, None) if unknown."""
    try:
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
    except Exception as exc:
        if is_unavailable(exc):
            raise _unavailable(exc) from exc
        raise
