"""What the admin API shows and does about notifications (SQL in db/queries/outbox.sql)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from callswitch.db.pool import Database
from callswitch.db.queries import QUERIES as Q

STATUSES = ("pending", "delivered", "failed")
CHANNELS = ("webhook", "email")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


async def list_deliveries(
    db: Database,
    *,
    status: str | None = None,
    site: str | None = None,
    request_id: uuid.UUID | str | None = None,
    channel: str | None = None,
    subscription: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Deliveries, newest first, as JSON-ready dicts; page with ``before_id`` = the last id of the previous page.

    Each has: id, outbox_id, event_uuid, kind, request_id, site, occurred_at, channel, subscription,
    target, destination, status, attempts, created_at, last_attempt_at, last_status, last_error,
    next_attempt_at, delivered_at, claimed_by.
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if channel is not None and channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    rid = uuid.UUID(str(request_id)) if request_id is not None else None
    limit = max(1, min(limit, 1000))
    async with db.acquire() as conn:
        rows = await conn.fetch(Q.delivery_list, status, site, rid, channel, subscription, before_id, limit)
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


async def retry_delivery(db: Database, delivery_id: int) -> bool:
    """Attempt a failed (given up) or waiting delivery again now; False if there is no such delivery to retry."""
    async with db.acquire() as conn:
        return await conn.fetchval(Q.delivery_retry, delivery_id) is not None


async def outbox_summary(db: Database) -> dict[str, Any]:
    """Backlog figures: events waiting for fan-out, deliveries pending and failed, and the oldest of each."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(Q.outbox_summary)
    return {k: _plain(v) for k, v in row.items()}
