"""Lead cards arrive at a real SMTP server (aiosmtpd on 127.0.0.1) with the visitor's context."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from callswitch.db.pool import Database
from callswitch.notify.admin import list_deliveries
from callswitch.notify.config import LeadEmails, NotificationsConfig, RetryPolicy, SmtpConfig
from callswitch.notify.notifier import Notifier
from callswitch.routing import loads_rules

from .helpers import connected_call, create_request, free_port, missed_call, set_state, wait_until

RULES = loads_rules(
    """
version: 1
destinations:
  berlin:
    label: Store Berlin-Mitte
    notify_email: berlin@stores.example
    members: [PJSIP/201]
  hamburg:
    members: [PJSIP/301]
default: berlin
"""
)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse and address == self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def notifier(db: Database, port: int, **lead: bool) -> Notifier:
    config = NotificationsConfig(
        smtp=SmtpConfig(host="127.0.0.1", port=port, security="none", sender="Callswitch <leads@shop.example>",
                        timeout=5.0),
        lead_emails=LeadEmails(**({"routed": True, "missed": True} | lead)),
        retry=RetryPolicy(initial=0.05, max=0.2, give_up_after=60), poll_interval=0.05, settle_timeout=2.0,
    )
    return Notifier(db, config, lambda: RULES, node="mail", site_zones={"shop": "Europe/Berlin"})


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), html.get_content()


async def test_routed_and_missed_lead_cards(db: Database, conn: asyncpg.Connection, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    n = notifier(db, port)
    await n.start()
    try:
        routed = await create_request(conn, name="Ada <script>alert(1)</script> Lovelace", phone="+4930123456789")
        missed = await create_request(conn, name="Grace Hopper", phone="+4940123456789",
                                      pages_visited=["https://shop.example/a?x=1&y=<2>", "https://shop.example/b"])
        await missed_call(conn, missed, "no_agent")
        expired = await create_request(conn, name="Expired Person", state="scheduled")
        await set_state(conn, expired, "expired", "expired", "scheduled", outcome="expired")
        await connected_call(conn, routed)  # completed: no missed-lead card
        await create_request(conn, name="Hamburg", destination="hamburg")  # destination without notify_email
        await create_request(conn, name="Rejected", state="rejected", destination=None)
        await wait_until(lambda: _count(inbox, 5), what="5 e-mails")
        await wait_until(lambda: _all_delivered(conn), what="deliveries recorded")
    finally:
        await n.stop()

    by_subject = {m["Subject"]: (rcpt, m) for rcpt, m in inbox.messages}
    assert len(by_subject) == 5, list(by_subject)
    subjects = sorted(by_subject)
    assert subjects == sorted([
        "Callback request: Ada <script>alert(1)</script> Lovelace +49 30 123456789 (Store Berlin-Mitte)",
        "Callback request: Grace Hopper +49 40 123456789 (Store Berlin-Mitte)",
        "Missed callback: Grace Hopper +49 40 123456789 (Store Berlin-Mitte)",
        *[s for s in subjects if s.startswith("Callback request: Expired Person")],
        *[s for s in subjects if s.startswith("Missed callback: Expired Person")],
    ])
    for rcpt, msg in by_subject.values():
        assert rcpt == ["berlin@stores.example"] and msg["To"] == "berlin@stores.example"
        assert msg["From"] == "Callswitch <leads@shop.example>" and msg["Auto-Submitted"] == "auto-generated"
        assert msg.get_content_type() == "multipart/alternative"

    ada_subject = "Callback request: Ada <script>alert(1)</script> Lovelace +49 30 123456789 (Store Berlin-Mitte)"
    _, ada = by_subject[ada_subject]
    text, html = parts(ada)
    assert "Name:" in text and "Ada <script>alert(1)</script> Lovelace" in text
    assert "+49 30 123456789 (typed: 030123456789)" in text
    assert "Page:" in text and "https://shop.example/kitchens?utm_campaign=spring" in text
    assert "Came from:" in text and "https://www.google.com/" in text
    assert "Campaign:" in text and "spring-sale (source google, medium cpc)" in text
    assert "Product:" in text and "kitchen" in text and "10115" in text
    assert "Pages visited (oldest first):\n  1. https://shop.example/\n  2. https://shop.example/kitchens" in text
    assert "Europe/Berlin" not in text and ("CET" in text or "CEST" in text)  # local time of the site
    assert "<script>" not in html and "Ada &lt;script&gt;alert(1)&lt;/script&gt; Lovelace" in html
    assert '<a href="https://shop.example/kitchens?utm_campaign=spring">' in html
    assert "Outcome" not in text

    _, grace = by_subject["Missed callback: Grace Hopper +49 40 123456789 (Store Berlin-Mitte)"]
    text, html = parts(grace)
    assert "was not connected. Please call them." in text
    assert "Outcome:" in text and "nobody at the store took the call (no_agent)" in text
    assert "1. https://shop.example/a?x=1&y=<2>" in text
    assert "https://shop.example/a?x=1&amp;y=&lt;2&gt;" in html and "<2>" not in html
    [(_, exp)] = [v for s, v in by_subject.items() if s.startswith("Missed callback: Expired Person")]
    assert "it could not be connected in time (expired)" in parts(exp)[0]

    rows = await list_deliveries(db, channel="email")
    assert len(rows) == 5 and all(r["status"] == "delivered" and r["last_status"] == 250 for r in rows)
    assert {r["subscription"] for r in rows} == {"lead.routed", "lead.missed"}
    assert {r["destination"] for r in rows} == {"berlin"}
    # the message id is stable per event and kind: a repeated delivery is recognisably the same e-mail
    assert all(m["Message-ID"].endswith("@shop.example>") for _, m in inbox.messages)


async def _count(inbox: Inbox, n: int) -> bool:
    return len(inbox.messages) >= n


async def _all_delivered(conn: asyncpg.Connection) -> bool:
    return not await conn.fetchval("SELECT count(*) FROM notification_deliveries WHERE status = 'pending'")


async def test_smtp_down_is_retried_and_unknown_mailbox_given_up(
    db: Database, conn: asyncpg.Connection, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    dead = Notifier(db, notifier(db, free_port()).config, lambda: RULES, node="dead")  # nothing listens there
    await create_request(conn, name="Waiting Lead")
    await dead.fan_out()
    assert await dead.deliver_due() == 1
    [row] = await list_deliveries(db)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"]

    n = notifier(db, port)
    inbox.refuse = None
    await conn.execute("UPDATE notification_deliveries SET next_attempt_at = now()")
    await n.run_once()
    [row] = await list_deliveries(db)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert [m["Subject"].split(":")[0] for _, m in inbox.messages] == ["Callback request"]

    inbox.refuse = "berlin@stores.example"
    await create_request(conn, name="Refused")
    await n.fan_out()
    await n.deliver_due()
    [row] = await list_deliveries(db, status="failed")
    assert row["last_status"] == 550 and "no such mailbox" in row["last_error"] and row["attempts"] == 1
    await dead.stop()
    await n.stop()


async def test_lead_emails_can_be_turned_off(db: Database, conn: asyncpg.Connection, smtp: tuple[Inbox, int]) -> None:
    _, port = smtp
    n = notifier(db, port, routed=False)
    rid = await create_request(conn)
    await missed_call(conn, rid)
    await n.fan_out()
    rows = await list_deliveries(db)
    assert [r["subscription"] for r in rows] == ["lead.missed"]
    await n.stop()


async def test_waits_for_routing_rules(db: Database, conn: asyncpg.Connection, smtp: tuple[Inbox, int]) -> None:
    _, port = smtp
    loaded: list[Any] = []

    def rules() -> Any:
        if not loaded:
            raise RuntimeError("no routing rules loaded yet")
        return loaded[0]

    n = Notifier(db, notifier(db, port).config, rules, node="r")
    await create_request(conn)
    assert await n.fan_out() == 0  # postponed, not dropped
    loaded.append(RULES)
    await conn.execute("UPDATE event_outbox SET available_at = now()")
    assert await n.fan_out() == 1
    assert len(await list_deliveries(db)) == 1
    await n.stop()
