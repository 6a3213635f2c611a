"""Call detail records written in batches: every running attempt's leg inserts and updates, one statement each.

The dialer's flows produce many small changes per leg (ringing, answered, accepted, ended ...). Written one
statement and one commit each, they cost a round trip and a WAL flush apiece; the :class:`LegWriter` gathers
the changes of all attempts for ``interval`` seconds (or until ``max_batch`` legs) and writes them in one
transaction: one ``INSERT ... SELECT FROM unnest(...)`` for new visitor legs, one ``UPDATE ... FROM
unnest(...)`` for changed legs (several changes of one leg are merged first; a NULL leaves a column as it is).
``bench/records.py`` measures the difference. The capacity a leg held is freed by the worker as soon as the leg
ends, not here: the flow may ring the same member again at once.

Ordering: a leg's insert is written in the same transaction as, and before, its updates. :meth:`flush` waits
until everything queued before the call is committed; the worker calls it before it writes an attempt's
outcome, so a finished attempt always has its legs. Legs that need to exist *before* their Originate (agent
legs, the customer leg of customer-first) do not come through here: ``callswitch_reserve_leg`` writes them.

While Postgres is unreachable the batch is kept and retried with backoff (the calls go on in Asterisk; their
records are written late, not lost). A batch Postgres refuses for another reason is written row by row so
one bad row cannot block or lose the others; a row that still fails is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.logs import get_logger

__all__ = ["LegInsert", "LegWriter"]

log = get_logger("callswitch.dialer.legs")

UPDATE_COLUMNS = ("channel", "uniqueid", "linkedid", "ringing_at", "answered_at", "accepted_at", "ended_at",
                  "disposition", "hangup_cause", "hangup_cause_text", "sip_status", "billable_seconds")


@dataclass(frozen=True)
class LegInsert:
    """A ``call_legs`` row that did not go through ``callswitch_reserve_leg`` (the visitor's leg dialled
    by the dialplan in agent-first mode)."""

    leg_id: str
    request_id: Any  # uuid.UUID
    attempt: int
    leg: str
    destination: str | None
    member: str | None
    number_dialled: str
    trunk: str | None
    asterisk_server: str | None
    channel: str | None
    uniqueid: str | None
    linkedid: str | None
    originated_at: datetime


class LegWriter:
    """Batches ``call_legs`` inserts and updates; see the module docstring."""

    def __init__(self, db: Database, *, interval: float = 0.02, max_batch: int = 256) -> None:
        self.db = db
        self.interval = interval
        self.max_batch = max_batch
        self._inserts: dict[str, LegInsert] = {}
        self._updates: dict[str, dict[str, Any]] = {}
        self._queued = 0  # generation of the last change queued
        self._written = 0  # generation of the last change committed
        self._wake = asyncio.Event()
        self._urgent = False
        self._done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # statistics: transactions and legs written
        self.legs_written = 0

    # -- queueing -------------------------------------------------------------------------------------
    def insert(self, row: LegInsert) -> None:
        self._inserts.setdefault(row.leg_id, row)
        self._queued_one()

    def update(self, leg_id: str, changes: dict[str, Any]) -> None:
        """Queue changed columns of one leg (names from :data:`UPDATE_COLUMNS`; None values are ignored)."""
        unknown = set(changes) - set(UPDATE_COLUMNS)
        if unknown:
            raise ValueError(f"not call_legs columns the writer updates: {sorted(unknown)}")
        merged = self._updates.setdefault(leg_id, {})
        merged.update({k: v for k, v in changes.items() if v is not None})
        self._queued_one()

    def _queued_one(self) -> None:
        self._queued += 1
        if len(self._updates) + len(self._inserts) >= self.max_batch:
            self._urgent = True
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._inserts) + len(self._updates)

    async def flush(self) -> None:
        """Return once every change queued before this call is committed."""
        target = self._queued
        if self._written >= target:
            return
        if self._task is None or self._task.done():  # not running (yet, or any more): write in this task
            await self._write_batch()
            return
        self._urgent = True
        self._wake.set()
        async with self._done:
            await self._done.wait_for(lambda: self._written >= target)

    # -- running --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self, grace: float = 10.0) -> None:
        """Write what is queued (for at most ``grace`` seconds), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.flush()
        if self.pending:
            log.error("leg_records_not_written", legs=self.pending)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._urgent and self.interval:
                await asyncio.sleep(self.interval)  # gather the changes of other attempts meanwhile
            self._wake.clear()
            self._urgent = False
            try:
                await self._write_batch()
            except Exception:  # never let the writer die: flush() would wait for ever
                log.exception("leg_writer_failed")

    async def _write_batch(self) -> None:
        target = self._queued
        inserts, updates = self._inserts, self._updates
        self._inserts, self._updates = {}, {}
        try:
            if inserts or updates:
                await self._write_patiently(list(inserts.values()), updates)
                self.batches += 1
                self.legs_written += len(inserts) + len(updates)
        finally:
            self._written = max(self._written, target)
            async with self._done:
                self._done.notify_all()

    async def _write_patiently(self, inserts: list[LegInsert], updates: dict[str, dict[str, Any]]) -> None:
        delay = 0.25
        while True:
            try:
                await self._write(inserts, updates)
                return
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("leg_records_waiting_for_database", legs=len(inserts) + len(updates),
                                error=str(exc), retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(5.0, delay * 2)
                    continue
                log.warning("leg_batch_refused", error=str(exc), legs=len(inserts) + len(updates))
                await self._write_one_by_one(inserts, updates)
                return

    async def _write(self, inserts: list[LegInsert], updates: dict[str, dict[str, Any]]) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            if inserts:
                cols = list(zip(*((r.leg_id, r.request_id, r.attempt, r.leg, r.destination, r.member,
                                   r.number_dialled, r.trunk, r.asterisk_server, r.channel, r.uniqueid,
                                   r.linkedid, r.originated_at) for r in inserts), strict=True))
                await conn.execute(Q.insert_legs, *map(list, cols))
            if updates:
                ids = list(updates)
                await conn.execute(Q.update_legs, ids,
                                   *([updates[i].get(c) for i in ids] for c in UPDATE_COLUMNS))

    async def _write_one_by_one(self, inserts: list[LegInsert], updates: dict[str, dict[str, Any]]) -> None:
        for row in inserts:
            await self._try([row], {}, row.leg_id)
        for leg_id, changes in updates.items():
            await self._try([], {leg_id: changes}, leg_id)

    async def _try(self, inserts: list[LegInsert], updates: dict[str, dict[str, Any]], what: str) -> None:
        try:
            await self._write(inserts, updates)
        except Exception as exc:
            log.error("leg_record_dropped", leg_id=what, error=str(exc))
