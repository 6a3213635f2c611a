"""The HTTP listener's limits against slow and oversized clients (issue 8).

aiohttp is told its limits explicitly instead of relying on its defaults:

* request line and each header line at most ``http.max_header_bytes``, at most ``http.max_headers``
  header lines (aiohttp answers 400 and closes the connection beyond either);
* ``keepalive_timeout`` = ``http.header_timeout`` (aiohttp's default is an hour);
* bodies: ``client_max_size`` (``http.max_body_bytes``, set by the application) and
  ``http.body_timeout`` (enforced where the body is read, :func:`callswitch.intake.api.read_body`).

On top of that a :class:`ConnectionGuard` gives every connection a deadline for its next request
head: ``http.header_timeout`` from the moment it is accepted, and again from the end of each
request it made. A client that trickles its request line or headers byte by byte (slowloris), or
opens a connection and sends nothing, is disconnected when the deadline passes whatever the aiohttp
version does; while a request is being handled (a body being read, a status stream open) the
connection has no deadline. The guard sees connections through the protocol factory of the
listening socket (:class:`GuardedTCPSite`) and requests through a middleware.

aiohttp logs every malformed request (oversized header, bad request line) with a traceback and
the first bytes of the offending line, unfiltered; those records are dropped here and logged as
one ``http_malformed_request`` debug line instead, so a flood of garbage cannot flood the log.

Use :func:`make_runner` and :func:`start_site` instead of ``web.AppRunner``/``web.TCPSite``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from callswitch.config import HttpConfig
from callswitch.logs import get_logger

log = get_logger("callswitch.http")

SERVER_LOGGER = "callswitch.http.server"
# After an answer sent before its request body was read (413, 408), aiohttp keeps reading and
# discarding the rest for this long so that the client sees the answer rather than a reset.
LINGERING_TIME = 5.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConnectionGuard:
    """Disconnects a connection whose next request head does not arrive within ``header_timeout``."""

    def __init__(self, header_timeout: float):
        self.header_timeout = header_timeout
        self.disconnected = 0  # connections closed for missing their deadline
        self._timers: dict[RequestHandler, asyncio.TimerHandle] = {}

    def protocol_factory(self, make: Callable[[], RequestHandler]) -> Callable[[], RequestHandler]:
        def factory() -> RequestHandler:
            protocol = make()
            self._arm(protocol)
            return protocol

        return factory

    @property
    def watched(self) -> int:
        """Connections with a running deadline (closed ones are forgotten when theirs passes)."""
        return len(self._timers)

    def request_started(self, protocol: RequestHandler) -> None:
        timer = self._timers.pop(protocol, None)
        if timer is not None:
            timer.cancel()

    def request_finished(self, protocol: RequestHandler) -> None:
        if protocol.transport is not None:
            self._arm(protocol)

    def _arm(self, protocol: RequestHandler) -> None:
        old = self._timers.pop(protocol, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[protocol] = loop.call_later(self.header_timeout, self._expire, protocol)

    def _expire(self, protocol: RequestHandler) -> None:
        self._timers.pop(protocol, None)
        if protocol.transport is None:  # closed meanwhile
            return
        self.disconnected += 1
        peer = protocol.transport.get_extra_info("peername")
        # debug: one line per dropped connection would let a slowloris flood the log
        log.debug("http_request_head_timeout", peer=peer[0] if isinstance(peer, tuple) else None,
                  timeout_s=self.header_timeout)
        protocol.force_close()

    def middleware(self) -> Any:
        guard = self

        @web.middleware
        async def connection_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
            protocol = request.protocol
            guard.request_started(protocol)
            try:
                return await handler(request)
            finally:
                guard.request_finished(protocol)

        return connection_deadline

    def cancel_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


GUARD = web.AppKey("callswitch_connection_guard", ConnectionGuard)


class _MalformedRequests(logging.Filter):
    """aiohttp's 'Error handling request' records for client protocol errors become one debug line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            log.debug("http_malformed_request", status=exc.code, error=type(exc).__name__)
            return False
        return True


def server_logger() -> logging.Logger:
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, _MalformedRequests) for f in logger.filters):
        logger.addFilter(_MalformedRequests())
    return logger


def runner_options(http: HttpConfig) -> dict[str, Any]:
    """Keyword arguments of ``web.AppRunner`` (passed on to every connection's handler)."""
    return {
        "access_log": None,
        "handle_signals": False,
        "keepalive_timeout": http.header_timeout,
        "max_line_size": http.max_header_bytes,
        "max_field_size": http.max_header_bytes,
        "max_headers": http.max_headers,
        "lingering_time": min(LINGERING_TIME, http.header_timeout),
        "logger": server_logger(),
    }


def make_runner(app: web.Application, http: HttpConfig) -> web.AppRunner:
    """An AppRunner with the limits of ``http``; call before ``runner.setup()`` (which freezes the app)."""
    guard = ConnectionGuard(http.header_timeout)
    app[GUARD] = guard
    app.middlewares.insert(0, guard.middleware())
    app.on_cleanup.append(_cancel_deadlines)
    return web.AppRunner(app, **runner_options(http))


async def _cancel_deadlines(app: web.Application) -> None:
    app[GUARD].cancel_all()


class GuardedTCPSite(web.BaseSite):
    """A TCP listener whose connections are watched by a :class:`ConnectionGuard`."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, *, guard: ConnectionGuard, backlog: int = 128,
    ):
        super().__init__(runner, backlog=backlog)
        self.host = host
        self.port = port  # the bound port once started (for port 0)
        self.guard = guard

    @property
    def name(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard.protocol_factory(server), self.host, self.port, backlog=self._backlog,
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]


async def start_site(runner: web.AppRunner, http: HttpConfig, *, backlog: int = 512,
                     port: int | None = None) -> GuardedTCPSite:
    """Listen on ``http.host:http.port`` (or ``port``) with the runner made by :func:`make_runner`."""
    site = GuardedTCPSite(runner, http.host, http.port if port is None else port,
                          guard=runner.app[GUARD], backlog=backlog)
    await site.start()
    return site
