"""Lead cards: the e-mail a store gets when a request is routed to it, or when it was missed.

Built from the webhook payload of the event (so the e-mail shows the request as it was at fan-out),
as a multipart/alternative message: plain text and a simple HTML table, every value escaped.
Sent with aiosmtplib (asyncio-native SMTP with STARTTLS / implicit TLS and timeouts; the stdlib's
smtplib blocks and would need a thread per message).
"""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiosmtplib
import phonenumbers

from callswitch.notify.config import LEAD_MISSED, SmtpConfig

OUTCOME_TEXT = {
    "no_agent": "nobody at the store took the call",
    "agent_declined": "the call was declined",
    "customer_busy": "the visitor's line was busy",
    "customer_no_answer": "the visitor did not answer",
    "customer_unreachable": "the visitor's number could not be reached",
    "expired": "it could not be connected in time",
}


class SendError(Exception):
    def __init__(self, message: str, code: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def _when(value: str | None, zone: str) -> str:
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value).astimezone(ZoneInfo(zone))
    except (ValueError, KeyError):
        return value
    return at.strftime("%Y-%m-%d %H:%M ") + (at.tzname() or zone)


def lead_fields(payload: dict[str, Any], kind: str, zone: str) -> list[tuple[str, str]]:
    """(label, value) rows of the card, empty values left out; URLs are values too (linked in HTML)."""
    req = payload.get("request") or {}
    visitor = req.get("visitor") or {}
    page = req.get("page") or {}
    utm = req.get("campaign") or {}
    attrs = req.get("attributes") or {}
    phone = _phone(visitor.get("phone"))
    given = visitor.get("phone_as_given")
    campaign = utm.get("campaign") or ""
    others = ", ".join(f"{k} {utm[k]}" for k in ("source", "medium", "term", "content") if utm.get(k))
    if others:
        campaign = f"{campaign} ({others})" if campaign else others
    rows = [
        ("Name", visitor.get("name") or ""),
        ("Phone", phone + (f" (typed: {given})" if given and given != visitor.get("phone") else "")),
        ("Requested", _when(req.get("created_at"), zone)),
        ("Wants a call at", _when(req.get("preferred_at"), zone)),
        ("Page", page.get("url") or ""),
        ("Came from", page.get("referrer") or ""),
        ("Campaign", campaign),
        ("Product", str(attrs.get("product") or "")),
        ("Postal code", str(attrs.get("postal_code") or "")),
        ("Company size", str(attrs.get("company_size") or "")),
        ("Language", visitor.get("language") or ""),
    ]
    if kind == LEAD_MISSED:
        outcome = req.get("outcome") or ""
        said = OUTCOME_TEXT.get(outcome)
        rows.append(("Outcome", f"{said} ({outcome})" if said else outcome))
        rows.append(("Attempts", str(req.get("attempts") or 0)))
    rows.append(("Request id", req.get("id") or ""))
    return [(label, _one_line(value)) for label, value in rows if value and str(value).strip()]


def _headline(payload: dict[str, Any], kind: str, destination: str) -> tuple[str, str]:
    visitor = (payload.get("request") or {}).get("visitor") or {}
    who = _one_line(f"{visitor.get('name') or ''} {_phone(visitor.get('phone'))}")
    if kind == LEAD_MISSED:
        return (f"Missed callback: {who} ({destination})",
                f"A visitor asked {destination} for a call back and was not connected. Please call them.")
    return (f"Callback request: {who} ({destination})",
            f"A visitor asked {destination} for a call back. Calls are on the way; "
            "here is who it is and where they came from.")


def _link(url: str) -> str:
    escaped = html.escape(url, quote=True)
    if urlsplit(url).scheme in ("http", "https"):
        return f'<a href="{escaped}">{escaped}</a>'
    return escaped


def build_lead_email(
    payload: dict[str, Any], kind: str, *, to: str, sender: str, destination: str, time_zone: str = "UTC",
    message_id: str | None = None,
) -> EmailMessage:
    """The lead card for ``kind`` (lead.routed / lead.missed) of the event in ``payload``."""
    subject, intro = _headline(payload, kind, _one_line(destination))
    rows = lead_fields(payload, kind, time_zone)
    pages = [p for p in ((payload.get("request") or {}).get("page") or {}).get("pages_visited") or [] if p]

    width = max(len(label) for label, _ in rows) + 2 if rows else 0
    text = [intro, ""]
    text += [f"{label + ':':<{width}}{value}" for label, value in rows]
    if pages:
        text += ["", "Pages visited (oldest first):"]
        text += [f"  {i}. {_one_line(p)}" for i, p in enumerate(pages, 1)]
    text += ["", "-- ", "callswitch"]

    link_rows = {"Page", "Came from"}
    cells = "".join(
        f'<tr><th align="left" valign="top" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
        f"<td>{_link(value) if label in link_rows else html.escape(value)}</td></tr>"
        for label, value in rows
    )
    page_list = "".join(f"<li>{_link(_one_line(p))}</li>" for p in pages)
    body = (
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">"
        f"<p>{html.escape(intro)}</p><table>{cells}</table>"
        + (f"<p><b>Pages visited</b> (oldest first):</p><ol>{page_list}</ol>" if pages else "")
        + "</body></html>"
    )

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(datetime.now().astimezone())
    if message_id:
        msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(text) + "\n")
    msg.add_alternative(body, subtype="html")
    return msg


def message_id(event_uuid: str, subscription: str, sender: str) -> str:
    """Stable per event and kind: a repeated delivery carries the same Message-ID (mail clients fold them)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "callswitch.invalid"
    return f"<{event_uuid}.{subscription}@{domain}>"


async def send(smtp: SmtpConfig, msg: EmailMessage) -> int:
    """Send one message; return the server's reply code, or raise :class:`SendError`."""
    try:
        await aiosmtplib.send(
            msg,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        code = codes[0] if codes else None
        raise SendError(f"recipient refused: {'; '.join(str(r) for r in exc.recipients)}", code,
                        permanent=bool(codes) and all(500 <= c < 600 for c in codes)) from None
    except aiosmtplib.SMTPResponseException as exc:
        # other refusals (authentication, relaying, policy) are the server's or the configuration's: retried
        raise SendError(f"SMTP {exc.code}: {exc.message}", exc.code) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    return 250  # the server took the message
