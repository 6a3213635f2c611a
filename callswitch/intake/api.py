"""Public callback API: create, status, cancel (``/v1/callbacks``)."""

from __future__ import annotations

import asyncio
import hmac
import html
import ipaddress
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from callswitch import callback as states
from callswitch.config import Config, SiteConfig
from callswitch.db.pool import DatabaseUnavailable
from callswitch.intake import keys, store
from callswitch.intake.decision import decide, to_request
from callswitch.intake.http import ApiError, client_ip, json_response
from callswitch.intake.ratelimit import TokenBuckets
from callswitch.intake.validation import FieldError, InvalidRequest, form_to_body, validate_body
from callswitch.logs import get_logger

log = get_logger("callswitch.intake")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_IDEMPOTENCY_KEY = 200

# What the visitor is told, per state.
STATE_MESSAGES = {
    states.QUEUED: "We're calling our team now.",
    states.SCHEDULED: "We'll call you at the time shown.",
    states.DIALING_AGENT: "We're calling our team now.",
    states.AGENT_ANSWERED: "Someone from our team picked up.",
    states.ACCEPTED: "Connecting you: your phone will ring.",
    states.DIALING_CUSTOMER: "Connecting you: your phone will ring.",
    states.CONNECTED: "You're connected.",
    states.COMPLETED: "Thank you for your call.",
    states.FAILED: "We couldn't reach you. Please try again or call us.",
    states.CANCELLED: "Cancelled.",
    states.EXPIRED: "We couldn't call you in time. Please try again.",
    states.REJECTED: "We can't call you back for this request.",
}


class IntakeLimits:
    def __init__(self, config: Config):
        rl = config.rate_limits
        self.per_ip = TokenBuckets(rl.per_ip) if rl.per_ip else None
        self.per_site = TokenBuckets(rl.per_site) if rl.per_site else None


def _now() -> datetime:
    return datetime.now(UTC)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}


def _db_unavailable(config: Config) -> ApiError:
    return ApiError(
        503,
        "database_unavailable",
        "the service can't store requests right now; try again shortly",
        headers=_retry_after(config.http.retry_after_seconds),
    )


def secret_bytes(text: str) -> bytes:
    """A header value as bytes for ``hmac.compare_digest``.

    aiohttp decodes header bytes that are not UTF-8 as surrogate escapes; encoding them back
    the same way (instead of strictly, which raised and answered 500) compares the raw bytes.
    """
    return text.encode("utf-8", "surrogateescape")


def _find_site_by_api_key(config: Config, token: str) -> SiteConfig | None:
    found = None
    given = secret_bytes(token)
    for site in config.sites.values():
        # compare against every site, in constant time, so timing reveals nothing
        if site.api_key and hmac.compare_digest(site.api_key.encode(), given):
            found = site
    return found


def authenticate_site(request: web.Request, config: Config, body: dict[str, Any]) -> SiteConfig:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "invalid_api_key", "Authorization must be 'Bearer <site API key>'")
        site = _find_site_by_api_key(config, token.strip())
        if site is None:
            raise ApiError(401, "invalid_api_key", "unknown API key")
        return site
    key = request.headers.get("X-Callswitch-Site-Key") or body.get("site_key")
    if not key or not isinstance(key, str):
        raise ApiError(
            401, "missing_site_key", "a site key is required",
            [FieldError("site_key", "required (or an Authorization header with the site's API key)")],
        )
    site = config.site_by_key(key)
    if site is None:
        raise ApiError(401, "unknown_site_key", "unknown site key", [FieldError("site_key", "unknown site key")])
    origin = request.headers.get("Origin")
    if not origin:
        raise ApiError(
            403, "origin_required",
            "requests with a site key must come from a browser page (Origin header); servers use the API key",
        )
    if origin.rstrip("/") not in site.allowed_origins:
        raise ApiError(403, "origin_not_allowed", f"origin {origin} is not allowed for this site")
    return site


