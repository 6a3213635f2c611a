"""A known call history made by the real stack: HTTP intake -> Postgres -> the Dialer -> the AMI simulator.

Unlike tests/reports/history.py (rows written straight into the tables), every row here is written by
intake and the dialer while they work the requests against :class:`~callswitch.testing.pbx.PbxSimulator`
(set up by :func:`tests.dialer.conftest.start_stack`). What each phone does is the lab number plan
(:func:`callswitch.testing.pbx.lab_behaviour`; the tens digit decides, X is any digit): agents +1312555010X
accept, 011X decline, 012X no answer, 013X busy, 014X congestion, 016X voicemail (picks up, presses no key);
visitors +1773555020X talk and hang up, 024X unallocated (404). One visitor number is scripted:
+17735550250 is busy the first time it is called and answers the second time.

Trunks: ``carrier``; ``backup`` (the south team's) and ``night`` (the evening team's).
Sites: ``shop`` (America/Chicago), ``blog`` (Europe/Berlin). Retries: ``customer_retries: 1``: one more
attempt, 0.3 s later, after the visitor was busy or unreachable, and (as the dialer's flow does) after nobody
accepted. Ring timeout 5 s; 20 s at the ring-all store and at east.

The scenario (the report window holds every request but R0; they are made one after another, each
finished before the next is posted, except NIGHT, which waits for its opening meanwhile):

key     site  page (campaign)            routed to         what happens
NIGHT   blog  /post-1 (newsletter)       evening           after hours: the evening team is closed for the current
                                                           minute (when_closed: wait); intake schedules it for the
                                                           next minute, when the dialer rings 0102 (accepts) and the
                                                           visitor talks: connected, all on trunk night
RING    shop  /widgets?utm..#.. (spring) downtown          ring-all 0100 (accepts), 0121 (no answer: released when
                                                           0100 accepts), 0131 (busy): connected
SEQ     shop  /widgets (spring)          uptown            0110 declines, then 0101 accepts: connected
RETRY   shop  /pricing (spring)          suburbs           0105 accepts, visitor busy; retry: 0105 accepts, visitor
                                                           answers: connected after 2 attempts
CANCEL  blog  /post-1 (newsletter)       downtown          scheduled for the visitor's preferred time (tomorrow, the
                                                           store is open then: not after hours), cancelled before
                                                           anything is dialled
OVER    blog  /pricing (-)               north -> central  0160's voicemail picks up and hears no key, 0111 declines:
                                                           overflow to central, 0103 accepts: connected
NOBODY  shop  /contact (-)               south             0124 rings out, 0144 congestion (trunk backup): no agent;
                                                           the retry goes the same way: failed no_agent
UNREACH shop  /contact (-)               suburbs           0105 accepts, the visitor's number is unallocated; retry,
                                                           same: failed customer_unreachable
HANGUP  blog  /pricing (-)               east              the visitor cancels while 0125 rings
REJECT  blog  /careers (-)               -                 rejected at intake by a rule
R0      shop  /widgets (spring)          central           made after the window: 0103 accepts, connected
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from callswitch.db.migrate import migrate
from callswitch.db.pool import init_connection
from callswitch.testing.pbx import lab_behaviour
from tests.conftest import with_database
from tests.dialer.conftest import Stack, start_stack, stop_stack

# The simulator replays real Asterisk calls at this fraction of their recorded timing. 0.2 makes the talk time
# of a connected call (5.0 recorded seconds) one second, long enough to show up in billable_seconds.
SCALE = 0.2
# Recorded seconds after the Originate (callswitch/testing/data/scenarios.json): the agent picks up at 2.0,
# presses 1 (accept) or 2 (decline) at 6.2; after an acceptance the visitor picks up at 8.2 and hangs up at
# 13.2 (talks for 5.0). A voicemail picks up at once and gives up on the key at 7.9. A phone that does not
# answer rings for the Originate's timeout (the ring timeout); busy and congestion end at once.
AGENT_PICKUP = 2.0
AGENT_KEY = 6.2
VISITOR_PICKUP = 8.2
TALK = 5.0
VOICEMAIL = 7.9
# How much later than the simulator's own timing anything may happen on a loaded machine.
SLACK = 15.0

SITES = {"shop": ("pk_shop_123456", "https://shop.example"), "blog": ("pk_blog_123456", "https://blog.example")}
SITE_ZONES = {"shop": "America/Chicago", "blog": "Europe/Berlin"}

CONFIG = """\
database: {{dsn: "{dsn}", min_connections: 1, max_connections: 10}}
ami: {{host: 127.0.0.1, port: {port}, username: callswitch, secret: secret}}
dialing:
  poll_interval: 0.2s
  lease: 5s
  customer_retries: 1
  retry_backoff: [0.3s]
  busy_wait: 0.1s
  customer_timeout: 10
