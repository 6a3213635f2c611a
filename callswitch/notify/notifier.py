"""The delivery loop: outbox events -> deliveries (fan-out) -> webhook POSTs and lead e-mails.

Two steps, both safe with several daemons on one database:

1. **Fan-out.** Events the trigger put in ``event_outbox`` are locked with ``FOR UPDATE SKIP LOCKED``;
   in one transaction the payload is built from the database, one ``notification_deliveries`` row is
   created per matching webhook subscription and per lead e-mail, and the event is marked done.
2. **Delivery.** Due deliveries are *claimed* (``FOR UPDATE SKIP LOCKED``; the claim pushes
   ``next_attempt_at`` past the longest send timeout and commits before anything is sent), sent, and
   the result recorded by the claim holder only. A daemon that dies mid-attempt leaves a claim that
   lapses, and another daemon tries again: delivery is at least once, never twice in parallel.

Failures are retried with capped exponential backoff and jitter until ``retry.give_up_after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg

from callswitch import __version__
from callswitch.aio import wait_event
from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.logs import get_logger
from callswitch.notify import email as lead_email
from callswitch.notify.config import (
    FINAL_EVENT_TYPES,
    LEAD_MISSED,
    LEAD_ROUTED,
    MISSED_EVENT_TYPES,
    ROUTED_EVENT_TYPES,
    NotificationsConfig,
)
from callswitch.notify.payload import build_payload, encode
from callswitch.notify.signing import SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from callswitch.routing.rules import Rules

log = get_logger("callswitch.notify")

RulesProvider = Callable[[], "Rules | None"]
PURGE_EVERY = 3600.0
SETTLE_RECHECK = 1.0  # a final event waiting for its attempt's records is looked at again after this
RULES_RECHECK = 5.0  # an event needing lead e-mails waits this long for the routing rules to be loaded
FAN_OUT_FAILED_RECHECK = 60.0  # an event whose fan-out raised (a bug) is tried again after this
MAX_ERROR_TEXT = 500


@dataclass(frozen=True)
class Result:
    ok: bool
    status: int | None = None  # HTTP status or SMTP code
    error: str | None = None
    permanent: bool = False  # do not retry
    retry_after: float | None = None  # the receiver asked for this delay (Retry-After)


class Notifier:
    """Runs fan-out and delivery for this daemon until :meth:`stop`.

    ``rules`` returns the current routing rules (for the destinations' ``notify_email`` and label);
    None when there is no routing file. If it raises (not loaded yet), events that need a lead e-mail
    wait for it. ``site_zones`` maps site id -> IANA time zone for the times in e-mails.
    """

    def __init__(
        self,
        db: Database,
        config: NotificationsConfig,
        rules: RulesProvider | None = None,
        *,
        node: str | None = None,
        site_zones: Mapping[str, str] | None = None,
        batch: int = 100,
    ):
        self.db = db
        self.config = config
        self.rules = rules or (lambda: None)
        self.node = node or f"{socket.gethostname()}-{os.getpid()}"
        self.site_zones = dict(site_zones or {})
        self.batch = batch
        self.session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_purge = 0.0
        timeouts = [w.timeout for w in config.webhooks] + ([config.smtp.timeout] if config.smtp else [])
        self.claim_seconds = max(timeouts, default=10.0) + 30.0

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notifier")
        log.info("notifier_started", node=self.node, webhooks=len(self.config.webhooks),
                 lead_emails_routed=self.config.lead_emails.routed, lead_emails_missed=self.config.lead_emails.missed)

    async def stop(self, deadline: float = 15.0) -> None:
        """Finish the attempts in flight (at most ``deadline`` s); unfinished claims lapse and are retried later."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            done, _ = await asyncio.wait({task}, timeout=deadline)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.session is not None:
            await self.session.close()
            self.session = None

    @property
    def subscribed(self) -> bool:
        """Does any event lead to a notification: a webhook (any site) or lead e-mails?"""
        lead = self.config.lead_emails
        return bool(self.config.webhooks) or lead.routed or lead.missed

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                busy = await self.run_once()
                delay = 0.5
            except Exception as exc:
                waiting = is_unavailable(exc) or isinstance(exc, asyncpg.UndefinedTableError)
                if waiting:
                    log.warning("notifier_waiting_for_database", error=str(exc) or type(exc).__name__, retry_in=delay)
                else:
                    log.exception("notifier_failed", retry_in=delay)
                await self._sleep(delay)
                delay = min(30.0, delay * 2)
                continue
            if not busy:
                await self._sleep(self.config.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        await wait_event(self._wake, seconds)

    async def run_once(self) -> bool:
        """One pass: fan out new events, attempt due deliveries, purge old ones now and then. True if busy."""
        fanned = await self.fan_out()
        attempted = await self.deliver_due()
        if time.monotonic() - self._last_purge > PURGE_EVERY:
            self._last_purge = time.monotonic()
            await self.purge()
        return fanned > 0 or attempted > 0

    # -- fan-out --------------------------------------------------------------------------------------
    async def fan_out(self) -> int:
        """Turn pending outbox events into deliveries; return how many events were done."""
        done = 0
        async with self.db.acquire() as conn, conn.transaction():
            rows = await conn.fetch(Q.outbox_claim_pending, self.batch)
            if rows and not self.subscribed:
                # nothing is subscribed to anything: the whole batch is done in one statement (no per-event
                # round trips on a daemon that sends no notifications)
                await conn.execute(Q.outbox_mark_all_fanned_out, [r["id"] for r in rows])
                return len(rows)
            for row in rows:
                try:
                    async with conn.transaction():  # a savepoint: one bad event does not block the others
                        if await self._fan_out_one(conn, row):
                            done += 1
                except Exception as exc:
                    if is_unavailable(exc):
                        raise
                    log.exception("fan_out_failed", event_id=str(row["event_uuid"]), kind=row["kind"])
                    await conn.execute(Q.outbox_postpone, row["id"], FAN_OUT_FAILED_RECHECK)
        return done

    async def _fan_out_one(self, conn: asyncpg.Connection, row: asyncpg.Record) -> bool:
        kind = row["kind"]
        request = await conn.fetchrow(Q.outbox_request, row["request_id"])
        if request is None:  # pragma: no cover - the outbox row goes with its request
            await conn.execute(Q.outbox_mark_fanned_out, row["id"], None)
            return True
        waited = (datetime.now(UTC) - row["created_at"]).total_seconds()
        if kind in FINAL_EVENT_TYPES and request["attempt_running"] and waited < self.config.settle_timeout:
            # the final state is written before the attempt's last legs report their end: wait for the CDRs
            await conn.execute(Q.outbox_postpone, row["id"], SETTLE_RECHECK)
            return False
        webhooks = self.config.subscriptions(request["site"], kind)
        try:
            emails = self._lead_emails(kind, request)
        except Exception as exc:
            log.warning("notifier_waiting_for_rules", event_id=str(row["event_uuid"]), error=str(exc))
            await conn.execute(Q.outbox_postpone, row["id"], RULES_RECHECK)
            return False
        if not webhooks and not emails:
            await conn.execute(Q.outbox_mark_fanned_out, row["id"], None)
            return True
        payload = await build_payload(conn, row, request)
        for sub in webhooks:
            await conn.execute(Q.delivery_insert, row["id"], "webhook", sub.name, sub.url, None)
        for subscription, address, destination in emails:
            await conn.execute(Q.delivery_insert, row["id"], "email", subscription, address, destination)
        await conn.execute(Q.outbox_mark_fanned_out, row["id"], payload)
        log.debug("event_fanned_out", event_id=str(row["event_uuid"]), kind=kind, webhooks=len(webhooks),
                  emails=len(emails))
        return True

    def _lead_emails(self, kind: str, request: asyncpg.Record) -> list[tuple[str, str, str]]:
        """(subscription, address, destination) of the lead cards this event sends; raises if rules are missing."""
        lead = self.config.lead_emails
        if kind in ROUTED_EVENT_TYPES and lead.routed:
            subscription, name = LEAD_ROUTED, request["route_destination"]
        elif kind in MISSED_EVENT_TYPES and lead.missed:
            subscription, name = LEAD_MISSED, request["last_destination"] or request["route_destination"]
        else:
            return []
        if not name or request["anonymised_at"] is not None:
            return []
        rules = self.rules()
        if rules is None:
            return []
        destination = rules.destinations.get(name)
        if destination is None or not destination.notify_email:
            return []
        return [(subscription, destination.notify_email, name)]

    # -- delivery -------------------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Claim and attempt the due deliveries (up to ``concurrency`` at once); return how many."""
        async with self.db.acquire() as conn:
            claimed = list(await conn.fetch(Q.delivery_claim_due, self.node, self.config.concurrency,
                                            self.claim_seconds))
        if claimed:
            await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def _deliver(self, row: asyncpg.Record) -> None:
        try:
            if row["channel"] == "webhook":
                result = await self._post(row)
            else:
                result = await self._mail(row)
        except Exception as exc:
            log.exception("delivery_crashed", delivery=row["id"])
            result = Result(False, error=f"internal error: {type(exc).__name__}: {exc}")
        await self._record(row, result)

    async def _post(self, row: asyncpg.Record) -> Result:
        sub = self.config.subscription(row["subscription"])
        if sub is None:
            return Result(False, error="the subscription is no longer in the configuration", permanent=True)
        if self.session is None:
            self.session = aiohttp.ClientSession(headers={"User-Agent": f"callswitch/{__version__}"})
        body = encode(row["payload"])
        headers = {
            "Content-Type": "application/json",
            "Callswitch-Event-Id": str(row["event_uuid"]),
            "Callswitch-Event-Type": row["kind"],
            "Callswitch-Delivery": str(row["id"]),
            "Callswitch-Delivery-Attempt": str(row["attempts"]),
            SIGNATURE_HEADER: sign(sub.secret, body, int(time.time())),
        }
        try:
            async with self.session.post(sub.url, data=body, headers=headers, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=sub.timeout)) as resp:
                text = (await resp.content.read(2048)).decode("utf-8", "replace")
                if 200 <= resp.status < 300:
                    return Result(True, resp.status)
                return Result(False, resp.status, _short(f"HTTP {resp.status} {resp.reason or ''}: {text}"),
                              retry_after=_retry_after(resp.headers.get("Retry-After")))
        except TimeoutError:
            return Result(False, error=f"timeout after {sub.timeout:g}s")
        except aiohttp.ClientError as exc:
            return Result(False, error=_short(f"{type(exc).__name__}: {exc}"))

    async def _mail(self, row: asyncpg.Record) -> Result:
        smtp = self.config.smtp
        if smtp is None:
            return Result(False, error="notifications.smtp is not configured", permanent=True)
        payload: dict[str, Any] = row["payload"] or {}
        label = row["destination"] or ""
        with contextlib.suppress(Exception):
            rules = self.rules()
            dest = rules.destinations.get(row["destination"]) if rules is not None else None
            if dest is not None and dest.label:
                label = dest.label
        msg = lead_email.build_lead_email(
            payload, row["subscription"], to=row["target"], sender=smtp.sender, destination=label,
            time_zone=self.site_zones.get(payload.get("site", ""), "UTC"),
            message_id=lead_email.message_id(str(row["event_uuid"]), row["subscription"], smtp.sender),
        )
        try:
            code = await lead_email.send(smtp, msg)
        except lead_email.SendError as exc:
            return Result(False, exc.code, _short(str(exc)), permanent=exc.permanent)
        return Result(True, code)

    async def _record(self, row: asyncpg.Record, result: Result) -> None:
        ident = {"delivery": row["id"], "channel": row["channel"], "subscription": row["subscription"],
                 "event_id": str(row["event_uuid"]), "kind": row["kind"], "attempt": row["attempts"]}
        if result.ok:
            args: tuple[Any, ...] = (row["id"], self.node, result.status, row["attempts"])
            query = Q.delivery_succeeded
            log.info("notification_delivered", status=result.status, **ident)
        else:
            age = (row["claimed_at"] - row["created_at"]).total_seconds()
            give_up = result.permanent or age >= self.config.retry.give_up_after
            delay = 0.0 if give_up else self.backoff(row["attempts"], result.retry_after)
            args = (row["id"], self.node, result.status, result.error, "failed" if give_up else "pending", delay,
                    row["attempts"])
            query = Q.delivery_failed
            if give_up:
                log.error("notification_given_up", error=result.error, status=result.status, **ident)
            else:
                log.warning("notification_failed", error=result.error, status=result.status,
                            retry_in=round(delay, 3), **ident)
        # A result that cannot be written is not lost: the claim lapses and the delivery is attempted again.
        wait = 0.25
        for _ in range(5):
            try:
                async with self.db.acquire() as conn:
                    await conn.execute(query, *args)
                return
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                await asyncio.sleep(wait)
                wait *= 2

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: capped exponential, half jitter."""
        policy = self.config.retry
        cap = min(policy.max, policy.initial * 2 ** min(attempts - 1, 40))
        delay = cap / 2 + random.uniform(0, cap / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.max))
        return delay

    # -- housekeeping ---------------------------------------------------------------------------------
    async def purge(self) -> int:
        """Delete events delivered (or given up) more than ``keep`` ago; they hold personal data."""
        total = 0
        async with self.db.acquire() as conn:
            while True:
                result = await conn.execute(Q.outbox_purge, self.config.keep, 1000)
                n = int(result.split()[-1])
                total += n
                if n < 1000:
                    break
        if total:
            log.info("notifications_purged", events=total)
        return total


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
