"""Webhook payloads, built from the database when an outbox event is fanned out (docs/notifications.md)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from callswitch.db.queries import QUERIES as Q
from callswitch.notify.config import FINAL_EVENT_TYPES

PAYLOAD_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def request_section(r: asyncpg.Record) -> dict[str, Any]:
    utm = {k: r[f"utm_{k}"] for k in ("source", "medium", "campaign", "term", "content") if r[f"utm_{k}"]}
    return {
        "id": str(r["id"]),
        "state": r["state"],
        "outcome": r["outcome"],
        "outcome_detail": r["outcome_detail"],
        "created_at": _iso(r["created_at"]),
        "finished_at": _iso(r["finished_at"]),
        "due_at": _iso(r["due_at"]),
        "preferred_at": _iso(r["preferred_at"]),
        "attempts": r["attempts"],
        "visitor": {
            "name": r["visitor_name"],
            "phone": r["phone_e164"],
            "phone_as_given": r["phone_given"],
            "phone_country": r["phone_country"],
            "language": r["language"],
            "consent": r["consent"],
        },
        "page": {
            "url": r["page_url"],
            "referrer": r["referrer"],
            "pages_visited": list(r["pages_visited"] or ()),
        },
        "campaign": utm,
        "attributes": _jsonable(r["attributes"] or {}),
        "route": {
            "rule": r["route_rule"],
            "destination": r["route_destination"],
            "chain": list(r["route_chain"] or ()),
        },
    }


def cdr_summary(r: asyncpg.Record, legs: list[asyncpg.Record]) -> dict[str, Any]:
    """The call detail records of a request, summarised: what a CRM needs to log the call."""
    agent_legs = [lg for lg in legs if lg["leg"] == "agent"]
    customer_legs = [lg for lg in legs if lg["leg"] == "customer"]
    accepted = next((lg for lg in reversed(agent_legs) if lg["accepted_at"] is not None), None)
    answered_customer = [lg for lg in customer_legs if lg["answered_at"] is not None]
    ends = [lg["ended_at"] for lg in legs if lg["ended_at"] is not None]
    return {
        "outcome": r["outcome"],
        "destination": (accepted["destination"] if accepted else None) or r["last_destination"]
        or r["route_destination"],
        "agent": accepted["member"] if accepted else None,
        "attempts": r["attempts"],
        "legs": len(legs),
        "agent_legs": len(agent_legs),
        "visitor_legs": len(customer_legs),
        "talk_seconds": sum(lg["billable_seconds"] or 0 for lg in answered_customer),
        "connected_at": _iso(min(lg["answered_at"] for lg in answered_customer)) if answered_customer else None,
        "ended_at": _iso(max(ends)) if ends else None,
        "call_legs": [
            {
                "attempt": lg["attempt"],
                "leg": lg["leg"],
                "destination": lg["destination"],
                "member": lg["member"],
                "trunk": lg["trunk"],
                "originated_at": _iso(lg["originated_at"]),
                "ringing_at": _iso(lg["ringing_at"]),
                "answered_at": _iso(lg["answered_at"]),
                "accepted_at": _iso(lg["accepted_at"]),
                "ended_at": _iso(lg["ended_at"]),
                "disposition": lg["disposition"],
                "hangup_cause": lg["hangup_cause"],
                "hangup_cause_text": lg["hangup_cause_text"],
                "sip_status": lg["sip_status"],
                "billable_seconds": lg["billable_seconds"],
            }
            for lg in legs
        ],
    }


async def build_payload(conn: asyncpg.Connection, outbox: asyncpg.Record, request: asyncpg.Record) -> dict[str, Any]:
    """The JSON body of an event: the event, the request as it is now, and for final events the CDR summary."""
    event = await conn.fetchrow(Q.outbox_event, outbox["event_id"])
    payload: dict[str, Any] = {
        "id": str(outbox["event_uuid"]),
        "type": outbox["kind"],
        "version": PAYLOAD_VERSION,
        "occurred_at": _iso(outbox["occurred_at"]),
        "site": request["site"],
        "request": request_section(request),
        "event": {
            "name": event["event"] if event else None,
            "from_state": event["from_state"] if event else None,
            "to_state": event["to_state"] if event else None,
            "actor": event["actor"] if event else None,
            "detail": _jsonable(event["detail"]) if event else {},
        },
    }
    if outbox["kind"] in FINAL_EVENT_TYPES or outbox["kind"] == "call.connected":
        legs = list(await conn.fetch(Q.outbox_legs, outbox["request_id"]))
        payload["cdr"] = cdr_summary(request, legs)
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes posted (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