routing: {{file: routing.yaml}}
intake: {{rate_limits: {{per_ip: "off", per_phone: "off", per_site: "off"}}}}
sites:
  shop: {{site_key: pk_shop_123456, allowed_origins: ["https://shop.example"], time_zone: America/Chicago}}
  blog: {{site_key: pk_blog_123456, allowed_origins: ["https://blog.example"], time_zone: Europe/Berlin}}
"""

ROUTING = """\
version: 1
defaults: {timezone: America/Chicago, ring_timeout: 5}
trunks:
  carrier: {dial: "PJSIP/{number}@carrier", caller_id: "+13125550000"}
  backup: {dial: "PJSIP/{number}@backup", caller_id: "+13125550000"}
  night: {dial: "PJSIP/{number}@night", caller_id: "+13125550000"}
schedules:
  evening-hours:
    timezone: UTC
    weekly: {daily: "OPEN-CLOSE"}
destinations:
  downtown: {members: ["+13125550100", "+13125550121", "+13125550131"], strategy: simultaneous, ring_timeout: 20}
  uptown: {members: ["+13125550110", "+13125550101"]}
  suburbs: {members: ["+13125550105"]}
  north: {members: ["+13125550160", "+13125550111"], overflow: central}
  central: {members: ["+13125550103"]}
  south: {members: ["+13125550124", "+13125550144"], trunk: backup}
  east: {members: ["+13125550125"], ring_timeout: 20}
  evening: {members: ["+13125550102"], schedule: evening-hours, when_closed: wait, trunk: night}
rules:
  - {name: careers, when: {page_url: {glob: "*/careers*"}}, reject: "We do not call back about job applications."}
  - {name: downtown, when: {product: downtown}, route: downtown}
  - {name: uptown, when: {product: uptown}, route: uptown}
  - {name: suburbs, when: {product: suburbs}, route: suburbs}
  - {name: north, when: {product: north}, route: north}
  - {name: south, when: {product: south}, route: south}
  - {name: evening, when: {product: evening}, route: evening}
  - {name: east, when: {product: east}, route: east}
default: central
"""

# For the trunk failover check (not part of the history above): the west team's only member congests on every
# trunk; carrier fails over to backup.
FAILOVER_ROUTING = """\
version: 1
defaults: {timezone: America/Chicago, ring_timeout: 5}
trunks:
  carrier: {dial: "PJSIP/{number}@carrier", caller_id: "+13125550000", failover: [backup]}
  backup: {dial: "PJSIP/{number}@backup", caller_id: "+13125550000"}
destinations:
  west: {members: ["+13125550144"]}
