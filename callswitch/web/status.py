"""Live request status for the widget: one shared Postgres LISTEN connection per daemon.

Contract with the dialer (and anything else that changes a request's state)
--------------------------------------------------------------------------
After **committing** a change of ``callback_requests.state`` (or of anything the public
status shows: ``due_at`` of a scheduled request, ``outcome``), send::

    NOTIFY callswitch_status, '<request id>'      -- SELECT pg_notify('callswitch_status', $1::text)

with the request's UUID as the payload. Sent inside the transaction that made the change,
Postgres delivers it at commit, never before. An empty payload (or ``*``) means "re-check
every request someone is watching" (e.g. after a bulk update). Notifications are hints:
a lost one costs at most :attr:`StatusBroadcaster.poll_interval` seconds, because every
watched request is also re-read at that interval. ``callswitch_requests`` notifications
carrying a request id (intake sends one when a visitor cancels) are treated the same way.

How it works
------------
:class:`StatusBroadcaster` holds one dedicated connection (not a pool connection) that
LISTENs on both channels, reconnecting with capped backoff. Notified ids that somebody
watches are marked dirty; one task reads the dirty ids (and, every ``poll_interval``
seconds, all watched ids) in one query (``get_public_statuses``) and hands the public
status to each :class:`Subscription` of that id. A subscription keeps only the latest
status (a slow reader never builds a backlog). The SSE handler in
:mod:`callswitch.web.events` sends a status only when it differs from the last one sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import asyncpg

from callswitch.aio import wait_event
from callswitch.db.pool import Database, DatabaseUnavailable, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.intake.api import public_status
from callswitch.logs import get_logger

log = get_logger("callswitch.web.status")

STATUS_CHANNEL = "callswitch_status"
REQUESTS_CHANNEL = "callswitch_requests"
MAX_IDS_PER_QUERY = 1000


class Subscription:
    """One reader's view of one request: the latest public status and a "changed" flag."""

    def __init__(self, request_id: uuid.UUID):
        self.request_id = request_id
        self.latest: dict[str, Any] | None = None
        self.closed = False
        self._changed = asyncio.Event()

    def push(self, status: dict[str, Any]) -> None:
        self.latest = status
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for a new status (or closing); False when ``seconds`` passed without one."""
        if not await wait_event(self._changed, seconds):
            return False
        self._changed.clear()
        return True


class StatusBroadcaster:
    def __init__(
        self,
        db: Database,
        *,
        poll_interval: float = 5.0,
        keepalive_interval: float = 30.0,
        max_reconnect_delay: float = 30.0,
    ):
        self.db = db
        self.poll_interval = poll_interval
        self.keepalive_interval = keepalive_interval
        self.max_reconnect_delay = max_reconnect_delay
        self._subs: dict[uuid.UUID, set[Subscription]] = {}
        self._dirty: set[uuid.UUID] = set()
        self._recheck_all = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: asyncpg.Connection | None = None
        self.listening = asyncio.Event()  # set while LISTEN is active
        self.notifications = 0  # notifications received (all channels)
        self.reads = 0  # status queries run

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen_loop()), loop.create_task(self._read_loop())]

    def close_streams(self) -> None:
        """Tell every open stream to end (server shutdown)."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()

    async def stop(self) -> None:
        self.close_streams()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)  # a task that ignores its cancellation can't hang shutdown
        self._tasks = []

    # ------------------------------------------------------------------ readers
    @contextlib.contextmanager
    def subscribe(self, request_id: uuid.UUID) -> Iterator[Subscription]:
        sub = Subscription(request_id)
        self._subs.setdefault(request_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(request_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[request_id]

    @property
    def watched(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def fetch(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
        """Current rows of ``ids`` (unknown ids are absent); DatabaseUnavailable if Postgres is down."""
        ids = list(ids)
        out: dict[uuid.UUID, asyncpg.Record] = {}
        async with self.db.acquire() as conn:  # raises DatabaseUnavailable when Postgres is unreachable
            for i in range(0, len(ids), MAX_IDS_PER_QUERY):
                for row in await conn.fetch(Q.get_public_statuses, ids[i : i + MAX_IDS_PER_QUERY]):
                    out[row["id"]] = row
        self.reads += 1
        return out

    # ------------------------------------------------------------------ notifications
    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.notifications += 1
        payload = payload.strip()
        if not payload or payload == "*":
            if channel == STATUS_CHANNEL:  # intake's "new work" pokes on the other channel carry no id
                self._recheck_all = True
                self._wake.set()
            return
        try:
            request_id = uuid.UUID(payload)
        except ValueError:
            return
        if request_id in self._subs:
            self._dirty.add(request_id)
            self._wake.set()

    async def _listen_loop(self) -> None:
        delay = 0.5
        while True:
            await self.db.connected.wait()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.db.config.dsn, timeout=self.db.config.connect_timeout)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(STATUS_CHANNEL, self._on_notify)
                await conn.add_listener(REQUESTS_CHANNEL, self._on_notify)
                self._conn = conn
                self.listening.set()
                log.info("status_listening", channels=[STATUS_CHANNEL, REQUESTS_CHANNEL])
                delay = 0.5
                self._recheck_all = True  # changes may have been missed while not listening
                self._wake.set()
                while not lost.is_set():
                    if not await wait_event(lost, self.keepalive_interval):
                        await conn.execute("SELECT 1", timeout=self.db.config.connect_timeout)
                log.warning("status_listen_connection_lost", retry_in=delay)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("status_listen_failed")
                else:
                    log.warning("status_listen_unavailable", error=str(exc) or type(exc).__name__, retry_in=delay)
            finally:
                self.listening.clear()
                self._conn = None
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(self.max_reconnect_delay, delay * 2)

    async def _read_loop(self) -> None:
        next_full = time.monotonic() + self.poll_interval
        while True:
            await wait_event(self._wake, next_full - time.monotonic())
            self._wake.clear()
            if self._recheck_all or time.monotonic() >= next_full:
                ids = set(self._subs)
                self._recheck_all = False
                self._dirty.clear()
                next_full = time.monotonic() + self.poll_interval
            else:
                ids = self._dirty & set(self._subs)
                self._dirty.clear()
            if not ids:
                continue
            try:
                rows = await self.fetch(ids)
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable as exc:
                log.debug("status_read_unavailable", error=str(exc))
                continue
            except Exception:
                log.exception("status_read_failed")
                continue
            for request_id, row in rows.items():
                status = public_status(row)
                for sub in list(self._subs.get(request_id, ())):
                    sub.push(status)
