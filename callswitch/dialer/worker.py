"""The dialer: claims due requests from Postgres and works them through Asterisk.

One loop, like arq's worker: wake on new work (in-process signal, ``LISTEN callswitch_requests``)
or every poll interval; claim as many due requests as there is room for; run each as a task:

1. route it again (rules or opening hours may have changed while it waited); reject, defer
   or expire it if that is the decision;
2. record the attempt (``call_attempts``) before anything is dialled;
3. drive an :class:`~callswitch.dialer.flow.AttemptFlow` with the facts the
   :class:`~callswitch.dialer.interpret.Interpreter` reads from AMI, carrying out its commands:
   each agent leg's capacity is reserved and its ``call_legs`` row written *before* the
   Originate (``callswitch_reserve_leg``), state changes are written with their events;
4. when the attempt is over, decide the request: completed, retried later, or failed.

Exactly once: an Originate is never re-sent (the AMI client fails it on a lost connection),
and a request whose node died mid-attempt is taken over only after its lease lapsed and its
legs were looked up on every Asterisk server (``CoreShowChannels``); while any of them is
still up, nothing is dialled for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from callswitch import callback as states
from callswitch.callback import CallbackRequest
from callswitch.config import Config
from callswitch.db.pool import Database, is_unavailable
from callswitch.db.queries import QUERIES as Q
from callswitch.db.wakeup import CHANNEL as WORK_CHANNEL
from callswitch.db.wakeup import WorkSignal
from callswitch.dialer.ami_client import (
    AmiActionFailed,
    AmiClient,
    AmiError,
    AmiNotConnected,
    AmiServer,
)
from callswitch.dialer.announce import Announcer
from callswitch.dialer.flow import (
    AttemptFlow,
    AttemptResult,
    Command,
    Finish,
    Hangup,
    Originate,
    RecordLeg,
    Release,
    SetState,
    UpdateLeg,
)
from callswitch.dialer.interpret import CustomerAnswered, Fact, Interpreter, LegEnded, customer_leg_id
from callswitch.dialer.legwriter import LegInsert, LegWriter
from callswitch.dialer.queue import LegReservation, Limits, Queue
from callswitch.logs import get_logger
from callswitch.metrics import Metrics
from callswitch.routing.model import Destination, Member
from callswitch.routing.reload import RulesHolder

log = get_logger("callswitch.dialer")
STATUS_CHANNEL = "callswitch_status"
# capacity refusals, as the flow should see them: the member is on another call, or no line is free
REFUSAL_DISPOSITION = {"member_busy": "busy"}
SWEEP_EVERY = 30.0  # seconds between looks for attempts a dead node left open after their request finished


def utcnow() -> datetime:
    return datetime.now(UTC)


_CANCEL = object()  # put on an attempt's queue: the visitor cancelled


@dataclass
class _Attempt:
    request_id: uuid.UUID
    attempt: int
    flow: AttemptFlow
    client: AmiClient
    created_at: datetime
    row: Any = None
    facts: asyncio.Queue[Fact | object] = field(default_factory=asyncio.Queue)
    channels: dict[str, str] = field(default_factory=dict)  # leg_id -> Asterisk channel name
    records: dict[str, RecordLeg] = field(default_factory=dict)
    state: str = states.QUEUED
    originated: int = 0  # legs actually sent to Asterisk
    refused: int = 0  # legs refused for capacity (member busy, limits) before dialling
    roles: dict[str, str] = field(default_factory=dict)  # leg_id -> agent | customer


class Dialer:
    def __init__(
        self,
        config: Config,
        db: Database,
        rules: RulesHolder,
        *,
        work: WorkSignal | None = None,
        clients: Sequence[AmiClient] | None = None,
        clock: Callable[[], datetime] = utcnow,
        node: str | None = None,
        metrics: Metrics | None = None,
    ):
        self.config = config
        self.policy = config.dialing
        self.db = db
        self.rules = rules
        self.work = work or WorkSignal(None)
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.node = node or config.dialing.node or f"{socket.gethostname()}-{os.getpid()}"
        self.queue = Queue(self.node, config.dialing.lease_seconds)
        self.limits = Limits(max_global=config.dialing.max_concurrent_calls,
                             max_destination=config.dialing.max_calls_per_destination)
        self.interpreter = Interpreter()
        self.legs = LegWriter(db)  # call_legs inserts/updates of all attempts, in batches
        tts = config.dialing.tts
        self.announcer = Announcer(tts) if tts is not None else None  # per-request announcements
        self.clients = list(clients) if clients is not None else [self._make_client(s) for s in config.ami_servers]
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        self._working: set[uuid.UUID] = set()  # requests whose lease this node keeps renewing
        self._fenced: set[uuid.UUID] = set()  # working requests another node took over meanwhile
        self._last_sweep = 0.0
        # back-pressure after a request could not be dialled for want of a line or a free member:
        # claim no more than are in progress now, until ``_ceiling_until`` (loop time)
        self._ceiling: int | None = None
        self._ceiling_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._leg_seq = itertools.count(1)

    def _make_client(self, server: Any) -> AmiClient:
        holder: list[AmiClient] = []

        async def on_connected() -> None:
            await self._reconcile_after_reconnect(holder[0])

        client = AmiClient(AmiServer(server.name, server.host, server.port, server.username, server.secret),
                           self._on_event, on_connected=on_connected, ping_interval=server.ping_interval)
        holder.append(client)
        return client

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self.legs.start()
        for client in self.clients:
            await client.start()
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._claim_loop()), loop.create_task(self._renew_loop()),
                       loop.create_task(self._listen_loop())]
        log.info("dialer_started", node=self.node, servers=[c.server.name for c in self.clients])

    async def stop(self, deadline: float = 30.0) -> None:
        """Stop claiming, let calls in progress finish up to ``deadline`` seconds, hand back queued work."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=deadline)
            for task in pending:
                task.cancel()
        for task in self._loops:
            task.cancel()
        await self.legs.stop()
        with contextlib.suppress(Exception):
            async with self.db.acquire() as conn:
                released = await self.queue.release_node(conn)
                if released:
                    log.info("leases_released", count=released)
        for client in self.clients:
            await client.stop()

    @property
    def active_calls(self) -> int:
        return len(self._attempts)

    def wake(self) -> None:
        self._wake.set()

    # -- AMI events ---------------------------------------------------------------------------------
    def _on_event(self, msg: Any) -> None:
        now = self.clock()
        for fact in self.interpreter.feed(msg, now):
            active = self._attempts.get((fact.request_id, fact.attempt))
            if active is not None:
                active.facts.put_nowait(fact)

    async def _reconcile_after_reconnect(self, client: AmiClient) -> None:
        """After a reconnect: what happened while we were away, as far as Asterisk still knows it.

        Channels still up report their state as if a ``Newstate`` had arrived (a visitor who answered while
        the events were lost is known to have answered: the call counts as connected, nobody dials them
        again); legs that vanished meanwhile are over."""
        if not any(a.client is client for a in self._attempts.values()):
            return
        try:
            channels = await client.channels()
        except AmiError:
            return
        for m in channels:
            if m.get("ChannelStateDesc") in ("Up", "Ringing"):
                self._on_event({"Event": "Newstate", "Channel": m.get("Channel") or "",
                                "Uniqueid": m.get("Uniqueid") or "", "Linkedid": m.get("Linkedid") or "",
                                "ChannelStateDesc": m.get("ChannelStateDesc") or ""})
        names = {m.get("Channel") for m in channels}
        ids = {m.get("Uniqueid") for m in channels} | {m.get("Linkedid") for m in channels}
        now = self.clock()
        for active in list(self._attempts.values()):
            if active.client is not client:
                continue
            vanished = []
            for leg_id in list(active.roles):
                channel = active.channels.get(leg_id)
                if channel is not None:
                    alive = channel in names
                elif leg_id in active.records:  # originated by us: its Uniqueid is the leg id
                    alive = leg_id in ids
                else:
                    continue  # a visitor leg never seen on a channel: its agent leg's end settles it
                if not alive:
                    vanished.append(leg_id)
            if vanished:
                for fact in await self._answer_lost_while_away(active, now):
                    active.facts.put_nowait(fact)
            for leg_id in vanished:
                active.facts.put_nowait(self._synthetic_end(active, leg_id, "failed", now))

    async def _answer_lost_while_away(self, active: _Attempt, now: datetime) -> list[Fact]:
        """Agent-first: the visitor's answer and end, when their events were lost with the AMI link and the call
        is over, from the dialplan's AstDB mark (answered when the mark was written; the end is only known to
        have come by ``now``). Nothing if the attempt is known to be connected already, is customer-first (its
        answer is the originated leg's own), or has no mark."""
        if active.flow.customer_first or active.state in (states.CONNECTED, states.COMPLETED):
            return []
        agents = [leg_id for leg_id, role in active.roles.items() if role == "agent"]
        agent = active.flow.winner or (agents[-1] if agents else None)
        if agent is None:
            return []
        marked_at = await self._connected_mark(active.request_id, active.attempt, active.created_at, on=active.client)
        if marked_at is None:
            return []
        log.info("answer_recovered_from_astdb", callback_id=str(active.request_id), attempt=active.attempt,
                 agent_leg_id=agent)
        leg_id, request_id = customer_leg_id(agent), str(active.request_id)
        return [
            CustomerAnswered(leg_id=leg_id, request_id=request_id, attempt=active.attempt, role="customer",
                             agent_leg_id=agent, at=marked_at),
            LegEnded(leg_id=leg_id, request_id=request_id, attempt=active.attempt, role="customer",
                     agent_leg_id=agent, at=now, disposition="answered"),
        ]

    # -- loops ----------------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.poll_interval):
                    await self._wait_for_work()
            if self._stopping:
                return
            try:
                await self._claim_once()
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("dialer_claim_failed")
                else:
                    log.warning("dialer_database_unavailable", error=str(exc))

    async def _wait_for_work(self) -> None:
        local = asyncio.create_task(self.work.local.wait())
        wake = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({local, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            local.cancel()
            wake.cancel()
        self.work.local.clear()
        self._wake.clear()

    async def _claim_once(self) -> None:
        if not any(c.connected for c in self.clients):
            return  # requests wait, safely queued, until Asterisk is back
        room = self._room()
        if room <= 0:
            return
        async with self.db.acquire() as conn:
            orphans = await self.queue.claim_orphaned(conn, room, self._working)
            due = await self.queue.claim_due(conn, max(0, room - len(orphans)))
            loop_time = asyncio.get_running_loop().time()
            if loop_time - self._last_sweep > SWEEP_EVERY:
                self._last_sweep = loop_time
                # long after any node could still be ending their legs (drain guard, leases)
                closed = await self.queue.close_abandoned_attempts(conn, 2 * self.queue.lease_seconds + 60)
                if closed:
                    log.info("abandoned_attempts_closed", count=closed)
        # counted from now on, before their tasks start: the next wake-up must not claim them again (not
        # earlier: a request added here is always spawned, and its task removes it)
        self._working.update(row["id"] for row in (*orphans, *due))
        for row in orphans:
            self._spawn(self._take_over(row))
        for row in due:
            self._spawn(self._work(row))

    def _room(self) -> int:
        """How many more requests to claim: ``max_concurrent_calls`` less those claimed and in progress.

        Requests being prepared (claimed, not yet dialling) count as well as calls. After a request had to
        be put back for want of a line or a free member (:meth:`_hold_claims`), the ceiling is the number
        in progress at that moment, so that each call that ends lets one more be claimed rather than the
        dialer claiming and putting back queued requests as fast as Postgres allows.
        """
        limit = self.policy.max_concurrent_calls or 50
        if self._ceiling is not None:
            if asyncio.get_running_loop().time() < self._ceiling_until:
                limit = min(limit, self._ceiling)
            else:
                self._ceiling = None
        return limit - self._in_progress()

    def _in_progress(self) -> int:
        """Requests claimed and not finished: being prepared or in a call."""
        return max(len(self._working), len(self._attempts))

    def _hold_claims(self) -> None:
        """A claimed request was put back (no line free, or every member busy): see :meth:`_room`."""
        in_progress = self._in_progress() - 1  # less the one put back
        self._ceiling = max(0, in_progress if self._ceiling is None else min(self._ceiling, in_progress))
        self._ceiling_until = asyncio.get_running_loop().time() + self.policy.busy_wait

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.queue.lease_seconds / 3)
            try:
                async with self.db.acquire() as conn:
                    lost = await self.queue.renew(conn, list(self._working))
            except Exception as exc:
                log.warning("lease_renewal_failed", error=str(exc))
                continue
            for request_id in lost - self._fenced:
                # our lease lapsed (Postgres was away too long) and another node took the request over:
                # it settles the call; this node dials nothing more for it and writes no outcome
                log.warning("lease_lost", callback_id=str(request_id))
                self._fenced.add(request_id)

    async def _listen_loop(self) -> None:
        """LISTEN for work committed by other daemons and for cancellations."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.db.config.dsn, timeout=self.db.config.connect_timeout)
                await conn.add_listener(WORK_CHANNEL, self._on_notify)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("listen_retry", error=str(exc))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(2)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._wake.set()
        if payload:  # a request id: it may have been cancelled
            for (rid, _attempt), active in self._attempts.items():
                if rid == payload:
                    self._spawn(self._check_cancelled(active))

    # -- working one request --------------------------------------------------------------------------
    async def _work(self, row: asyncpg.Record) -> None:
        request_id: uuid.UUID = row["id"]
        self._working.add(request_id)
        try:
            await self._work_request(row)
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("dialer_lost_database", callback_id=str(request_id), error=str(exc))
            else:
                log.exception("dialer_request_failed", callback_id=str(request_id))
            # the lease lapses and the request is taken over (and reconciled) later
        finally:
            self._working.discard(request_id)
            self._fenced.discard(request_id)
            self._wake.set()  # room for one more

    async def _work_request(self, row: asyncpg.Record) -> None:
        request_id: uuid.UUID = row["id"]
        now = self.clock()
        async with self.db.acquire() as conn:
            if row["created_at"] + timedelta(seconds=self.policy.max_age) <= now:
                await self.queue.set_state(conn, request_id, states.EXPIRED, "expired", previous=row["state"],
                                           outcome="expired", detail={"message": "not connected within max_age"})
                await self._notify_status(conn, request_id)
                return
            plan = self.rules.route(_request_from_row(row), now)
            if plan.rejected:
                await self.queue.set_state(conn, request_id, states.REJECTED, "rejected", previous=row["state"],
                                           outcome="rejected", detail={"message": plan.reject_message})
                await self._notify_status(conn, request_id)
                return
            if plan.start_at is not None and plan.start_at > now + timedelta(seconds=1):
                await self.queue.set_state(conn, request_id, states.SCHEDULED, "deferred", previous=row["state"],
                                           detail={"due_at": plan.start_at.isoformat(), "rule": plan.rule},
                                           due_at=plan.start_at)
                await self.queue.release(conn, request_id)
                await self._notify_status(conn, request_id)
                return
            cap = self.policy.max_calls_per_number_per_day
            if cap is not None and await conn.fetchval(Q.customer_legs_today, row["phone_e164"]) >= cap:
                # toll-fraud and harassment guard: this number was dialled enough today, by every daemon
                await self.queue.set_state(conn, request_id, states.FAILED, "number_daily_cap",
                                           previous=row["state"], outcome="number_daily_cap",
                                           detail={"message": f"the number was dialled {cap} times in 24 hours"})
                await self.queue.release(conn, request_id)
                await self._notify_status(conn, request_id)
                return
            members = [m.dial for d in plan.chain for m in d.members]
            busy = {r["member"] for r in await conn.fetch(Q.busy_members, members)}
            if members and busy >= set(members):
                # every member is on another call: wait in the queue instead of burning an attempt
                await conn.execute(Q.postpone, request_id, now + timedelta(seconds=self.policy.busy_wait),
                                   self.node)
                self._hold_claims()
                return
            orders = await self._member_orders(conn, plan.chain)
            destination = plan.destination.name if plan.destination else None
            first_state = (states.DIALING_CUSTOMER if plan.chain and plan.chain[0].mode == "customer_first"
                           else states.DIALING_AGENT)
            attempt = await self.queue.start_attempt(conn, request_id, plan.rule, destination, row["state"],
                                                     first_state)
            if attempt is None:
                return
            await self._notify_status(conn, request_id)
        client = self._pick_client()
        if client is None:
            await self._finish(request_id, attempt, AttemptResult("failed", True, "no Asterisk connected",
                                                                  False, None))
            return
        variables = self._dialplan_settings()
        if self.announcer is not None:
            # rendered while the agent's phone rings; a file that is missing when played is skipped
            variables["__CS_ANNOUNCE_FILE"] = self.announcer.sound_name(str(request_id))
        try:
            flow = AttemptFlow(
                str(request_id), attempt, plan, row["phone_e164"], now=now,
                make_leg_id=lambda: f"cs-{request_id.hex[:20]}-{attempt}-{next(self._leg_seq)}",
                customer_timeout_s=self.policy.customer_timeout,
                variables=variables,
                member_order=lambda dest: orders.get(dest.name, dest.members),
            )
        except ValueError as exc:  # e.g. no trunk to reach the visitor: a routing file problem
            log.error("attempt_impossible", callback_id=str(request_id), error=str(exc))
            await self._finish(request_id, attempt, AttemptResult("failed", False, str(exc), False, None))
            return
        rendering = None
        if self.announcer is not None:
            rendering = asyncio.get_running_loop().create_task(self.announcer.render(str(request_id), row))
        active = _Attempt(request_id, attempt, flow, client, now, row=row, state=first_state)
        self._attempts[(str(request_id), attempt)] = active
        try:
            await self._run(active)
        finally:
            self._attempts.pop((str(request_id), attempt), None)
            self.interpreter.forget(str(request_id), attempt)
            if rendering is not None and self.announcer is not None:
                rendering.cancel()  # if still running: it cannot leave its file behind after this
                self.announcer.remove(str(request_id))

    async def _member_orders(
        self, conn: asyncpg.Connection, chain: Sequence[Destination]
    ) -> dict[str, tuple[Member, ...]]:
        """Member order for round-robin and longest-idle destinations, from the call records."""
        out: dict[str, tuple[Member, ...]] = {}
        for dest in chain:
            if dest.strategy not in ("round_robin", "longest_idle"):
                continue
            rows = await conn.fetch(Q.member_history, dest.name, [m.dial for m in dest.members])
            history = {r["member"]: (r["last_rung"], r["last_ended"]) for r in rows}
            out[dest.name] = order_members(dest.strategy, dest.members, history)
        return out

    def _dialplan_settings(self) -> dict[str, str]:
        """Announcement settings for the shipped dialplan (asterisk/extensions_callswitch.conf)."""
        out = {"__CS_CONFIRM_TIMEOUT": str(self.policy.confirm_timeout),
               "__CS_MAX_REPEATS": str(self.policy.max_repeats)}
        if self.policy.say_digits:
            out["__CS_SAY_DIGITS"] = str(self.policy.say_digits)
        return out

    def _pick_client(self) -> AmiClient | None:
        connected = [c for c in self.clients if c.connected]
        if not connected:
            return None
        load = {id(c): 0 for c in connected}
        for active in self._attempts.values():
            if id(active.client) in load:
                load[id(active.client)] += 1
        return min(connected, key=lambda c: load[id(c)])

    async def _run(self, active: _Attempt) -> None:
        flow = active.flow
        await self._execute(active, flow.start(self.clock()))
        while not flow.done:
            deadline = flow.next_deadline
            timeout = None if deadline is None else max(0.0, (deadline - self.clock()).total_seconds())
            try:
                async with asyncio.timeout(timeout):
                    item = await active.facts.get()
            except TimeoutError:
                commands = flow.on_timer(self.clock())
            else:
                if item is _CANCEL:
                    commands = flow.cancel(self.clock(), "cancelled by the visitor")
                else:
                    assert isinstance(item, Fact)
                    commands = flow.on_fact(item, self.clock())
            await self._execute(active, commands)

    async def _execute(self, active: _Attempt, commands: list[Command]) -> None:
        for cmd in commands:
            await self._patiently(lambda c=cmd: self._execute_one(active, c), type(cmd).__name__)  # type: ignore[misc]

    async def _patiently(self, op: Callable[[], Awaitable[None]], what: str) -> None:
        """Run a step that writes to Postgres; while Postgres is unreachable, wait and try again.

        The call goes on in Asterisk meanwhile, so its record is written late rather than lost. Every
        step is safe to repeat (leg reservation and insert are idempotent; a state change repeated
        after a lost reply adds one duplicate audit event at most).
        """
        delay = 0.25
        give_up = asyncio.get_running_loop().time() + self.policy.lease_seconds * 20
        while True:
            try:
                await op()
                return
            except Exception as exc:
                if not is_unavailable(exc) or asyncio.get_running_loop().time() > give_up:
                    raise
                log.warning("dialer_waiting_for_database", step=what, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def _execute_one(self, active: _Attempt, cmd: Command) -> None:
        if isinstance(cmd, RecordLeg):
            active.roles[cmd.leg_id] = cmd.role
            if cmd.originated:
                active.records[cmd.leg_id] = cmd  # written with its reservation, just before the Originate
            else:
                await self._insert_leg(active, cmd)
        elif isinstance(cmd, Originate):
            await self._originate(active, cmd)
        elif isinstance(cmd, UpdateLeg):
            await self._update_leg(active, cmd)
        elif isinstance(cmd, Hangup):
            await self._hangup(active, cmd)
        elif isinstance(cmd, Release):
            await self._release(active, cmd)
        elif isinstance(cmd, SetState):
            await self._set_state(active, cmd)
        elif isinstance(cmd, Finish):
            if not cmd.result.connected and active.originated == 0 and active.refused:
                await self._postpone(active)
            else:
                await self._finish(active.request_id, active.attempt, cmd.result)

    async def _originate(self, active: _Attempt, cmd: Originate) -> None:
        record = active.records[cmd.leg_id]
        if active.request_id in self._fenced:  # another node owns the request now: dial nothing more
            active.facts.put_nowait(self._synthetic_end(active, cmd.leg_id, "failed", self.clock()))
            return
        member = cmd.member.dial if cmd.member is not None else None
        reservation = LegReservation(
            leg_id=cmd.leg_id, request_id=active.request_id, attempt=active.attempt, leg=cmd.role,
            number_dialled=record.number_dialled, trunk=cmd.trunk, destination=cmd.destination,
            member=member, server=active.client.server.name,
        )
        trunk = self._trunk_limits(cmd.trunk)
        async with self.db.acquire() as conn:
            verdict = await self.queue.reserve_leg(conn, reservation, trunk)
        if verdict != "ok":
            log.info("leg_refused", callback_id=str(active.request_id), leg_id=cmd.leg_id, limit=verdict)
            active.refused += 1
            disposition = REFUSAL_DISPOSITION.get(verdict, "congestion")
            active.facts.put_nowait(self._synthetic_end(active, cmd.leg_id, disposition, self.clock()))
            return
        self.interpreter.expect_leg(cmd.leg_id, request_id=str(active.request_id), attempt=active.attempt,
                                    role=cmd.role, joins=cmd.joins)
        active.originated += 1
        try:
            await active.client.originate(
                action_id=cmd.leg_id, channel=cmd.dial_string, context=cmd.context, exten="s", priority=1,
                timeout_ms=cmd.timeout_ms, channel_id=cmd.leg_id, caller_id=cmd.caller_id,
                account=str(active.request_id), variables=cmd.variables,
            )
            log.info("originate_sent", callback_id=str(active.request_id), leg_id=cmd.leg_id, leg=cmd.role,
                     destination=cmd.destination, member=member, server=active.client.server.name)
        except (AmiNotConnected, AmiActionFailed, ValueError) as exc:
            # certainly not dialled (ValueError: a header or variable the AMI encoder refuses)
            log.warning("originate_refused", callback_id=str(active.request_id), leg_id=cmd.leg_id, error=str(exc))
            active.facts.put_nowait(self._synthetic_end(active, cmd.leg_id, "failed", self.clock()))
        except AmiError as exc:
            # lost connection or timeout: it may have been dialled; never re-sent, the flow's guards and
            # the reconciliation after the reconnect settle the leg
            log.warning("originate_outcome_unknown", callback_id=str(active.request_id), leg_id=cmd.leg_id,
                        error=str(exc))

    def _trunk_limits(self, trunk_name: str | None) -> Limits:
        if trunk_name is None or not self.rules.loaded:
            return self.limits
        trunk = self.rules.rules.trunks.get(trunk_name)
        if trunk is None:
            return self.limits
        return Limits(self.limits.max_global, trunk.max_channels, trunk.max_cps, self.limits.max_destination)

    def _synthetic_end(self, active: _Attempt, leg_id: str, disposition: str, now: datetime) -> LegEnded:
        role = active.roles.get(leg_id, "agent")
        agent_leg_id = leg_id
        if role == "customer" and leg_id not in active.records:  # agent-first: dialled by its agent's dialplan
            agent_leg_id = leg_id.removesuffix("-c")
        return LegEnded(leg_id=leg_id, request_id=str(active.request_id), attempt=active.attempt, role=role,
                        agent_leg_id=agent_leg_id, at=now, disposition=disposition)

    async def _insert_leg(self, active: _Attempt, cmd: RecordLeg) -> None:
        self.legs.insert(LegInsert(
            cmd.leg_id, active.request_id, cmd.attempt, cmd.role, cmd.destination, cmd.member, cmd.number_dialled,
            cmd.trunk, active.client.server.name, cmd.channel, cmd.uniqueid, cmd.linkedid, cmd.originated_at,
        ))
        if cmd.channel:
            active.channels[cmd.leg_id] = cmd.channel

    async def _update_leg(self, active: _Attempt, cmd: UpdateLeg) -> None:
        if cmd.channel:
            active.channels[cmd.leg_id] = cmd.channel
        self.legs.update(cmd.leg_id, cmd.changes())
        if cmd.ended_at is not None:
            # capacity at once, not with the next batch: the flow may ring the same member again right
            # away (next round, failover to another trunk), and reserve_leg must not find it still busy
            async with self.db.acquire() as conn:
                await self.queue.free_leg(conn, cmd.leg_id)
        if cmd.disposition is not None:
            self.metrics.leg_ended(active.roles.get(cmd.leg_id, "agent"), cmd.disposition, cmd.hangup_cause)

    async def _hangup(self, active: _Attempt, cmd: Hangup) -> None:
        channel = active.channels.get(cmd.leg_id)
        if channel is None:
            return
        with contextlib.suppress(AmiError):
            await active.client.action("Hangup", {"Channel": channel, "Cause": str(cmd.cause)}, timeout=5)

    async def _release(self, active: _Attempt, cmd: Release) -> None:
        """Customer-first: nobody accepted; take the visitor out of their conference (they hear the goodbye)."""
        channel = active.channels.get(cmd.leg_id)
        if channel is None:
            return
        try:
            await active.client.action("ConfbridgeKick", {"Conference": cmd.conference, "Channel": channel},
                                       timeout=5)
        except AmiError as exc:  # not (yet) in the conference, e.g. still hearing the connect prompt
            log.info("release_by_hangup", callback_id=str(active.request_id), leg_id=cmd.leg_id, error=str(exc))
            with contextlib.suppress(AmiError):
                await active.client.action("Hangup", {"Channel": channel, "Cause": "16"}, timeout=5)

    async def _set_state(self, active: _Attempt, cmd: SetState) -> None:
        if cmd.state == active.state:
            return  # start_attempt already moved the request there (and wrote the event)
        if active.request_id in self._fenced:
            return  # the node that took the request over writes its states
        # the legs first: a state on record (e.g. connected) always has the leg facts behind it, which is
        # what a node taking over after a crash settles the attempt from
        await self.legs.flush()
        async with self.db.acquire() as conn:
            ok = await self.queue.set_state(conn, active.request_id, cmd.state, cmd.event, previous=active.state,
                                            detail=_jsonable(cmd.detail),
                                            outcome="connected" if cmd.state == states.COMPLETED else None)
            if ok:
                await self._notify_status(conn, active.request_id)
        if ok:
            active.state = cmd.state
            return
        # The request finished meanwhile (the visitor cancelled it): stop the attempt.
        active.facts.put_nowait(_CANCEL)

    async def _check_cancelled(self, active: _Attempt) -> None:
        async with self.db.acquire() as conn:
            state = await conn.fetchval(Q.get_request_state, active.request_id)
        if state == states.CANCELLED and not active.flow.done:
            active.facts.put_nowait(_CANCEL)

    async def _finish(self, request_id: uuid.UUID, attempt: int, result: AttemptResult) -> None:
        now = self.clock()
        self.metrics.attempt_outcomes.labels(outcome=result.outcome).inc()
        log.info("attempt_finished", callback_id=str(request_id), attempt=attempt, outcome=result.outcome,
                 retry=result.retry, detail=result.detail)
        await self.legs.flush()  # the attempt's legs are recorded before its outcome
        if request_id in self._fenced:
            log.warning("outcome_left_to_new_owner", callback_id=str(request_id), attempt=attempt,
                        outcome=result.outcome)
            return
        async with self.db.acquire() as conn:
            await self.queue.finish_attempt(conn, request_id, attempt, result.outcome, result.detail)
            await conn.execute(Q.free_attempt_legs, request_id, attempt)
            current = await conn.fetchrow(Q.get_request, request_id)
            if current is None or current["finished_at"] is not None:
                await self.queue.release(conn, request_id)
                return
            if result.connected:
                await self.queue.set_state(conn, request_id, states.COMPLETED, "completed", previous=current["state"],
                                           outcome="connected", detail={"message": result.detail})
            elif result.retry and self._may_retry(current, real := await conn.fetchval(Q.real_attempts, request_id),
                                                  now):
                due = now + timedelta(seconds=self._backoff(real))
                await self.queue.set_state(conn, request_id, states.SCHEDULED, "retry_scheduled",
                                           previous=current["state"], due_at=due,
                                           detail={"reason": result.outcome, "due_at": due.isoformat(),
                                                   "detail": result.detail})
            else:
                await self.queue.set_state(conn, request_id, states.FAILED, "failed", previous=current["state"],
                                           outcome=result.outcome, detail={"message": result.detail})
            await self.queue.release(conn, request_id)
            await self._notify_status(conn, request_id)


    async def _postpone(self, active: _Attempt) -> None:
        """No member could be rung (all on other calls, or no line free): queue again, no attempt counted."""
        due = self.clock() + timedelta(seconds=self.policy.busy_wait)
        async with self.db.acquire() as conn:
            await self.queue.finish_attempt(conn, active.request_id, active.attempt, "postponed",
                                            "every member busy or no line free")
            await conn.execute(Q.free_attempt_legs, active.request_id, active.attempt)
            await self.queue.set_state(conn, active.request_id, states.QUEUED, "postponed", previous=active.state,
                                       due_at=due, detail={"due_at": due.isoformat()})
            await self.queue.release(conn, active.request_id)
        self._hold_claims()

    def _may_retry(self, row: Any, real_attempts: int, now: datetime) -> bool:
        if real_attempts > self.policy.customer_retries:
            return False
        return bool(row["created_at"] + timedelta(seconds=self.policy.max_age) > now)

    def _backoff(self, attempt: int) -> float:
        backoff = self.policy.retry_backoff or (300.0,)
        return backoff[min(attempt - 1, len(backoff) - 1)]

    async def _notify_status(self, conn: asyncpg.Connection, request_id: uuid.UUID) -> None:
        await conn.execute(Q.notify_status, str(request_id))

    # -- taking over after a crash --------------------------------------------------------------------------
    async def _take_over(self, row: asyncpg.Record) -> None:
        """A request left mid-call by a node that died: settle its attempt against Asterisk, then go on.

        Nothing is dialled for it while any channel of its unfinished attempts is still up on some
        Asterisk server (the call goes on without us; we keep the lease and look again). A visitor
        channel seen then, the request's recorded state ``connected``, legs on record showing an
        acceptance and an answered visitor, or the dialplan's AstDB mark that the attempt connected
        (written by Asterisk itself, so it holds when every event of the call was lost with the node
        that died), mean the call was connected (and it is not dialled again).
        """
        request_id: uuid.UUID = row["id"]
        self._working.add(request_id)
        try:
            async with self.db.acquire() as conn:
                attempts = await self.queue.unfinished_attempts(conn, request_id)
            leg_ids = {leg for a in attempts for leg in a["leg_ids"]}
            saw_customer = False
            while not self._stopping:
                live = await self._live_channels(leg_ids)
                if live is not None and not live:
                    break
                if live:
                    saw_customer = saw_customer or any(
                        ch.get("Uniqueid") not in leg_ids and ch.get("Linkedid") in leg_ids for ch in live)
                log.info("takeover_waiting", callback_id=str(request_id), live_channels=len(live or ()),
                         asterisk_reachable=live is not None)
                await asyncio.sleep(self.policy.poll_interval)
            if self._stopping:
                return
            last_attempt = max((a["attempt"] for a in attempts), default=None)
            recorded_connected = row["state"] == states.CONNECTED  # written only once the two were bridged
            connected = saw_customer or recorded_connected
            marked = {a["attempt"]: await self._connected_mark(request_id, a["attempt"], a["started_at"]) is not None
                      for a in attempts}
            by_mark: set[int] = set()
            async with self.db.acquire() as conn:
                for a in attempts:
                    await conn.execute(Q.close_open_legs, request_id, a["attempt"])
                    on_record = (saw_customer or (recorded_connected and a["attempt"] == last_attempt)
                                 or bool(await conn.fetchval(Q.attempt_was_connected, request_id, a["attempt"])))
                    was = on_record or marked[a["attempt"]]
                    if was and not on_record:
                        by_mark.add(a["attempt"])
                    connected = connected or was
                    await self.queue.finish_attempt(conn, request_id, a["attempt"], "connected" if was else "unknown",
                                                    TAKEN_OVER_BY_MARK if a["attempt"] in by_mark else TAKEN_OVER)
                    await conn.execute(Q.free_attempt_legs, request_id, a["attempt"])
            last = max((a["attempt"] for a in attempts), default=row["attempts"])
            result = AttemptResult("connected" if connected else "failed", not connected,
                                   TAKEN_OVER_BY_MARK if last in by_mark else TAKEN_OVER, connected, None)
            await self._finish(request_id, last, result)
            log.info("takeover_settled", callback_id=str(request_id), connected=connected,
                     marked_on_asterisk=sorted(n for n, yes in marked.items() if yes))
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("takeover_failed", callback_id=str(request_id))
        finally:
            self._working.discard(request_id)
            self._wake.set()  # room for one more

    async def _connected_mark(self, request_id: uuid.UUID, attempt: int, started_at: datetime,
                              on: AmiClient | None = None) -> datetime | None:
        """When the dialplan marked this attempt connected in an Asterisk's AstDB (callswitch-mark-connected), or None.

        Asks every connected Asterisk, or only ``on`` (from its ``on_connected`` hook, before it counts as
        connected). An Asterisk that can't be asked, or an older dialplan without the mark, answers None: the
        attempt is then settled from the records alone, as before the mark existed.
        """
        key = f"{request_id}-{attempt}"
        for family in connected_mark_families(started_at, self.clock()):
            for client in self.clients if on is None else [on]:
                if on is None and not client.connected:
                    continue
                try:
                    value = await client.db_get(family, key)
                except AmiError as exc:
                    log.warning("astdb_unreadable", callback_id=str(request_id), attempt=attempt,
                                asterisk=client.server.name, error=str(exc))
                    continue
                if value is not None:
                    return _mark_time(value, self.clock())
        return None

    async def _live_channels(self, leg_ids: set[str]) -> list[Any] | None:
        """Channels of these legs (or created by them) still up on any Asterisk; None if one can't be asked."""
        if not leg_ids:
            return []
        live: list[Any] = []
        for client in self.clients:
            if not client.connected:
                return None
            try:
                channels = await client.channels()
            except AmiError:
                return None
            live += [ch for ch in channels if ch.get("Uniqueid") in leg_ids or ch.get("Linkedid") in leg_ids]
        return live


TAKEN_OVER = "settled after the dialer node stopped mid-call"
# connected on Asterisk's word alone: the legs' answer and acceptance times the dead node had not written are missing
TAKEN_OVER_BY_MARK = "settled after the dialer node stopped mid-call: connected by Asterisk's AstDB mark"


def _mark_time(value: str, fallback: datetime) -> datetime:
    """The mark's value is the dialplan's ${EPOCH} when it was written."""
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        return fallback


def connected_mark_families(started_at: datetime, now: datetime) -> list[str]:
    """The AstDB families that may hold the connected mark of an attempt started at ``started_at``: one per
    UTC day from its start to ``now``, newest first, at most four (the dialplan keeps about three days)."""
    day, last = started_at.astimezone(UTC).date(), now.astimezone(UTC).date()
    days = []
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return [f"callswitch-connected-{d:%Y%m%d}" for d in reversed(days)][:4]


def order_members(
    strategy: str, members: Sequence[Member], history: dict[str, tuple[datetime | None, datetime | None]]
) -> tuple[Member, ...]:
    """``round_robin``: start after whoever was rung last; ``longest_idle``: who finished a call longest
    ago first (never called first of all). Ties keep the file order."""
    members = tuple(members)
    if strategy == "round_robin":
        rung = [(history[m.dial][0], i) for i, m in enumerate(members) if m.dial in history and history[m.dial][0]]
        if not rung:
            return members
        last = max(rung)[1]
        return members[last + 1 :] + members[: last + 1]
    if strategy == "longest_idle":
        floor = datetime.min.replace(tzinfo=UTC)
        return tuple(sorted(members, key=lambda m: history.get(m.dial, (None, None))[1] or floor))
    return members


def _jsonable(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in detail.items()}


def _request_from_row(row: asyncpg.Record) -> CallbackRequest:
    return CallbackRequest(
        site=row["site"], name=row["visitor_name"], phone_e164=row["phone_e164"], phone_region=row["phone_country"],
        phone_raw=row["phone_given"], page_url=row["page_url"], referrer=row["referrer"],
        pages=tuple(row["pages_visited"] or ()),
        utm={k: row[f"utm_{k}"] for k in ("source", "medium", "campaign", "term", "content") if row[f"utm_{k}"]},
        attributes=dict(row["attributes"] or {}), language=row["language"], preferred_at=row["preferred_at"],
        created_at=row["created_at"], id=str(row["id"]),
    )
