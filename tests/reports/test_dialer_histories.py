"""Report figures over a history the real dialer made against the AMI simulator (scenario: tests/reports/dialed.py).

Counts, rates and statuses are known from the scenario and written out below. Durations (time to answer,
speed to lead, talk time, billable minutes) depend on the wall clock: each is checked against the simulator's
timings (tests/reports/dialed.py: AGENT_PICKUP, ...) on the raw records, and every report must give exactly
what its definition (docs/reporting.md) gives for those raw records, recomputed here in Python.
"""

from __future__ import annotations

import html
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from callswitch.reports.data import ReportQuery, fetch_report, fetch_summary
from tests.dialer.conftest import start_stack, stop_stack
from tests.reports.dialed import (
    AGENT_KEY,
    AGENT_PICKUP,
    CONFIG,
    FAILOVER_ROUTING,
    SCALE,
    SITE_ZONES,
    SLACK,
    TALK,
    VISITOR_PICKUP,
    VOICEMAIL,
    History,
    Visit,
    connect,
    db_now,
    make_history,
    post,
    scratch_database,
)
from tests.reports.test_cli import run

pytestmark = pytest.mark.slow  # waits up to a minute for the evening team to open

SHOP, BLOG = "https://shop.example", "https://blog.example"
A = "+131255501"  # agents: A + "00" is +13125550100
WINDOW = ("NIGHT", "RING", "SEQ", "RETRY", "CANCEL", "OVER", "NOBODY", "UNREACH", "HANGUP", "REJECT")
CONNECTED = ("NIGHT", "RING", "SEQ", "RETRY", "OVER")
EVERYTHING = (*WINDOW, "R0")


