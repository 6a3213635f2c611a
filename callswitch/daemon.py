"""The long-running service: HTTP intake and the dialer on top of a Postgres pool.

Start-up: the routing rules are loaded before anything starts (an invalid file stops
start-up, exit 78). Start-up never crashes because Postgres or Asterisk is down: the pool is
created in the background with capped backoff (intake answers 503 meanwhile), migrations
are applied as soon as Postgres is reachable, then the dialer starts and its AMI clients
keep retrying. systemd is told READY=1 once Postgres, the schema and every Asterisk are up,
or after ``READY_WAIT`` seconds with a STATUS saying what is degraded.

SIGHUP and a change of the routing file reload the rules; an invalid new file keeps the old
ones. SIGTERM/SIGINT drain: intake answers 503 with Retry-After, the dialer stops claiming,
calls in progress may finish up to ``dialing.drain_timeout``, queued work held by this node is
handed back, then the process exits 0. A second signal exits at once (everything accepted is
already durable in Postgres; another node takes over the calls when their leases lapse).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field

from aiohttp import web

from callswitch.config import Config
from callswitch.db.migrate import migrate
from callswitch.db.pool import Database, is_unavailable
from callswitch.db.statistics import keep_statistics
from callswitch.db.wakeup import WorkSignal
from callswitch.dialer.worker import Dialer
from callswitch.intake.app import create_app
from callswitch.logs import get_logger
from callswitch.metrics import Metrics
from callswitch.notify.notifier import Notifier
from callswitch.ops import httpserver
from callswitch.ops.health import Components
from callswitch.ops.sdnotify import SystemdNotifier
from callswitch.routing.reload import RulesHolder, watch_file
from callswitch.yamlsrc import SourceError

log = get_logger("callswitch.daemon")
READY_WAIT = 15.0  # seconds to wait for Postgres and Asterisk before reporting READY=1 as degraded


@dataclass
class Service:
    config: Config
    metrics: Metrics = field(default_factory=Metrics)
    rules: RulesHolder | None = None
    demo: bool = False
    shutdown_deadline: float = 30.0
    systemd: SystemdNotifier = field(default_factory=SystemdNotifier)
    db: Database | None = None
    work: WorkSignal | None = None
    dialer: Dialer | None = None
    notifier: Notifier | None = None
    components: Components | None = None
    runner: web.AppRunner | None = None
    schema_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.db = Database(self.config.database)
        self.db.connect_in_background()
        self.components = Components(self.db, self.metrics, self.rules)
        self._tasks.append(loop.create_task(self._migrate_when_connected()))
        if self.rules is not None:
            self._tasks.append(loop.create_task(
                watch_file(self.rules, on_reload=lambda ok: self._log_reload(ok, "file changed"))))
        self.work = WorkSignal(self.db)
        self._tasks.append(loop.create_task(self.work.run()))
        app = create_app(self.config, self.db, self.metrics, rules=self.rules, work=self.work, demo=self.demo,
                         components=self.components)
        self.runner = httpserver.make_runner(app, self.config.http)  # header/body limits, slow-client deadlines
        await self.runner.setup()
        await httpserver.start_site(self.runner, self.config.http, backlog=512)
        log.info("http_listening", host=self.config.http.host, port=self.config.http.port,
                 public_url=self.config.http.public_url)
        self.systemd.start_watchdog()
        self._tasks.append(loop.create_task(self._report_ready()))

    async def _report_ready(self) -> None:
        """READY=1 once everything is up, or after READY_WAIT seconds as explicitly degraded."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT
        while loop.time() < deadline and self._degraded():  # noqa: ASYNC110 - several conditions, polled
            await asyncio.sleep(0.2)
        problems = self._degraded()
        status = "ready" if not problems else "degraded: " + "; ".join(problems)
        self.systemd.ready(status)
        log.info("service_ready", status=status)
        while True:  # keep STATUS= current for `systemctl status`
            await asyncio.sleep(5)
            now = self._degraded()
            if now != problems:
                problems = now
                self.systemd.status("ready" if not now else "degraded: " + "; ".join(now))

    def _degraded(self) -> list[str]:
        out = []
        if self.db is None or self.db.pool is None:
            out.append("Postgres unreachable")
        elif not self.schema_ready.is_set():
            out.append("schema not migrated yet")
        if self.dialer is not None:
            out += [f"Asterisk {c.server.name} not logged in" for c in self.dialer.clients if not c.connected]
        return out

    def reload_rules(self, why: str) -> None:
        """SIGHUP: load the routing file again; an invalid file leaves the running rules in place."""
        if self.rules is None:
            log.info("rules_reload_skipped", reason="no routing file configured")
            return
        self._log_reload(self.rules.reload(), why)

    def _log_reload(self, ok: bool, why: str) -> None:
        assert self.rules is not None
        status = self.rules.status()
        self.metrics.rules_reloads.labels(result="ok" if ok else "failed").inc()
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
                self._tasks.append(asyncio.get_running_loop().create_task(keep_statistics(self.db)))
                await self._start_notifier()
                await self._start_dialer()
                return
            except Exception as exc:
                if not is_unavailable(exc):
                    log.error("migration_failed", error=str(exc))
                    raise
                log.warning("migration_waiting_for_database", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def _start_notifier(self) -> None:
        """Webhooks and lead e-mails from the outbox (it also purges the outbox when they are off)."""
        assert self.db is not None
        holder = self.rules
        self.notifier = Notifier(
            self.db, self.config.notifications,
            (lambda: holder.rules) if holder is not None else None,  # raises until loaded: e-mails wait
            node=self.config.dialing.node or None,
            site_zones={s.id: s.time_zone for s in self.config.sites.values()},
        )
        await self.notifier.start()

    async def _start_dialer(self) -> None:
        if self.rules is None:
            log.warning("dialer_disabled", reason="no routing file: requests are stored but not dialled")
            return
        assert self.db is not None
        self.dialer = Dialer(self.config, self.db, self.rules, work=self.work, metrics=self.metrics)
        if self.components is not None:
            self.components.dialer = self.dialer
        await self.dialer.start()

    async def drain(self) -> None:
        """Stop taking work, let calls finish (up to the deadline), hand back what is left."""
        log.info("draining", deadline_s=self.shutdown_deadline,
                 calls_in_progress=self.dialer.active_calls if self.dialer else 0)
        self.systemd.stopping("draining: finishing calls in progress")
        if self.components is not None:
            self.components.draining = True
        if self.dialer is not None:
            await self.dialer.stop(self.shutdown_deadline)
            self.dialer = None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.systemd.stop_watchdog()
        if self.dialer is not None:
            await self.dialer.stop(self.shutdown_deadline)
        if self.notifier is not None:
            await self.notifier.stop()
        if self.runner is not None:
            await self.runner.cleanup()
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

    def on_stop_signal() -> None:
        if stop.is_set():
            log.warning("second_stop_signal", action="exiting now; accepted requests are safe in Postgres")
            os._exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_stop_signal)
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
    await service.drain()
    await service.stop()
    return 0
