"""The dialer's durable work queue in Postgres (SQL in db/queries/dialer.sql, migration 0004).

Modelled on procrastinate: due requests are claimed with ``FOR UPDATE SKIP LOCKED`` under a
lease that the node renews; ``LISTEN callswitch_requests`` wakes the dialer as soon as intake
commits a request. Capacity (global, per trunk, per destination, one call per agent member)
is reserved in Postgres, so limits hold across every daemon sharing the database, and each
leg's row is written before the leg is dialled.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callswitch import callback as states
from callswitch.db.queries import QUERIES as Q

NOTIFY_CHANNEL = "callswitch_requests"


@dataclass(frozen=True)
class Limits:
    max_global: int | None = None
    max_trunk: int | None = None
    max_trunk_cps: float | None = None
    max_destination: int | None = None


@dataclass(frozen=True)
class LegReservation:
    leg_id: str
    request_id: uuid.UUID
    attempt: int
    leg: str  # agent | customer
    number_dialled: str
    trunk: str | None = None
    destination: str | None = None
    member: str | None = None
    server: str | None = None


class Queue:
    def __init__(self, node: str, lease_seconds: float = 30.0):
        self.node = node
        self.lease_seconds = lease_seconds

    # A lease and the start of an attempt are committed without waiting for the WAL flush
    # (synchronous_commit off): nothing is dialled before reserve_leg's own, synchronous commit, which
    # flushes the WAL up to and including them. A crash before that loses at most a lease or an attempt
    # under which nothing was dialled. This keeps one WAL flush, not three, between a request and its
    # Originate.
    async def claim_due(self, conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
        async with conn.transaction():
            await conn.execute(Q.async_commit)
            return list(await conn.fetch(Q.claim_due, self.node, limit, self.lease_seconds))

    async def claim_orphaned(self, conn: asyncpg.Connection, limit: int,
                             working: Collection[uuid.UUID] = ()) -> list[asyncpg.Record]:
        """Requests left mid-call by a node whose lease lapsed, except ``working``: this node's own, still
        being worked (its lease lapsed while Postgres was unreachable)."""
        async with conn.transaction():
            await conn.execute(Q.async_commit)
            return list(await conn.fetch(Q.claim_orphaned, self.node, limit, self.lease_seconds, list(working)))

    async def renew(self, conn: asyncpg.Connection, request_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Extend the leases (and live-channel reservations) of the requests this node is working; returns
        those another node holds by now (their lease lapsed and they were taken over)."""
        async with conn.transaction():
            lost = await conn.fetch(Q.renew_leases, self.node, self.lease_seconds, request_ids)
            await conn.execute(Q.renew_channels, self.node, self.lease_seconds, request_ids)
        return {r["id"] for r in lost}

    async def close_abandoned_attempts(self, conn: asyncpg.Connection, after_s: float) -> int:
        """Close attempts of requests finished more than ``after_s`` ago whose node died while their last
        legs were ending; returns how many."""
        return len(await conn.fetch(Q.close_abandoned_attempts, after_s))

    async def release(self, conn: asyncpg.Connection, request_id: uuid.UUID) -> None:
        await conn.execute(Q.release_lease, request_id, self.node)

    async def release_node(self, conn: asyncpg.Connection) -> int:
        """Hand back every queued request this node holds (graceful shutdown)."""
        result = await conn.execute(Q.release_node, self.node)
        return int(result.split()[-1])

    async def start_attempt(
        self, conn: asyncpg.Connection, request_id: uuid.UUID, rule: str | None, destination: str | None,
        previous_state: str, state: str = states.DIALING_AGENT,
    ) -> int | None:
        """Record a new attempt (before anything is dialled) and move the request to ``state``, the first
        step of the attempt (``dialing_customer`` in customer-first mode); None if it is no longer ours."""
        async with conn.transaction():
            await conn.execute(Q.async_commit)
            attempt = await conn.fetchval(Q.start_attempt, request_id, self.node, rule, destination, state)
            if attempt is None:
                return None
            await conn.execute(
                Q.insert_event, request_id, "dialing", previous_state, state, "dialer",
                {"attempt": attempt, "destination": destination, "rule": rule},
            )
        return int(attempt)

    async def reserve_leg(self, conn: asyncpg.Connection, leg: LegReservation, limits: Limits) -> str:
        """'ok' once capacity is reserved and the leg row written; otherwise the limit that refused."""
        result = await conn.fetchval(
            Q.reserve_leg, leg.leg_id, leg.request_id, leg.attempt, self.node, leg.server, leg.leg, leg.trunk,
            leg.destination, leg.member, leg.number_dialled, self.lease_seconds, limits.max_global,
            limits.max_trunk, limits.max_trunk_cps, limits.max_destination,
        )
        return str(result)

    async def free_leg(self, conn: asyncpg.Connection, leg_id: str) -> None:
        """Release an ended leg's capacity (without waiting for the WAL flush: a reservation lost in a
        crash only lingers until its lease runs out)."""
        async with conn.transaction():
            await conn.execute(Q.async_commit)
            await conn.execute(Q.free_leg, leg_id)

    async def set_state(
        self, conn: asyncpg.Connection, request_id: uuid.UUID, state: str, event: str, *,
        previous: str | None = None, outcome: str | None = None, detail: dict[str, Any] | None = None,
        due_at: datetime | None = None,
    ) -> bool:
        """Move the request to ``state`` and append the event; False if it had already finished."""
        async with conn.transaction():
            new = await conn.fetchval(
                Q.set_state, request_id, state, outcome, (detail or {}).get("message"), due_at
            )
            if new is None:
                return False
            await conn.execute(Q.insert_event, request_id, event, previous, state, "dialer", detail or {})
        return True

    async def finish_attempt(
        self, conn: asyncpg.Connection, request_id: uuid.UUID, attempt: int, outcome: str, detail: str | None
    ) -> None:
        await conn.execute(Q.finish_attempt, request_id, attempt, outcome, detail)

    async def unfinished_attempts(self, conn: asyncpg.Connection, request_id: uuid.UUID) -> list[asyncpg.Record]:
        return list(await conn.fetch(Q.unfinished_attempts, request_id))