async def read_body(request: web.Request, config: Config) -> tuple[dict[str, Any], bool]:
    """Decode the body; returns (body, is_form).

    The whole body must arrive within ``http.body_timeout`` (408 otherwise), so that a client
    trickling its body cannot hold a handler for ever.
    """
    max_bytes = config.http.max_body_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "body_too_large", f"request body too large (at most {max_bytes} bytes)")
    if request.content.is_eof():  # the whole body came with the headers (the usual case): nothing to wait for
        return await _decode_body(request)
    timeout = config.http.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await _decode_body(request)
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the request body did not arrive within {timeout:g} seconds",
            [FieldError("body", "sent too slowly")], headers={"Connection": "close"},
        ) from None


async def _decode_body(request: web.Request) -> tuple[dict[str, Any], bool]:
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_json", "the body is not valid JSON", [FieldError("body", str(exc))]) from None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object", [FieldError("body", "not an object")])
        return body, False
    if ctype in FORM_TYPES:
        form = await request.post()
        return form_to_body(form), True
    raise ApiError(
        415, "unsupported_media_type",
        "send application/json or an HTML form (application/x-www-form-urlencoded)",
    )


def _status_url(config: Config, request_id: uuid.UUID) -> str:
    return f"{config.http.public_url}/v1/callbacks/{request_id}"


def public_status(row: Any) -> dict[str, Any]:
    state = row["state"]
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "state": state,
        "message": STATE_MESSAGES[state],
        "final": state in states.FINAL_STATES,
        "cancellable": state in states.CANCELLABLE_STATES,
        "created_at": row["created_at"].isoformat(),
    }
    if state == states.SCHEDULED:
        out["scheduled_for"] = row["due_at"].isoformat()
    if row["outcome"]:
        out["outcome"] = row["outcome"]
    if state == states.REJECTED and row["outcome_detail"]:
        out["message"] = row["outcome_detail"]
    return out


def _wants_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept


def _html_page(title: str, paragraphs: list[str], status: int) -> web.Response:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>{body}"
        "</main></body></html>"
    )
    return web.Response(text=page, status=status, content_type="text/html")


