"""Waking dialers when work is committed.

The dialer in the same process is woken at once through an :class:`asyncio.Event`; dialers
in other daemons sharing the database get one ``NOTIFY callswitch_requests`` per burst,
sent after the commits (never inside an intake transaction, where NOTIFY would serialise
the commits). A lost notification costs at most the dialers' poll interval.
"""

from __future__ import annotations

import asyncio

from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.logs import get_logger

log = get_logger("callswitch.wakeup")
CHANNEL = "callswitch_requests"


class WorkSignal:
    def __init__(self, db: Database | None, min_interval: float = 0.01):
        self.db = db
        self.min_interval = min_interval
        self.local = asyncio.Event()
        self._pending = asyncio.Event()
        self.sent = 0

    def poke(self) -> None:
        """New work was committed."""
        self.local.set()
        self._pending.set()

    async def run(self) -> None:
        """Send coalesced notifications until cancelled."""
        while True:
            await self._pending.wait()
            self._pending.clear()
            if self.db is not None:
                try:
                    async with self.db.acquire() as conn:
                        await conn.execute(Q.notify_new_request, "")
                    self.sent += 1
                except Exception as exc:
                    if not is_unavailable(exc):
                        raise
                    log.debug("notify_skipped", error=str(exc))
            await asyncio.sleep(self.min_interval)
