"""The connection pool, and telling "Postgres is unreachable" apart from real errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from callswitch.config import DatabaseConfig
from callswitch.logs import get_logger

log = get_logger("callswitch.db")


class DatabaseUnavailable(Exception):
    """Postgres can't be reached right now; the caller should answer 503 and retry later."""


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the server is down or the connection broke."""
    return isinstance(
        exc,
        OSError
        | ConnectionError
        | TimeoutError
        | asyncpg.InterfaceError  # includes ConnectionDoesNotExistError
        | asyncpg.PostgresConnectionError  # SQLSTATE class 08
        | asyncpg.CannotConnectNowError
        | asyncpg.OperatorInterventionError  # 57P01 admin shutdown, ...
        | asyncpg.TooManyConnectionsError
        | asyncpg.exceptions._base.InternalClientError  # protocol state lost with a broken connection
        | DatabaseUnavailable,
    )


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to undo.

    asyncpg's default reset sends ``RESET ALL; UNLISTEN *; CLOSE ALL; SELECT pg_advisory_unlock_all()``
    on every release: a whole extra round trip per request. callswitch leaves no session state on
    pooled connections (advisory locks are transaction-level or released in ``finally``; LISTEN
    uses a dedicated connection), and asyncpg still rolls back any open transaction and drops
    listeners before calling this hook.
    """


class Database:
    """An asyncpg pool that may not exist yet: connecting is retried in the background."""

    def __init__(self, config: DatabaseConfig):
        if not config.dsn:
            raise ValueError("database.dsn is not configured")
        self.config = config
        self.pool: asyncpg.Pool | None = None
        self._connecting: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def connect(self) -> None:
        """Create the pool now; raises if Postgres is unreachable."""
        self.pool = await asyncpg.create_pool(
            self.config.dsn,
            min_size=self.config.min_connections,
            max_size=self.config.max_connections,
            timeout=self.config.connect_timeout,
            command_timeout=self.config.command_timeout,
            init=init_connection,
            max_inactive_connection_lifetime=300,
            reset=_keep_session,
        )
        self.connected.set()

    def connect_in_background(self, max_delay: float = 30.0) -> None:
        """Keep trying to create the pool, with capped backoff, logging each failure."""

        async def loop() -> None:
            delay = 0.5
            while self.pool is None:
                try:
                    await self.connect()
                    log.info("database_connected")
                    return
                except Exception as exc:
                    if not is_unavailable(exc):
                        raise
                    log.warning("database_unreachable", error=str(exc) or type(exc).__name__, retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(max_delay, delay * 2)

        self._connecting = asyncio.get_running_loop().create_task(loop())

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; Postgres being unreachable, here or while the block runs, raises
        :class:`DatabaseUnavailable` (other errors pass through unchanged)."""
        if self.pool is None:
            raise DatabaseUnavailable("not connected to Postgres yet")
        try:
            conn = await self.pool.acquire(timeout=self.config.connect_timeout)
        except Exception as exc:
            if is_unavailable(exc):
                raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc
            raise
        try:
            yield conn
        except Exception as exc:  # the connection broke while in use: same error as failing to get one
            if isinstance(exc, asyncpg.exceptions._base.InternalClientError):
                conn.terminate()  # e.g. "cannot switch to state ...": never hand this connection out again
            if is_unavailable(exc) and not isinstance(exc, DatabaseUnavailable):
                raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc
            raise
        finally:
            try:
                await self.pool.release(conn)
            except Exception as exc:  # a broken connection is discarded by the pool
                log.debug("database_release_failed", error=str(exc))

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 10)
            except (TimeoutError, Exception):
                self.pool.terminate()
            self.pool = None