def _thank_you_redirect(site: SiteConfig, request_id: uuid.UUID) -> str | None:
    if not site.thank_you_url:
        return None
    parts = urlsplit(site.thank_you_url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"callback_id": str(request_id)})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def create_callback(request: web.Request) -> web.StreamResponse:
    app = request.app
    config: Config = app[keys.CONFIG]
    limits: IntakeLimits = app[keys.LIMITS]
    metrics = app[keys.METRICS]
    ip = client_ip(request, app[keys.TRUSTED_PROXIES])
    is_form = request.content_type in FORM_TYPES
    components = app[keys.COMPONENTS]
    try:
        if components is not None and components.draining:
            raise ApiError(503, "shutting_down", "this server is restarting; try again in a moment",
                           headers=_retry_after(config.http.retry_after_seconds))
        body, is_form = await read_body(request, config)
        if limits.per_ip is not None and ip:
            wait = limits.per_ip.take(ip)
            if wait:
                raise ApiError(429, "rate_limited", "too many requests from this address", headers=_retry_after(wait))
        site = authenticate_site(request, config, body)
        if limits.per_site is not None:
            wait = limits.per_site.take(site.id)
            if wait:
                raise ApiError(429, "rate_limited", "too many requests for this site", headers=_retry_after(wait))
        idem = request.headers.get("Idempotency-Key")
        if idem is not None and (not idem.strip() or len(idem) > MAX_IDEMPOTENCY_KEY):
            raise ApiError(
                400, "invalid_idempotency_key", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
                [FieldError("Idempotency-Key", "invalid")],
            )
        now = _now()
        body.pop("site_key", None)
        try:
            inp = validate_body(body, site, now)
        except InvalidRequest as exc:
            raise ApiError(422, "validation_failed", "the request has invalid fields", exc.errors) from None
        meta = store.RequestMeta(
            client_ip=ip,
            user_agent=(request.headers.get("User-Agent") or "")[:500] or None,
            idempotency_key=idem.strip() if idem else None,
        )
        holder = app[keys.RULES]
        plan = holder.route(to_request(site.id, inp, now), now) if holder is not None and holder.loaded else None
        decision = decide(plan, inp, now)
        try:
            stored = await store.store_callback(app[keys.WRITER], site, inp, meta, config.rate_limits.per_phone,
                                                decision)
        except store.PhoneRateLimited as exc:
            raise ApiError(
                429, "rate_limited", "too many requests for this phone number",
                [FieldError("phone", "too many requests for this number; try again later")],
                headers=_retry_after(exc.retry_after),
            ) from None
        except store.PhoneDailyCapReached as exc:
            raise ApiError(
                429, "phone_daily_limit", "this phone number has asked for too many calls today",
                [FieldError("phone", f"at most {site.phone.max_per_day} requests per number in 24 hours; "
                                     "try again later")],
                headers=_retry_after(exc.retry_after),
            ) from None
        except store.SiteDailyCapReached as exc:  # counted by the rejection metric; no log line per request
            raise ApiError(
                429, "site_daily_limit", "this site takes no more callback requests today; try again later",
                headers=_retry_after(exc.retry_after),
            ) from None
        except store.IdempotencyConflict:
            raise ApiError(
                422, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
                [FieldError("Idempotency-Key", "already used for a different request")],
            ) from None
        except DatabaseUnavailable as exc:
            log.warning("intake_database_unavailable", error=str(exc))
            raise _db_unavailable(config) from None
    except ApiError as exc:
        metrics.rejected(exc.code)
        if is_form and _wants_html(request):
            lines = [exc.message] + [f"{f.field}: {f.reason}" for f in exc.fields]
            resp = _html_page("We couldn't take your request", [*lines, "Please go back and try again."], exc.status)
            resp.headers.update(exc.headers)
            return resp
        raise

    metrics.accepted(site.id, stored.created)
    work = app[keys.WORK]
    if stored.created and work is not None and stored.state in (states.QUEUED, states.SCHEDULED):
        work.poke()
    status = 202 if (stored.created or stored.replayed) and stored.state != states.REJECTED else 200
    if stored.created:
        log.info(
            "callback_accepted", callback_id=str(stored.id), site=site.id, state=stored.state,
            phone=inp.phone.e164, page_url=inp.page_url,
        )
    else:
        log.info("callback_existing_returned", callback_id=str(stored.id), site=site.id, replayed=stored.replayed)
    payload: dict[str, Any] = {
        "id": str(stored.id),
        "state": stored.state,
        "status_url": _status_url(config, stored.id),
        "message": STATE_MESSAGES[stored.state],
        "duplicate": not stored.created and not stored.replayed,
    }
    if stored.state == states.REJECTED and decision.reject_message:
        payload["message"] = decision.reject_message
    if stored.state == states.SCHEDULED:
        payload["scheduled_for"] = stored.due_at.isoformat()
    headers = {"Location": payload["status_url"]}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    if is_form and _wants_html(request):
        target = _thank_you_redirect(site, stored.id)
        if target:
            raise web.HTTPSeeOther(target)
        return _html_page("Thank you", [f"We've got your request. {payload['message']}"], status)
    return json_response(payload, status, headers)


def parse_request_id(request: web.Request) -> uuid.UUID:
    """The ``{id}`` of a callback URL; 404 for anything that is not a request id."""
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "not_found", "no such callback request") from None


async def get_callback(request: web.Request) -> web.Response:
    request_id = parse_request_id(request)
    row = await store.fetch_status(request.app[keys.DB], request_id)  # DatabaseUnavailable -> 503 (middleware)
    if row is None:
        raise ApiError(404, "not_found", "no such callback request")
    return json_response(public_status(row), headers={"Cache-Control": "no-store"})


async def cancel_callback(request: web.Request) -> web.Response:
    request_id = parse_request_id(request)
    row, previous = await store.cancel(request.app[keys.DB], request_id)  # DatabaseUnavailable -> 503
    if row is None:
        raise ApiError(404, "not_found", "no such callback request")
    if row["state"] != states.CANCELLED:
        raise ApiError(
            409, "not_cancellable",
            f"the request can no longer be cancelled (it is {row['state']})",
        )
    if previous != states.CANCELLED:
        log.info("callback_cancelled", callback_id=str(request_id), previous_state=previous)
    return json_response(public_status(row))


def trusted_networks(config: Config) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p, strict=False) for p in config.http.trusted_proxies]
