"""The long-running service: HTTP intake and the dialer on top of a Postgres pool.

The routing rules are loaded before anything starts (an invalid file stops start-up);
SIGHUP and a change of the file reload them, and an invalid new file keeps the old rules.
Start-up never crashes because Postgres is down: the pool is created in the background
with capped backoff (intake answers 503 meanwhile) and migrations are applied as soon
as the database is reachable. SIGTERM/SIGINT stop the listener and close the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field

from aiohttp import web

from callswitch.config import Config
from callswitch.db.migrate import migrate
from callswitch.db.pool import Database, is_unavailable
from callswitch.db.wakeup import WorkSignal
from callswitch.dialer.worker import Dialer
from callswitch.intake.app import create_app
from callswitch.logs import get_logger
from callswitch.metrics import Metrics
from callswitch.routing.reload import RulesHolder, watch_file
from callswitch.yamlsrc import SourceError

log = get_logger("callswitch.daemon")


@dataclass
class Service:
    config: Config
    metrics: Metrics = field(default_factory=Metrics)
    db: Database | None = None
    rules: RulesHolder | None = None
    work: WorkSignal | None = None
    dialer: Dialer | None = None
    shutdown_deadline: float = 30.0
    demo: bool = False
    runner: web.AppRunner | None = None
    schema_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.db = Database(self.config.database)
        self.db.connect_in_background()
        self._tasks.append(asyncio.get_running_loop().create_task(self._migrate_when_connected()))
        if self.rules is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(
                watch_file(self.rules, on_reload=lambda ok: self._log_reload(ok, "file changed"))))
        self.work = WorkSignal(self.db)
        self._tasks.append(asyncio.get_running_loop().create_task(self.work.run()))
        app = create_app(self.config, self.db, self.metrics, rules=self.rules, work=self.work, demo=self.demo)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.http.host, self.config.http.port, backlog=512)
        await site.start()
        log.info("http_listening", host=self.config.http.host, port=self.config.http.port,
                 public_url=self.config.http.public_url)

    def reload_rules(self, why: str) -> None:
        """SIGHUP: load the routing file again; an invalid file leaves the running rules in place."""
        if self.rules is None:
            log.info("rules_reload_skipped", reason="no routing file configured")
            return
        self._log_reload(self.rules.reload(), why)

    def _log_reload(self, ok: bool, why: str) -> None:
        assert self.rules is not None
        status = self.rules.status()
        if ok:
            log.info("rules_reloaded", why=why, file=str(self.rules.path), generation=status.generation,
                     warnings=status.warnings)
        else:
            log.error("rules_reload_failed", why=why, file=str(self.rules.path), error=status.last_error,
                      kept_generation=status.generation)

    async def _migrate_when_connected(self) -> None:
        assert self.db is not None
        delay = 1.0
        while True:
            await self.db.connected.wait()
            try:
                async with self.db.acquire() as conn:
                    applied = await migrate(conn)
                log.info("schema_ready", applied=applied)
                self.schema_ready.set()
                await self._start_dialer()
                return
            except Exception as exc:
                if not is_unavailable(exc):
                    log.error("migration_failed", error=str(exc))
                    raise
                log.warning("migration_waiting_for_database", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def _start_dialer(self) -> None:
        if self.rules is None:
            log.warning("dialer_disabled", reason="no routing file: requests are stored but not dialled")
            return
        assert self.db is not None
        self.dialer = Dialer(self.config, self.db, self.rules, work=self.work)
        await self.dialer.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.dialer is not None:
            await self.dialer.stop(self.shutdown_deadline)
        if self.db is not None:
            await self.db.close()
        log.info("stopped")


def load_rules(config: Config) -> RulesHolder | None:
    """Load the routing file named by the configuration; raise SourceError if it is invalid."""
    if not config.routing_file:
        return None
    holder = RulesHolder(config.routing_file)
    if not holder.reload():
        raise SourceError(list(holder.last_problems))
    return holder


async def serve(
    config: Config, stop: asyncio.Event | None = None, rules: RulesHolder | None = None, *, demo: bool = False
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); SIGHUP reloads the routing rules."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    service = Service(config, rules=rules, demo=demo, shutdown_deadline=config.dialing.drain_timeout)
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, service.reload_rules, "SIGHUP")
    try:
        await service.start()
    except OSError as exc:
        log.error("cannot_listen", host=config.http.host, port=config.http.port, error=str(exc))
        await service.stop()
        return 1
    await stop.wait()
    log.info("stopping")
    await service.stop()
    return 0
