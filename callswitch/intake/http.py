"""HTTP plumbing shared by the intake and admin handlers: errors, CORS, client IP, request ids."""

from __future__ import annotations

import ipaddress
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web

from callswitch.config import Config
from callswitch.db.pool import DatabaseUnavailable
from callswitch.intake import keys
from callswitch.intake.validation import FieldError
from callswitch.logs import get_logger

log = get_logger("callswitch.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CORS_ALLOW_HEADERS = "Content-Type, Idempotency-Key, X-Callswitch-Site-Key, X-Request-Id"
CORS_EXPOSE_HEADERS = "Retry-After, Location, X-Request-Id, Idempotent-Replayed"


class ApiError(Exception):
    """An error answered as JSON: ``{"error": code, "message": ..., "fields": [...]}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Iterable[FieldError] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            out["fields"] = [{"field": f.field, "reason": f.reason} for f in self.fields]
        return out


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, default=str, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


_HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def http_exception_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (404, 405, 413, ...) as JSON bodies like ours."""
    code = _HTTP_ERROR_CODES.get(exc.status, "http_error")
    message = exc.reason
    if exc.status == 413:
        message = f"request body too large (at most {request.app[keys.CONFIG].http.max_body_bytes} bytes)"
    response = json_response({"error": code, "message": message}, exc.status)
    if exc.status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def error_response(request: web.Request, exc: Exception) -> web.Response:
    """The JSON answer for an error a handler raised; re-raises what is not an HTTP error."""
    if isinstance(exc, ApiError):
        return json_response(exc.body(), exc.status, exc.headers)
    if isinstance(exc, DatabaseUnavailable):
        retry = request.app[keys.CONFIG].http.retry_after_seconds
        return json_response(
            {"error": "database_unavailable", "message": "the service can't reach its database right now; "
             "try again shortly"}, 503, {"Retry-After": str(retry)})
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return http_exception_response(request, exc)
    raise exc


def error_middleware() -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get("X-Request-Id", "")
        if not _REQUEST_ID_RE.match(rid):
            rid = uuid.uuid4().hex
        request[keys.REQUEST_ID] = rid
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except (ApiError, DatabaseUnavailable, web.HTTPException) as exc:
            response = error_response(request, exc)
        except Exception:
            log.exception("unhandled_error", method=request.method, path=request.path)
            response = json_response(
                {"error": "internal_error", "message": "internal error; it has been logged", "request_id": rid}, 500
            )
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        response.headers["X-Request-Id"] = rid
        log.info(
            "http_request",
            method=request.method,
            path=request.rel_url.path,
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 2),
            request_id=rid,
        )
        return response

    return middleware


def cors_middleware(config: Config) -> Any:
    """Answer CORS for origins some site allows; admin paths never get CORS headers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = bool(origin) and not request.path.startswith("/v1/admin") and config.origin_allowed_anywhere(
            origin or ""
        )
        if request.method == "OPTIONS" and origin and request.headers.get("Access-Control-Request-Method"):
            if not allowed:
                raise ApiError(403, "origin_not_allowed", f"origin {origin} is not allowed")
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            try:
                response = await handler(request)
            except (ApiError, DatabaseUnavailable, web.HTTPException) as exc:
                response = error_response(request, exc)  # so that error answers carry CORS headers too
        if allowed and origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        if origin:
            response.headers["Vary"] = "Origin"
        return response

    return middleware


def client_ip(request: web.Request, trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """The peer address, or for a trusted proxy the right-most untrusted X-Forwarded-For entry."""
    peer = request.remote
    if not peer:
        return None
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return None
    if trusted and any(addr in net for net in trusted):
        forwarded = request.headers.get("X-Forwarded-For", "")
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            try:
                hop_addr = ipaddress.ip_address(hop)
            except ValueError:
                break
            if not any(hop_addr in net for net in trusted):
                return str(hop_addr)
    return str(addr)