@pytest.fixture(scope="module")
async def history(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[History]:
    async with scratch_database(pg_server) as dsn:
        yield await make_history(dsn, tmp_path_factory.mktemp("dialed"))


@pytest.fixture
async def db(history: History) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection, as `callswitch report` and an analyst's client have (no type codecs)."""
    conn = await asyncpg.connect(history.dsn)
    try:
        yield conn
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------ raw records
@dataclass
class Raw:
    """What the dialer recorded, read straight from the tables: the input of the timing figures."""

    key_of: dict[uuid.UUID, str]
    requests: dict[str, asyncpg.Record]
    legs: dict[str, list[asyncpg.Record]]  # by request key, in insertion order

    def agent_legs(self, keys: Iterable[str]) -> list[asyncpg.Record]:
        return [leg for k in keys for leg in self.legs[k] if leg["leg"] == "agent"]

    def speed_to_lead(self, key: str) -> float:
        answered = max(leg["answered_at"] for leg in self.legs[key] if leg["leg"] == "customer" and leg["answered_at"])
        return seconds(answered - self.requests[key]["created_at"])

    def talk(self, key: str) -> int:
        return sum(leg["billable_seconds"] for leg in self.legs[key] if leg["leg"] == "customer" and leg["answered_at"])

    def ring_times(self, keys: Iterable[str], destination: str, member: str) -> list[float]:
        return [seconds(leg["answered_at"] - leg["originated_at"]) for leg in self.agent_legs(keys)
                if (leg["destination"], leg["member"]) == (destination, member) and leg["answered_at"]]

    def offer_times(self, keys: Iterable[str], destination: str) -> list[float]:
        """First dial to first pick-up of each answered offer (one attempt of one request) of ``destination``."""
        out = []
        for key in keys:
            offers: dict[int, list[asyncpg.Record]] = {}
            for leg in self.agent_legs([key]):
                if leg["destination"] == destination:
                    offers.setdefault(leg["attempt"], []).append(leg)
            for legs in offers.values():
                picked = [leg["answered_at"] for leg in legs if leg["answered_at"]]
                if picked:
                    out.append(seconds(min(picked) - min(leg["originated_at"] for leg in legs)))
        return out

    def trunk_minutes(self, keys: Iterable[str], trunk: str) -> float | None:
        total = sum(leg["billable_seconds"] or 0 for k in keys for leg in self.legs[k] if leg["trunk"] == trunk)
        return r1(total / 60)


def seconds(delta: Any) -> float:
    return float(delta.total_seconds())


def r1(x: float | None) -> float | None:
    """SQL round(x, 1): half away from zero."""
    return None if x is None else float(Decimal(repr(x)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def percentile_cont(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def about(x: float | None) -> Any:
    """A duration as a report gives it (1 decimal): the recomputed value, give or take the rounding."""
    return None if x is None else pytest.approx(r1(x), abs=0.051)


@pytest.fixture
async def raw(db: asyncpg.Connection, history: History) -> Raw:
    key_of = {rid: key for key, rid in history.ids.items()}
    requests = {key_of[r["id"]]: r for r in await db.fetch("SELECT * FROM callback_requests")}
    legs: dict[str, list[asyncpg.Record]] = {key: [] for key in requests}
    for leg in await db.fetch("SELECT * FROM call_legs ORDER BY id"):
        legs[key_of[leg["request_id"]]].append(leg)
    return Raw(key_of, requests, legs)


# ------------------------------------------------------------------------------------------ the history itself
async def test_the_dialer_made_the_scenario(raw: Raw, history: History) -> None:
    """The records the reports read are those the scenario describes (if not, the dialer behaves differently)."""
    outcomes = {k: (r["state"], r["outcome"], r["attempts"]) for k, r in raw.requests.items()}
    assert outcomes == {
        "NIGHT": ("completed", "connected", 1), "RING": ("completed", "connected", 1),
        "SEQ": ("completed", "connected", 1), "RETRY": ("completed", "connected", 2),
        "CANCEL": ("cancelled", "cancelled", 0), "OVER": ("completed", "connected", 1),
        "NOBODY": ("failed", "no_agent", 2), "UNREACH": ("failed", "customer_unreachable", 2),
        "HANGUP": ("cancelled", "cancelled", 1), "REJECT": ("rejected", "rejected", 0),
        "R0": ("completed", "connected", 1)}
    legs = {k: [(leg["attempt"], leg["destination"], leg["member"] or "visitor", leg["trunk"], leg["disposition"])
                for leg in v] for k, v in raw.legs.items()}
    visitor = "visitor"
    south = [("south", A + "24", "backup", "no_answer"), ("south", A + "44", "backup", "congestion")]
    assert legs == {
        "NIGHT": [(1, "evening", A + "02", "night", "accepted"), (1, "evening", visitor, "night", "answered")],
        "RING": [(1, "downtown", A + "00", "carrier", "accepted"),
                 (1, "downtown", A + "21", "carrier", "answered_elsewhere"),
                 (1, "downtown", A + "31", "carrier", "busy"), (1, "downtown", visitor, "carrier", "answered")],
        "SEQ": [(1, "uptown", A + "10", "carrier", "declined"), (1, "uptown", A + "01", "carrier", "accepted"),
                (1, "uptown", visitor, "carrier", "answered")],
        "RETRY": [(1, "suburbs", A + "05", "carrier", "accepted"), (1, "suburbs", visitor, "carrier", "busy"),
                  (2, "suburbs", A + "05", "carrier", "accepted"), (2, "suburbs", visitor, "carrier", "answered")],
        "CANCEL": [],
        "OVER": [(1, "north", A + "60", "carrier", "answered"),  # the voicemail: picked up, no key
                 (1, "north", A + "11", "carrier", "declined"), (1, "central", A + "03", "carrier", "accepted"),
                 (1, "central", visitor, "carrier", "answered")],
        "NOBODY": [(attempt, *leg) for attempt in (1, 2) for leg in south],
        "UNREACH": [(a, "suburbs", m, "carrier", d) for a in (1, 2)
                    for m, d in ((A + "05", "accepted"), (visitor, "unreachable"))],
        "HANGUP": [(1, "east", A + "25", "carrier", "cancelled")],
        "REJECT": [],
        "R0": [(1, "central", A + "03", "carrier", "accepted"), (1, "central", visitor, "carrier", "answered")],
    }
    assert history.originates == sum(1 for v in legs.values() for leg in v if leg[2] != visitor)
    # the window holds every request but R0, and every leg of them
    created = {k: r["created_at"] for k, r in raw.requests.items()}
    assert all(history.since <= created[k] < history.until for k in WINDOW)
    assert created["R0"] >= history.until
    assert all(history.since <= leg["originated_at"] < history.until for leg in raw.agent_legs(WINDOW))
    # NIGHT waited for the opening: intake scheduled it for then, and it was dialled then
    assert raw.requests["NIGHT"]["created_at"] < history.opening == raw.requests["NIGHT"]["due_at"]
    assert history.opening <= min(leg["originated_at"] for leg in raw.legs["NIGHT"]) <= history.opening + \
        timedelta(seconds=SLACK)


async def test_timings_agree_with_the_simulator(raw: Raw, history: History) -> None:
    """Durations on the raw records, bounded by the simulator's timings (the figures below are built on them)."""
    for leg in raw.agent_legs(EVERYTHING):
        if leg["answered_at"] is not None:  # agents pick up AGENT_PICKUP recorded seconds after the dial
            pickup = 0.0 if leg["member"] == A + "60" else AGENT_PICKUP * SCALE  # a voicemail at once
            assert pickup * 0.95 <= seconds(leg["answered_at"] - leg["originated_at"]) <= pickup + SLACK
    for key in (*CONNECTED, "R0"):  # talk: TALK recorded seconds, counted in whole seconds
        assert 0 <= raw.talk(key) <= TALK * SCALE + 1 + SLACK
    # speed to lead: the visitor answers VISITOR_PICKUP after the accepting agent's dial; before that agent,
    # a declining one held the lead for AGENT_KEY (SEQ; OVER, after the voicemail's VOICEMAIL), or a whole first
    # attempt did (RETRY: the agent accepted at AGENT_KEY, the visitor was busy, the retry came 0.3 s later)
    least = {"RING": VISITOR_PICKUP * SCALE, "SEQ": (AGENT_KEY + VISITOR_PICKUP) * SCALE,
             "OVER": (VOICEMAIL + AGENT_KEY + VISITOR_PICKUP) * SCALE,
             "RETRY": (AGENT_KEY + VISITOR_PICKUP) * SCALE + 0.3,
             "NIGHT": seconds(history.opening - raw.requests["NIGHT"]["created_at"]) + VISITOR_PICKUP * SCALE}
    for key, low in least.items():
        assert low * 0.95 <= raw.speed_to_lead(key) <= low + SLACK, key


# ------------------------------------------------------------------------------------------ per-request views
async def test_request_context_and_funnel_per_request(db: asyncpg.Connection, raw: Raw, history: History) -> None:
    rows = {raw.key_of[r["request_id"]]: r for r in await db.fetch(
        "SELECT f.*, c.route_rule FROM cs_request_funnel f JOIN cs_request_context c USING (request_id)")}
    cols = ("site", "page", "campaign", "destination", "route_rule", "state", "outcome", "attempts", "after_hours",
            "agent_legs", "agent_declines", "accepted_destination", "accepted_member", "connected", "furthest_step",
            "stop_reason")
    got = {k: tuple(r[c] for c in cols) for k, r in rows.items()}
    N = None
    assert got == {
        "NIGHT": ("blog", f"{BLOG}/post-1", "newsletter", "evening", "rules[6] (evening)", "completed", "connected",
                  1, True, 1, 0, "evening", A + "02", True, "connected", "connected"),
        "RING": ("shop", f"{SHOP}/widgets", "spring", "downtown", "rules[1] (downtown)", "completed", "connected",
                 1, False, 3, 0, "downtown", A + "00", True, "connected", "connected"),
        "SEQ": ("shop", f"{SHOP}/widgets", "spring", "uptown", "rules[2] (uptown)", "completed", "connected",
                1, False, 2, 1, "uptown", A + "01", True, "connected", "connected"),
        "RETRY": ("shop", f"{SHOP}/pricing", "spring", "suburbs", "rules[3] (suburbs)", "completed", "connected",
                  2, False, 2, 0, "suburbs", A + "05", True, "connected", "connected"),
        "CANCEL": ("blog", f"{BLOG}/post-1", "newsletter", "downtown", "rules[1] (downtown)", "cancelled",
                   "cancelled", 0, False, 0, 0, N, N, False, "requested", "cancelled"),
        "OVER": ("blog", f"{BLOG}/pricing", N, "north", "rules[4] (north)", "completed", "connected",
                 1, False, 3, 1, "central", A + "03", True, "connected", "connected"),
        "NOBODY": ("shop", f"{SHOP}/contact", N, "south", "rules[5] (south)", "failed", "no_agent",
                   2, False, 4, 0, N, N, False, "agent_rung", "no_agent"),
        "UNREACH": ("shop", f"{SHOP}/contact", N, "suburbs", "rules[3] (suburbs)", "failed", "customer_unreachable",
                    2, False, 2, 0, "suburbs", A + "05", False, "accepted", "customer_unreachable"),
        "HANGUP": ("blog", f"{BLOG}/pricing", N, "east", "rules[7] (east)", "cancelled", "cancelled",
                   1, False, 1, 0, N, N, False, "agent_rung", "cancelled"),
        "REJECT": ("blog", f"{BLOG}/careers", N, N, "rules[0] (careers)", "rejected", "rejected",
                   0, False, 0, 0, N, N, False, "requested", "rejected"),
        "R0": ("shop", f"{SHOP}/widgets", "spring", "central", "default", "completed", "connected",
               1, False, 1, 0, "central", A + "03", True, "connected", "connected"),
    }
    # scheduled by intake: NIGHT for the opening (after hours), CANCEL for the visitor's own time (not after hours)
    scheduled = {k: r["scheduled_for"] for k, r in rows.items() if r["scheduled_for"] is not None}
    assert scheduled == {"NIGHT": history.opening, "CANCEL": raw.requests["CANCEL"]["preferred_at"]}
    for key, r in rows.items():
        if key in (*CONNECTED, "R0"):
            assert float(r["speed_to_lead_s"]) == pytest.approx(raw.speed_to_lead(key), abs=1e-6), key
            assert r["talk_seconds"] == raw.talk(key), key
            assert r["connected_at"] == r["visitor_answered_at"]
        else:
            assert (r["speed_to_lead_s"], r["talk_seconds"], r["connected_at"]) == (None, None, None), key
    # RETRY: the steps are the first time reached (attempt 1), the connection is attempt 2's
    first, second = (raw.legs["RETRY"][0], raw.legs["RETRY"][2])
    assert (rows["RETRY"]["agent_rung_at"], rows["RETRY"]["accepted_at"]) == (first["originated_at"],
                                                                              first["accepted_at"])
    assert rows["RETRY"]["visitor_dialled_at"] == raw.legs["RETRY"][1]["originated_at"]
    assert rows["RETRY"]["visitor_answered_at"] == raw.legs["RETRY"][3]["answered_at"] > second["accepted_at"]


async def test_agent_rings_and_destination_offers(db: asyncpg.Connection, raw: Raw) -> None:
    rings: dict[str, list[tuple[Any, ...]]] = {}
    for r in await db.fetch("SELECT * FROM cs_agent_rings ORDER BY leg_id"):
        rings.setdefault(raw.key_of[r["request_id"]], []).append(
            (r["attempt"], r["destination"], r["member"], r["trunk"], r["result"], r["after_hours"]))
    south = [("south", A + "24", "backup", "missed", False), ("south", A + "44", "backup", "missed", False)]
    assert rings == {
        "NIGHT": [(1, "evening", A + "02", "night", "accepted", True)],
        "RING": [(1, "downtown", A + "00", "carrier", "accepted", False),
                 (1, "downtown", A + "21", "carrier", "answered_elsewhere", False),  # released: not missed
                 (1, "downtown", A + "31", "carrier", "missed", False)],  # busy
        "SEQ": [(1, "uptown", A + "10", "carrier", "declined", False),
                (1, "uptown", A + "01", "carrier", "accepted", False)],
        "RETRY": [(a, "suburbs", A + "05", "carrier", "accepted", False) for a in (1, 2)],
        "OVER": [(1, "north", A + "60", "carrier", "answered", False),  # picked up, neither key
                 (1, "north", A + "11", "carrier", "declined", False),
                 (1, "central", A + "03", "carrier", "accepted", False)],
        "NOBODY": [(a, *ring) for a in (1, 2) for ring in south],
        "UNREACH": [(a, "suburbs", A + "05", "carrier", "accepted", False) for a in (1, 2)],
        "HANGUP": [(1, "east", A + "25", "carrier", "cancelled", False)],
        "R0": [(1, "central", A + "03", "carrier", "accepted", False)],
    }
    offers: dict[str, list[tuple[Any, ...]]] = {}
    for r in await db.fetch("SELECT * FROM cs_destination_offers ORDER BY attempt, destination"):
        key = raw.key_of[r["request_id"]]
        offers.setdefault(key, []).append((r["attempt"], r["destination"], r["members_rung"], r["result"]))
        legs = [leg for leg in raw.agent_legs([key])
                if (leg["attempt"], leg["destination"]) == (r["attempt"], r["destination"])]
        assert r["offered_at"] == min(leg["originated_at"] for leg in legs)
        picked = [leg["answered_at"] for leg in legs if leg["answered_at"]]
        assert r["first_answered_at"] == (min(picked) if picked else None)
    # one offer per attempt and destination, however many members rang (ring-all, hunting)
    assert offers == {
        "NIGHT": [(1, "evening", 1, "accepted")],
        "RING": [(1, "downtown", 3, "accepted")],
        "SEQ": [(1, "uptown", 2, "accepted")],  # a decline, then an acceptance: accepted
        "RETRY": [(1, "suburbs", 1, "accepted"), (2, "suburbs", 1, "accepted")],
        "OVER": [(1, "central", 1, "accepted"), (1, "north", 2, "declined")],  # voicemail, then a decline
        "NOBODY": [(1, "south", 2, "missed"), (2, "south", 2, "missed")],
        "UNREACH": [(1, "suburbs", 1, "accepted"), (2, "suburbs", 1, "accepted")],
        "HANGUP": [(1, "east", 1, "cancelled")],
        "R0": [(1, "central", 1, "accepted")],
    }


# ------------------------------------------------------------------------------------------ reports of the window
def lead_row(column: str, group: str, requests: int, after_hours: int, connected: int, raw: Raw,
             keys: Iterable[str]) -> dict[str, Any]:
    """A row of the pages/campaigns/sites reports: counts from the scenario, durations from the raw records of
    the scenario's requests ``keys`` of the group."""
    keys = list(keys)
    assert len(keys) == requests
    done = [k for k in keys if k in (*CONNECTED, "R0")]
    in_hours = [k for k in done if k != "NIGHT"]
    assert len(done) == connected
    return {column: group, "requests": requests, "after_hours": after_hours, "connected": connected,
            "connect_rate": round(connected / requests, 4),
            "median_speed_to_lead_s": about(percentile_cont([raw.speed_to_lead(k) for k in done], 0.5)),
            "median_speed_to_lead_in_hours_s": about(percentile_cont([raw.speed_to_lead(k) for k in in_hours], 0.5)),
            "talk_seconds": sum(raw.talk(k) for k in done)}


def expected_pages(raw: Raw) -> list[dict[str, Any]]:
    # most requests first, then by page
    return [
        lead_row("page", f"{BLOG}/post-1", 2, 1, 1, raw, ["NIGHT", "CANCEL"]),  # no in-hours median: NIGHT only
        lead_row("page", f"{BLOG}/pricing", 2, 0, 1, raw, ["OVER", "HANGUP"]),
        lead_row("page", f"{SHOP}/contact", 2, 0, 0, raw, ["NOBODY", "UNREACH"]),  # 4 attempts, 2 requests
        lead_row("page", f"{SHOP}/widgets", 2, 0, 2, raw, ["RING", "SEQ"]),  # RING's ?utm.. and #.. dropped
        lead_row("page", f"{BLOG}/careers", 1, 0, 0, raw, ["REJECT"]),
        lead_row("page", f"{SHOP}/pricing", 1, 0, 1, raw, ["RETRY"]),  # one request, however many attempts
    ]


def expected_campaigns(raw: Raw) -> list[dict[str, Any]]:
    return [
        lead_row("campaign", "(none)", 5, 0, 1, raw, ["OVER", "NOBODY", "UNREACH", "HANGUP", "REJECT"]),
        lead_row("campaign", "spring", 3, 0, 3, raw, ["RING", "SEQ", "RETRY"]),
        lead_row("campaign", "newsletter", 2, 1, 1, raw, ["NIGHT", "CANCEL"]),
    ]


def expected_sites(raw: Raw) -> list[dict[str, Any]]:
    return [
        lead_row("site", "blog", 5, 1, 2, raw, ["NIGHT", "CANCEL", "OVER", "HANGUP", "REJECT"]),
        lead_row("site", "shop", 5, 0, 3, raw, ["RING", "SEQ", "RETRY", "NOBODY", "UNREACH"]),
    ]


def dest_row(destination: str, requests: int, offered: int, answered: int, accepted: int, declined: int,
             missed: int, after_hours_share: float, raw: Raw, keys: Iterable[str],
             cancelled: int = 0) -> dict[str, Any]:
    times = raw.offer_times(keys, destination)
    assert len(times) == answered  # the raw records agree with the scenario
    ended = offered - cancelled  # nothing was still ringing at the end
    return {"destination": destination, "requests": requests, "offered": offered, "answered": answered,
            "accepted": accepted, "declined": declined, "missed": missed,
            "answer_rate": round(answered / (answered + missed), 4) if answered + missed else None,
            "accept_rate": round(accepted / ended, 4) if ended else None,
            "median_time_to_answer_s": about(percentile_cont(times, 0.5)),
            "p90_time_to_answer_s": about(percentile_cont(times, 0.9)), "after_hours_share": after_hours_share}


def expected_destinations(raw: Raw) -> list[dict[str, Any]]:
    # most offers first, then by name; CANCEL was routed to downtown but never offered: not counted there
    return [
        dest_row("suburbs", 2, 4, 4, 4, 0, 0, 0.0, raw, WINDOW),  # RETRY and UNREACH: two attempts each
        dest_row("south", 1, 2, 0, 0, 0, 2, 0.0, raw, WINDOW),  # NOBODY and its retry: missed
        dest_row("central", 1, 1, 1, 1, 0, 0, 0.0, raw, WINDOW),  # OVER's overflow
        dest_row("downtown", 1, 1, 1, 1, 0, 0, 0.0, raw, WINDOW),  # ring-all of three: ONE offer
        dest_row("east", 1, 1, 0, 0, 0, 0, 0.0, raw, WINDOW, cancelled=1),  # HANGUP: in no rate
        dest_row("evening", 1, 1, 1, 1, 0, 0, 1.0, raw, WINDOW),  # NIGHT: after hours
        dest_row("north", 1, 1, 1, 0, 1, 0, 0.0, raw, WINDOW),  # OVER: voicemail, a decline, nobody accepted
        dest_row("uptown", 1, 1, 1, 1, 0, 0, 0.0, raw, WINDOW),  # SEQ: a decline, then an acceptance
    ]


def member_row(destination: str, member: str, offered: int, answered: int, accepted: int, declined: int,
               missed: int, elsewhere: int, after_hours_share: float, raw: Raw,
               keys: tuple[str, ...] = WINDOW) -> dict[str, Any]:
    times = raw.ring_times(keys, destination, A + member)
    assert len(times) == answered
    return {"destination": destination, "member": A + member, "offered": offered, "answered": answered,
            "accepted": accepted, "declined": declined, "missed": missed, "answered_elsewhere": elsewhere,
            "answer_rate": round(answered / (answered + missed), 4) if answered + missed else None,
            "median_time_to_answer_s": about(percentile_cont(times, 0.5)),
            "p90_time_to_answer_s": about(percentile_cont(times, 0.9)), "after_hours_share": after_hours_share}


def expected_members(raw: Raw) -> list[dict[str, Any]]:
    # by destination, most rings first, then by member
    return [
        member_row("central", "03", 1, 1, 1, 0, 0, 0, 0.0, raw),
        member_row("downtown", "00", 1, 1, 1, 0, 0, 0, 0.0, raw),
        member_row("downtown", "21", 1, 0, 0, 0, 0, 1, 0.0, raw),  # released by the winner: no answer rate
        member_row("downtown", "31", 1, 0, 0, 0, 1, 0, 0.0, raw),  # busy
        member_row("east", "25", 1, 0, 0, 0, 0, 0, 0.0, raw),  # cancelled while ringing: no answer rate
        member_row("evening", "02", 1, 1, 1, 0, 0, 0, 1.0, raw),
        member_row("north", "11", 1, 1, 0, 1, 0, 0, 0.0, raw),
        member_row("north", "60", 1, 1, 0, 0, 0, 0, 0.0, raw),  # voicemail: answered, neither key
        member_row("south", "24", 2, 0, 0, 0, 2, 0, 0.0, raw),  # rang out, twice
        member_row("south", "44", 2, 0, 0, 0, 2, 0, 0.0, raw),  # congestion, twice
        member_row("suburbs", "05", 4, 4, 4, 0, 0, 0, 0.0, raw),
        member_row("uptown", "01", 1, 1, 1, 0, 0, 0, 0.0, raw),
        member_row("uptown", "10", 1, 1, 0, 1, 0, 0, 0.0, raw),
    ]


STEPS = ("requested", "agent_rung", "agent_answered", "accepted", "visitor_answered", "connected")


def funnel(reached: list[int], reasons: list[dict[str, int]]) -> list[dict[str, Any]]:
    return [{"step_no": i + 1, "step": step, "reached": reached[i],
             "share_of_requests": round(reached[i] / reached[0], 4) if reached[0] else None,
             "stopped_here": sum(reasons[i].values()), "stop_reasons": reasons[i]} for i, step in enumerate(STEPS)]


# furthest steps: NIGHT RING SEQ RETRY OVER connected; CANCEL REJECT requested; NOBODY (nobody picked up in two
# attempts) and HANGUP (cancelled while ringing) agent_rung; UNREACH accepted (the visitor was never reached)
FUNNEL = funnel([10, 8, 6, 6, 5, 5], [{"cancelled": 1, "rejected": 1}, {"cancelled": 1, "no_agent": 1}, {},
                                      {"customer_unreachable": 1}, {}, {"connected": 5}])
FUNNEL_SHOP = funnel([5, 5, 4, 4, 3, 3], [{}, {"no_agent": 1}, {}, {"customer_unreachable": 1}, {}, {"connected": 3}])
FUNNEL_SUBURBS = funnel([2, 2, 2, 2, 1, 1], [{}, {}, {}, {"customer_unreachable": 1}, {}, {"connected": 1}])


def trunk_row(trunk: str, calls: int, agent: int, visitor: int, answered: int, peak: int,
              failures: dict[str, int], raw: Raw, keys: tuple[str, ...]) -> dict[str, Any]:
    failed = sum(failures.values())
    return {"trunk": trunk, "calls": calls, "agent_calls": agent, "visitor_calls": visitor, "answered": answered,
            "minutes": pytest.approx(raw.trunk_minutes(keys, trunk), abs=1e-9), "peak_concurrent": peak,
            "failed": failed, "failure_rate": round(failed / calls, 4), "failures_by_cause": failures}


def expected_trunks(raw: Raw) -> list[dict[str, Any]]:
    # carrier, legs agent/visitor (answered): RING 3/1 (0100 + visitor), SEQ 2/1 (all 3), RETRY 2/2 (3: the
    # first visitor leg was busy), OVER 3/1 (all 4: the voicemail picked up), UNREACH 2/2 (2 agents), HANGUP
    # 1/0; failed: the unallocated visitor (cause 1) twice. Most at once: the ring-all's three agents (its busy
    # one ends before the visitor is dialled). backup: NOBODY's 0124 (rang out, not a failure) and 0144
    # (congestion, 34), twice; one at a time. night: NIGHT's agent and visitor, up together.
    return [
        trunk_row("carrier", 20, 13, 7, 14, 3, {"1": 2}, raw, WINDOW),
        trunk_row("backup", 4, 4, 0, 0, 1, {"34": 2}, raw, WINDOW),
        trunk_row("night", 2, 1, 1, 2, 2, {}, raw, WINDOW),
    ]


def expected_heatmap(raw: Raw, zones: dict[str, str], default: str, keys: tuple[str, ...] = WINDOW) -> dict:
    """(weekday, hour) -> (requests, connected), in each request's site zone."""
    cells: Counter[tuple[int, int]] = Counter()
    connected: Counter[tuple[int, int]] = Counter()
    for key in keys:
        r = raw.requests[key]
        local = r["created_at"].astimezone(ZoneInfo(zones.get(r["site"], default)))
        cells[(local.isoweekday(), local.hour)] += 1
        connected[(local.isoweekday(), local.hour)] += key in CONNECTED
    return {cell: (n, connected[cell]) for cell, n in cells.items()}


def heat(rows: list[dict[str, Any]]) -> dict:
    assert len(rows) == 168 and [(r["weekday"], r["hour"]) for r in rows] == [
        (d, h) for d in range(1, 8) for h in range(24)]
    return {(r["weekday"], r["hour"]): (r["requests"], r["connected"]) for r in rows if r["requests"]}


async def test_report_functions_of_the_window(db: asyncpg.Connection, raw: Raw, history: History) -> None:
    q = ReportQuery(history.since, history.until)
    assert await fetch_report(db, "pages", q) == expected_pages(raw)
    assert await fetch_report(db, "campaigns", q) == expected_campaigns(raw)
    assert await fetch_report(db, "sites", q) == expected_sites(raw)
    assert await fetch_report(db, "destinations", q) == expected_destinations(raw)
    assert await fetch_report(db, "members", q) == expected_members(raw)
    assert await fetch_report(db, "funnel", q) == FUNNEL
    assert await fetch_report(db, "trunks", q) == expected_trunks(raw)
    assert heat(await fetch_report(db, "heatmap", q)) == expected_heatmap(raw, {}, "UTC")
    chicago = ReportQuery(history.since, history.until, default_tz="America/Chicago")
    assert heat(await fetch_report(db, "heatmap", chicago)) == expected_heatmap(raw, {}, "America/Chicago")
    zoned = ReportQuery(history.since, history.until, site_zones=SITE_ZONES)
    assert heat(await fetch_report(db, "heatmap", zoned)) == expected_heatmap(raw, SITE_ZONES, "UTC")
    connected = [raw.speed_to_lead(k) for k in CONNECTED]
    assert await fetch_summary(db, q) == {
        "requests": 10, "connected": 5, "connect_rate": 0.5, "after_hours": 1,
        "median_speed_to_lead_s": about(percentile_cont(connected, 0.5)),
        "talk_seconds": sum(raw.talk(k) for k in CONNECTED)}


async def test_heatmap_site_zones_on_a_daemon_pool_connection(history: History, raw: Raw) -> None:
    conn = await connect(history.dsn)  # as callswitch.db.pool.Database sets its connections up
    try:
        zoned = ReportQuery(history.since, history.until, site_zones=SITE_ZONES)
        assert heat(await fetch_report(conn, "heatmap", zoned)) == expected_heatmap(raw, SITE_ZONES, "UTC")
    finally:
        await conn.close()


async def test_filters_by_site_and_destination(db: asyncpg.Connection, raw: Raw, history: History) -> None:
    def q(site: str | None = None, destination: str | None = None) -> ReportQuery:
        return ReportQuery(history.since, history.until, site=site, destination=destination)

    assert await fetch_report(db, "funnel", q(site="shop")) == FUNNEL_SHOP
    # the funnel's destination is the request's first one (RETRY and UNREACH were routed to suburbs)
    assert await fetch_report(db, "funnel", q(destination="suburbs")) == FUNNEL_SUBURBS
    # OVER was routed to north: the funnel of central is empty, its offers are counted at central
    assert [r["reached"] for r in await fetch_report(db, "funnel", q(destination="central"))] == [0] * 6
    blog = ("NIGHT", "CANCEL", "OVER", "HANGUP", "REJECT")
    assert await fetch_report(db, "destinations", q(site="blog")) == [
        dest_row("central", 1, 1, 1, 1, 0, 0, 0.0, raw, blog),
        dest_row("east", 1, 1, 0, 0, 0, 0, 0.0, raw, blog, cancelled=1),
        dest_row("evening", 1, 1, 1, 1, 0, 0, 1.0, raw, blog),
        dest_row("north", 1, 1, 1, 0, 1, 0, 0.0, raw, blog)]
    assert await fetch_report(db, "destinations", q(destination="south")) == expected_destinations(raw)[1:2]
    assert await fetch_report(db, "members", q(destination="downtown")) == [
        r for r in expected_members(raw) if r["destination"] == "downtown"]
    assert await fetch_report(db, "sites", q(site="blog")) == expected_sites(raw)[:1]
    # carrier: OVER's voicemail, decline, acceptance and visitor (at most 2 up at once), HANGUP's one ring
    assert await fetch_report(db, "trunks", q(site="blog")) == [
        trunk_row("carrier", 5, 4, 1, 4, 2, {}, raw, ("OVER", "HANGUP")),
        trunk_row("night", 2, 1, 1, 2, 2, {}, raw, ("NIGHT",))]


async def test_all_time_views_also_hold_the_request_after_the_window(db: asyncpg.Connection, raw: Raw) -> None:
    """The cs_*_stats views are the reports over all time: R0 (shop, /widgets, spring, central; connected, two
    legs on carrier) counts there too."""
    async def view(name: str) -> list[dict[str, Any]]:
        return [{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()}
                for r in await db.fetch(f"SELECT * FROM {name}")]

    assert await view("cs_site_stats") == [
        lead_row("site", "shop", 6, 0, 4, raw, ["RING", "SEQ", "RETRY", "NOBODY", "UNREACH", "R0"]),
        lead_row("site", "blog", 5, 1, 2, raw, ["NIGHT", "CANCEL", "OVER", "HANGUP", "REJECT"])]
    assert await view("cs_campaign_stats") == [
        lead_row("campaign", "(none)", 5, 0, 1, raw, ["OVER", "NOBODY", "UNREACH", "HANGUP", "REJECT"]),
        lead_row("campaign", "spring", 4, 0, 4, raw, ["RING", "SEQ", "RETRY", "R0"]),
        lead_row("campaign", "newsletter", 2, 1, 1, raw, ["NIGHT", "CANCEL"])]
    pages = expected_pages(raw)
    assert await view("cs_page_stats") == [
        lead_row("page", f"{SHOP}/widgets", 3, 0, 3, raw, ["RING", "SEQ", "R0"]), *pages[:3], *pages[4:]]
    window = expected_destinations(raw)
    central = dest_row("central", 2, 2, 2, 2, 0, 0, 0.0, raw, EVERYTHING)  # OVER's overflow and R0
    assert await view("cs_destination_stats") == [window[0], central, window[1], *window[3:]]
    members = expected_members(raw)
    assert await view("cs_member_stats") == [member_row("central", "03", 2, 2, 2, 0, 0, 0, 0.0, raw, EVERYTHING),
                                             *members[1:]]
    trunks = [{k: v for k, v in r.items() if k != "failures_by_cause"} for r in [
        trunk_row("carrier", 22, 14, 8, 16, 3, {"1": 2}, raw, EVERYTHING), *expected_trunks(raw)[1:]]]
    assert await view("cs_trunk_stats") == trunks


# ------------------------------------------------------------------------------------------ `callswitch report`
async def report_json(capsys: pytest.CaptureFixture[str], history: History, name: str, *argv: str) -> dict:
    window = ["--since", history.since.isoformat(), "--until", history.until.isoformat()]
    assert await run(["report", name, "--dsn", history.dsn, "--format", "json", *window, *argv]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["report"], out["since"], out["until"]) == (name, history.since.isoformat(),
                                                          history.until.isoformat())
    return out


async def test_cli_json_of_every_report(history: History, raw: Raw, capsys: pytest.CaptureFixture[str]) -> None:
    def rows(out: dict) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = out["rows"]
        return found

    utc = ("--tz", "UTC")
    assert rows(await report_json(capsys, history, "pages", *utc)) == expected_pages(raw)
    assert rows(await report_json(capsys, history, "campaigns", *utc)) == expected_campaigns(raw)
    assert rows(await report_json(capsys, history, "sites", *utc)) == expected_sites(raw)
    assert rows(await report_json(capsys, history, "destinations", *utc)) == expected_destinations(raw)
    assert rows(await report_json(capsys, history, "members", *utc)) == expected_members(raw)
    assert rows(await report_json(capsys, history, "funnel", *utc)) == FUNNEL
    assert rows(await report_json(capsys, history, "funnel", "--site", "shop", *utc)) == FUNNEL_SHOP
    assert rows(await report_json(capsys, history, "trunks", *utc)) == expected_trunks(raw)
    out = await report_json(capsys, history, "heatmap", *utc)
    assert (out["time_zone"], out["site_time_zones"]) == ("UTC", {})
    assert heat(rows(out)) == expected_heatmap(raw, {}, "UTC")
    # the configuration's site zones: each request counts in its own site's local time
    out = await report_json(capsys, history, "heatmap", "-c", str(history.config))
    assert out["site_time_zones"] == SITE_ZONES
    assert heat(rows(out)) == expected_heatmap(raw, SITE_ZONES, "UTC")


async def test_cli_html_headline_tiles(history: History, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    window = ["--since", history.since.isoformat(), "--until", history.until.isoformat(), "--tz", "UTC"]
    assert await run(["report", "html", "--dsn", history.dsn, "-o", str(page), *window]) == 0
    text = page.read_text(encoding="utf-8")

    for value, name in (("10", "Requests"), ("5", "Connected"), ("50.0%", "Connect rate"),
                        ("1", "Outside opening hours")):
        assert f'<div class="v">{html.escape(value)}</div><div class="k">{name}</div>' in text, name


# ------------------------------------------------------------------------------------------ trunk failover
async def test_failover_to_the_backup_trunk_is_dialled_and_reported(clean_db: str, tmp_path: Path) -> None:
    """0144 congests on carrier, the destination's trunk fails over to backup, where it congests again; the
    retry goes the same way: two legs per trunk, every one a failure (cause 34), one offer per attempt."""
    st = await start_stack(clean_db, tmp_path, FAILOVER_ROUTING, config=CONFIG, time_scale=SCALE)
    try:
        since = await db_now(st)
        status, answer = await post(st, Visit("WEST", "shop", f"{SHOP}/contact", "+17735550209"))
        assert status == 202, answer
        row = await st.wait_final(answer["id"])
        until = await db_now(st)
    finally:
        await stop_stack(st)
    assert (row["state"], row["outcome"], row["attempts"]) == ("failed", "no_agent", 2)
    conn = await asyncpg.connect(clean_db)
    try:
        legs = await conn.fetch("SELECT attempt, trunk, disposition, hangup_cause FROM call_legs ORDER BY id")
        assert [tuple(leg) for leg in legs] == [(a, t, "congestion", 34) for a in (1, 2) for t in ("carrier", "backup")]
        q = ReportQuery(since, until)
        assert [(r["trunk"], r["calls"], r["failed"], r["failure_rate"], r["failures_by_cause"])
                for r in await fetch_report(conn, "trunks", q)] == [
            ("backup", 2, 2, 1.0, {"34": 2}), ("carrier", 2, 2, 1.0, {"34": 2})]
        assert [(r["destination"], r["requests"], r["offered"], r["missed"])
                for r in await fetch_report(conn, "destinations", q)] == [("west", 1, 2, 2)]
        assert [(r["member"], r["offered"], r["missed"]) for r in await fetch_report(conn, "members", q)] == [
            (A + "44", 4, 4)]  # a ring per leg: two trunks, two attempts
    finally:
        await conn.close()
