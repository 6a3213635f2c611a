"""Admin API behind a bearer token: list, filter and inspect callback requests."""

from __future__ import annotations

import base64
import hmac
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from callswitch import callback as states
from callswitch.config import Config
from callswitch.db.queries import QUERIES as Q
from callswitch.intake import keys
from callswitch.intake.api import parse_request_id, secret_bytes
from callswitch.intake.http import ApiError, json_response
from callswitch.intake.validation import FieldError
from callswitch.notify import admin as notify_admin

MAX_LIMIT = 500


def require_admin(request: web.Request) -> None:
    config: Config = request.app[keys.CONFIG]
    if not config.admin_token:
        raise ApiError(403, "admin_disabled", "the admin API is disabled (admin.token is not configured)")
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "admin_token_required", "send Authorization: Bearer <admin token>",
                       headers={"WWW-Authenticate": 'Bearer realm="callswitch-admin"'})
    if not hmac.compare_digest(secret_bytes(token.strip()), config.admin_token.encode()):
        raise ApiError(403, "invalid_admin_token", "invalid admin token")


def record(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, uuid.UUID) or (value is not None and type(value).__module__ == "ipaddress"):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def param_time(request: web.Request, name: str, errors: list[FieldError]) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        errors.append(FieldError(name, "must be an ISO 8601 date-time"))
        return None
    if value.tzinfo is None:
        errors.append(FieldError(name, "must include a UTC offset"))
        return None
    return value


async def _fetch(request: web.Request, *queries: tuple[str, tuple[Any, ...]]) -> list[Any]:
    async with request.app[keys.DB].acquire() as conn:  # DatabaseUnavailable -> 503 (middleware)
        return [await conn.fetch(sql, *args) for sql, args in queries]


async def list_callbacks(request: web.Request) -> web.Response:
    require_admin(request)
    errors: list[FieldError] = []
    state = request.query.get("state") or None
    if state and state not in states.ALL_STATES:
        errors.append(FieldError("state", f"one of {', '.join(states.ALL_STATES)}"))
    since = param_time(request, "since", errors)
    until = param_time(request, "until", errors)
    try:
        limit = int(request.query.get("limit", "100"))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        errors.append(FieldError("limit", f"a whole number from 1 to {MAX_LIMIT}"))
        limit = 100
    cursor_time, cursor_id = None, None
    cursor = request.query.get("cursor")
    if cursor:
        try:
            t, _, i = base64.urlsafe_b64decode(cursor.encode()).decode().partition("_")
            cursor_time, cursor_id = datetime.fromisoformat(t), uuid.UUID(i)
        except (ValueError, UnicodeDecodeError):
            errors.append(FieldError("cursor", "not a cursor returned by this API"))
    if errors:
        raise ApiError(422, "validation_failed", "invalid query parameters", errors)
    (rows,) = await _fetch(
        request,
        (Q.admin_list_requests, (request.query.get("site") or None, state, since, until,
                                 request.query.get("phone") or None, cursor_time, cursor_id, limit)),
    )
    items = [record(r) for r in rows]
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last['created_at'].isoformat()}_{last['id']}".encode()).decode()
    return json_response({"items": items, "next_cursor": next_cursor})


async def get_callback_admin(request: web.Request) -> web.Response:
    require_admin(request)
    request_id = parse_request_id(request)
    req, events, legs = await _fetch(
        request,
        (Q.admin_get_request, (request_id,)),
        (Q.admin_request_events, (request_id,)),
        (Q.admin_request_legs, (request_id,)),
    )
    if not req:
        raise ApiError(404, "not_found", "no such callback request")
    out = record(req[0])
    out["events"] = [record(e) for e in events]
    out["legs"] = [record(leg) for leg in legs]
    return json_response(out)


async def list_notification_deliveries(request: web.Request) -> web.Response:
    """Webhook and e-mail deliveries with their attempts (``GET /v1/admin/deliveries``)."""
    require_admin(request)
    q = request.query
    errors: list[FieldError] = []
    try:
        limit = int(q.get("limit", "100"))
        before = int(q["before_id"]) if q.get("before_id") else None
    except ValueError:
        errors.append(FieldError("limit", "limit and before_id are whole numbers"))
        limit, before = 100, None
    request_id = q.get("request_id") or None
    if request_id is not None:
        try:
            uuid.UUID(request_id)
        except ValueError:
            errors.append(FieldError("request_id", "not a request id"))
    if errors:
        raise ApiError(422, "validation_failed", "invalid query parameters", errors)
    try:
        items = await notify_admin.list_deliveries(
            request.app[keys.DB], status=q.get("status") or None, site=q.get("site") or None,
            request_id=request_id, channel=q.get("channel") or None,
            subscription=q.get("subscription") or None, before_id=before, limit=limit)
        summary = await notify_admin.outbox_summary(request.app[keys.DB])
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc), [FieldError("status/channel", str(exc))]) from None
    return json_response({"items": items, "summary": summary})


async def retry_notification_delivery(request: web.Request) -> web.Response:
    """Attempt a waiting or given-up delivery again now (``POST /v1/admin/deliveries/{id}/retry``)."""
    require_admin(request)
    try:
        delivery_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "not_found", "no such delivery") from None
    if not await notify_admin.retry_delivery(request.app[keys.DB], delivery_id):
        raise ApiError(409, "not_retryable", "no such delivery waiting or given up")
    return json_response({"id": delivery_id, "status": "pending"})