default: west
"""


def routing_closed_for(minute: datetime) -> str:
    """The routing file, with the evening team closed for the one minute starting at ``minute`` (UTC)."""
    opens = minute + timedelta(minutes=1)
    return ROUTING.replace("OPEN", opens.strftime("%H:%M")).replace("CLOSE", minute.strftime("%H:%M"))


class ScriptedPhones:
    """The lab number plan, except for numbers whose answers are scripted call by call (the last one repeats)."""

    def __init__(self, scripts: dict[str, list[str]]) -> None:
        self.scripts = {number.lstrip("+"): list(answers) for number, answers in scripts.items()}

    def __call__(self, number: str) -> str:
        answers = self.scripts.get(number.lstrip("+"))
        if answers:
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return lab_behaviour(number)


@dataclass(frozen=True)
class Visit:
    """One callback request of the scenario, as the visitor's browser posts it."""

    key: str
    site: str
    page_url: str
    phone: str
    campaign: str | None = None
    product: str | None = None
    preferred_in: timedelta | None = None  # a preferred call time this far ahead
    then: str = "wait"  # wait (until it is finished), cancel (at once), cancel_ringing, rejected

    def body(self, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {"site_key": SITES[self.site][0], "name": f"Visitor {self.key}", "phone": self.phone,
                                "page_url": self.page_url}
        if self.campaign:
            body["utm"] = {"source": "mail", "campaign": self.campaign}
        if self.product:
            body["attributes"] = {"product": self.product}
        if self.preferred_in is not None:
            body["preferred_time"] = (now + self.preferred_in).replace(second=0, microsecond=0).isoformat()
        return body


SHOP, BLOG = "https://shop.example", "https://blog.example"
NIGHT = Visit("NIGHT", "blog", f"{BLOG}/post-1", "+17735550202", "newsletter", "evening")
DAYTIME = (
    Visit("RING", "shop", f"{SHOP}/widgets?utm_source=mail&utm_campaign=spring#call", "+17735550200", "spring",
          "downtown"),
    Visit("SEQ", "shop", f"{SHOP}/widgets", "+17735550201", "spring", "uptown"),
    Visit("RETRY", "shop", f"{SHOP}/pricing", "+17735550250", "spring", "suburbs"),
    Visit("CANCEL", "blog", f"{BLOG}/post-1", "+17735550203", "newsletter", "downtown", timedelta(days=1), "cancel"),
    Visit("OVER", "blog", f"{BLOG}/pricing", "+17735550204", None, "north"),
    Visit("NOBODY", "shop", f"{SHOP}/contact", "+17735550205", None, "south"),
    Visit("UNREACH", "shop", f"{SHOP}/contact", "+17735550240", None, "suburbs"),
    Visit("HANGUP", "blog", f"{BLOG}/pricing", "+17735550208", None, "east", then="cancel_ringing"),
    Visit("REJECT", "blog", f"{BLOG}/careers", "+17735550206", then="rejected"),
)
AFTER_WINDOW = Visit("R0", "shop", f"{SHOP}/widgets", "+17735550207", "spring")
PHONE_SCRIPTS = {"+17735550250": ["busy", "hangs_up"]}


@dataclass(frozen=True)
class History:
    dsn: str
    config: Path  # the daemon's configuration (DSN, sites and their time zones) for `callswitch report -c`
    ids: dict[str, uuid.UUID]  # scenario key -> request id
    since: datetime  # the report window [since, until): every request but R0
    until: datetime
    opening: datetime  # when the evening team opened (NIGHT was deferred to it)
    originates: int  # Originate actions the simulator received


async def db_now(st: Stack) -> datetime:
    """Postgres's clock (created_at and the agent legs' originated_at come from it)."""
    now: datetime = (await st.fetch("SELECT clock_timestamp() AS t"))[0]["t"]
    return now


async def post(st: Stack, visit: Visit) -> tuple[int, dict[str, Any]]:
    origin = SITES[visit.site][1]
    resp = await st.http.post("/v1/callbacks", json=visit.body(datetime.now(UTC)), headers={"Origin": origin})
    return resp.status, await resp.json()


async def _cancel(st: Stack, request_id: uuid.UUID) -> None:
    resp = await st.http.post(f"/v1/callbacks/{request_id}/cancel")
    assert resp.status == 200, await resp.text()


async def _wait_state(st: Stack, request_id: str, state: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while (await st.fetch("SELECT state FROM callback_requests WHERE id = $1::uuid", request_id))[0]["state"] \
                != state:
            await asyncio.sleep(0.05)


async def make_history(dsn: str, directory: Path) -> History:
    """Work the scenario of the module docstring through the real stack on ``dsn`` (an empty, migrated database)."""
    now = datetime.now(UTC)
    if now.second >= 50:  # NIGHT must reach intake within the closed minute: start at the top of the next one
        await asyncio.sleep(60.2 - now.second - now.microsecond / 1e6)
        now = datetime.now(UTC)
    closed = now.replace(second=0, microsecond=0)
    st = await start_stack(dsn, directory, routing_closed_for(closed), config=CONFIG,
                           behaviour=ScriptedPhones(PHONE_SCRIPTS), time_scale=SCALE)
    ids: dict[str, uuid.UUID] = {}
    try:
        since = await db_now(st)
        status, answer = await post(st, NIGHT)
        assert (status, answer["state"]) == (202, "scheduled"), (closed, answer)
        opening = closed + timedelta(minutes=1)
        assert datetime.fromisoformat(answer["scheduled_for"]) == opening
        ids[NIGHT.key] = uuid.UUID(answer["id"])
        for visit in DAYTIME:
            status, answer = await post(st, visit)
            ids[visit.key] = rid = uuid.UUID(answer["id"])
            if visit.then == "rejected":
                assert (status, answer["state"]) == (200, "rejected"), answer
                continue
            assert status == 202, answer
            if visit.then == "cancel":
                assert answer["state"] == "scheduled", answer
                await _cancel(st, rid)
                await _wait_state(st, str(rid), "cancelled", 10)
                continue
            if visit.then == "cancel_ringing":
                async with asyncio.timeout(30):  # the agent's phone rings: the Originate reached the PBX
                    while not any(o.variables.get("CS_REQUEST_ID") == str(rid) for o in st.sim.originates):
                        await asyncio.sleep(0.02)
                await _cancel(st, rid)
            await st.wait_final(str(rid), timeout=60)
        await st.wait_final(str(ids[NIGHT.key]), timeout=150)  # the evening team opens within a minute
        until = await db_now(st)
        status, answer = await post(st, AFTER_WINDOW)
        assert status == 202, answer
        ids[AFTER_WINDOW.key] = uuid.UUID(answer["id"])
        await st.wait_final(answer["id"], timeout=60)
        assert await st.fetch("SELECT * FROM dialer_channels") == []
        originates = len(st.sim.originates)
    finally:
        await stop_stack(st)
    return History(dsn, directory / "callswitch.yaml", ids, since, until, opening, originates)


@contextlib.asynccontextmanager
async def scratch_database(server_dsn: str) -> AsyncIterator[str]:
    """A new database of its own, migrated to the latest schema, dropped afterwards."""
    name = f"callswitch_dialed_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = with_database(server_dsn, name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn
