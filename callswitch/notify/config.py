"""The ``notifications:`` section of the daemon configuration.

Parsed from a :class:`callswitch.yamlsrc.Node`, so every problem is reported with its file, line,
column and key like the rest of the configuration. This module only depends on
:mod:`callswitch.yamlsrc` because :mod:`callswitch.config` imports it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from callswitch.durations import parse_duration
from callswitch.yamlsrc import Invalid, Node, collect

# Event types, in lifecycle order.
EVENT_TYPES = (
    "request.accepted",  # stored by intake (queued or scheduled), with its routing decision
    "agent.accepted",  # an agent accepted the lead with a key press
    "call.connected",  # the visitor answered and is talking to the agent
    "request.completed",  # the connected call ended (final; CDR summary)
    "request.failed",  # no connection after all attempts (final; CDR summary)
    "request.cancelled",  # the visitor cancelled (final)
    "request.expired",  # not connected within dialing.max_age (final)
    "request.rejected",  # routing refused it (final)
)
FINAL_EVENT_TYPES = frozenset(
    {"request.completed", "request.failed", "request.cancelled", "request.expired", "request.rejected"}
)
LEAD_ROUTED = "lead.routed"
LEAD_MISSED = "lead.missed"
ROUTED_EVENT_TYPES = frozenset({"request.accepted"})
MISSED_EVENT_TYPES = frozenset({"request.failed", "request.expired"})
MIN_SECRET_LENGTH = 16
SECURITY_MODES = ("starttls", "tls", "none")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class WebhookSubscription:
    """One receiver of one site's events."""

    name: str  # unique in the configuration; recorded with every delivery
    site: str
    url: str
    secret: str = field(repr=False)
    events: frozenset[str] = frozenset(EVENT_TYPES)
    timeout: float = 10.0


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # starttls | tls (implicit, usually port 465) | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "callswitch@localhost"  # the From header (``from:`` in YAML)
    timeout: float = 30.0


@dataclass(frozen=True)
class LeadEmails:
    routed: bool = False  # lead card to the destination's notify_email when a request is routed to it
    missed: bool = False  # ... and when it was not connected (failed, expired)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; a delivery is given up ``give_up_after`` after its event."""

    initial: float = 10.0
    max: float = 3600.0
    give_up_after: float = 3 * 86400.0


@dataclass(frozen=True)
class NotificationsConfig:
    webhooks: tuple[WebhookSubscription, ...] = ()
    smtp: SmtpConfig | None = None
    lead_emails: LeadEmails = LeadEmails()
    retry: RetryPolicy = RetryPolicy()
    poll_interval: float = 1.0  # look for new events and due retries this often
    concurrency: int = 8  # deliveries in flight per daemon
    keep: float = 7 * 86400.0  # delivered events are purged from the outbox after this
    settle_timeout: float = 30.0  # final events wait at most this long for the attempt's call records

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks) or self.lead_emails.routed or self.lead_emails.missed

    def subscriptions(self, site: str, event_type: str) -> list[WebhookSubscription]:
        return [w for w in self.webhooks if w.site == site and event_type in w.events]

    def subscription(self, name: str) -> WebhookSubscription | None:
        for w in self.webhooks:
            if w.name == name:
                return w
        return None


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0")
    return seconds


def _check_url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected http:// or https://")
    return text


def _check_sender(value: Any) -> str:
    text = str(value).strip()
    _, address = parseaddr(text)
    if not _EMAIL_RE.match(address) or "\n" in text or "\r" in text:
        raise ValueError("expected an address like callswitch@example.com or \"Callswitch <cs@example.com>\"")
    return text


def _check_event(value: Any) -> str:
    if value not in EVENT_TYPES:
        import difflib

        close = difflib.get_close_matches(str(value), EVENT_TYPES, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown event {value!r}{hint}; known: {', '.join(EVENT_TYPES)}")
    return str(value)


def parse_notifications(node: Node, sites: Collection[str] | None = None) -> NotificationsConfig:
    """Parse ``notifications:`` (absent: everything off). ``sites``: the configured site ids, to check keys.

    Problems are recorded on the node's issues (located errors); the caller raises them together with
    the rest of the configuration's. A section with errors still yields a (partial) config.
    """
    n = node.mapping(
        {"webhooks", "smtp", "lead_emails", "retry", "poll_interval", "concurrency", "keep", "settle_timeout"},
        required=False,
    )
    d = NotificationsConfig()
    webhooks = _parse_webhooks(n["webhooks"], sites)
    smtp = collect(lambda: _parse_smtp(n["smtp"])) if n["smtp"].present and n["smtp"].value is not None else None
    lead = collect(lambda: _parse_lead_emails(n["lead_emails"], smtp_configured=smtp is not None, smtp_node=n["smtp"]))
    retry = collect(lambda: _parse_retry(n["retry"])) or d.retry
    settle = collect(lambda: n["settle_timeout"].convert(parse_duration, "a duration", d.settle_timeout))
    return NotificationsConfig(
        webhooks=tuple(webhooks),
        smtp=smtp,
        lead_emails=lead or LeadEmails(),
        retry=retry,
        poll_interval=collect(lambda: n["poll_interval"].convert(_positive_duration, "a duration", d.poll_interval))
        or d.poll_interval,
        concurrency=collect(lambda: n["concurrency"].int(d.concurrency, min=1, max=100)) or d.concurrency,
        keep=collect(lambda: n["keep"].convert(_positive_duration, "a duration", d.keep)) or d.keep,
        settle_timeout=settle if settle is not None else d.settle_timeout,
    )


def _parse_webhooks(node: Node, sites: Collection[str] | None) -> list[WebhookSubscription]:
    m = collect(lambda: node.mapping(required=False))
    if m is None:
        return []
    out: list[WebhookSubscription] = []
    seen: dict[str, Node] = {}
    for site_id, site_node in m.items():
        if sites is not None and site_id not in sites:
            site_node.fail(f"no site {site_id!r} in sites: (configured: {', '.join(sorted(sites)) or 'none'})")
            continue
        items = collect(lambda s=site_node: s.sequence())  # type: ignore[misc]
        for i, item in enumerate(items or []):
            sub = collect(lambda it=item, s=site_id, k=i: _parse_subscription(it, s, k))  # type: ignore[misc]
            if sub is None:
                continue
            if sub.name in seen:
                item["name"].fail(f"two webhooks are named {sub.name!r}; names must be unique")
                continue
            seen[sub.name] = item
            out.append(sub)
    return out


def _parse_subscription(n: Node, site: str, index: int) -> WebhookSubscription:
    n.mapping({"name", "url", "secret", "events", "timeout"})
    default_name = f"{site}-{index + 1}"
    name = collect(lambda: n["name"].str(default_name)) or default_name
    if not _NAME_RE.match(name):
        n["name"].fail("a webhook name is lowercase letters, digits, '-' and '_' (at most 63)")
    url = collect(lambda: n["url"].convert(_check_url, "a URL"))
    if url is not None and url.startswith("http://"):
        host = urlsplit(url).hostname or ""
        if host not in ("localhost", "127.0.0.1", "::1"):
            n["url"].warn("plain http: the signature proves the sender but the payload (personal data) "
                          "travels unencrypted; use https")
    secret = collect(lambda: n["secret"].str())
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        n["secret"].fail(f"too short: use at least {MIN_SECRET_LENGTH} random characters "
                         "(e.g. from ${ENV_VARIABLE})")
        secret = None
    events: frozenset[str] = frozenset(EVENT_TYPES)
    if n["events"].present:
        chosen: list[str] = []
        for item in n["events"].sequence():
            ev = collect(lambda it=item: it.convert(_check_event, "an event"))  # type: ignore[misc]
            if ev is not None:
                chosen.append(ev)
        if not n["events"].value:
            n["events"].fail("list at least one event (or leave events out for all of them)")
        events = frozenset(chosen)
    timeout = collect(lambda: n["timeout"].convert(_positive_duration, "a duration", 10.0))
    if timeout is not None and timeout > 120:
        n["timeout"].fail("must be at most 120s")
        timeout = None
    if url is None or secret is None or timeout is None:
        raise Invalid(name)  # the problems are recorded already
    return WebhookSubscription(name=name, site=site, url=url, secret=secret, events=events, timeout=timeout)


def _parse_smtp(n: Node) -> SmtpConfig:
    n.mapping({"host", "port", "security", "username", "password", "from", "timeout"})
    security = collect(lambda: n["security"].choice(SECURITY_MODES, "starttls")) or "starttls"
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    host = collect(lambda: n["host"].str())
    port = collect(lambda: n["port"].int(default_port, min=1, max=65535))
    username = collect(lambda: n["username"].str(None)) if n["username"].present else None
    password = collect(lambda: n["password"].str(None, nonempty=False)) if n["password"].present else None
    if username and not password:
        n["password"].fail("required with username")
    if password and not username:
        n["username"].fail("required with password")
    sender = collect(lambda: n["from"].convert(_check_sender, "an e-mail address"))
    timeout = collect(lambda: n["timeout"].convert(_positive_duration, "a duration", 30.0))
    if host is None or port is None or sender is None or timeout is None:
        raise Invalid("smtp")
    return SmtpConfig(host=host, port=port, security=security, username=username or None,
                      password=password or None, sender=sender, timeout=timeout)


def _parse_lead_emails(n: Node, *, smtp_configured: bool, smtp_node: Node) -> LeadEmails:
    m = n.mapping({"routed", "missed"}, required=False)
    routed = collect(lambda: m["routed"].bool(smtp_configured))
    missed = collect(lambda: m["missed"].bool(smtp_configured))
    for key, on in (("routed", routed), ("missed", missed)):
        if on and not smtp_configured:
            if smtp_node.present:  # smtp: given but invalid, already reported
                continue
            m[key].fail("needs notifications.smtp (the server to send the e-mails through)")
    return LeadEmails(routed=bool(routed and smtp_configured), missed=bool(missed and smtp_configured))


def _parse_retry(n: Node) -> RetryPolicy:
    m = n.mapping({"initial", "max", "give_up_after"}, required=False)
    d = RetryPolicy()
    initial = collect(lambda: m["initial"].convert(_positive_duration, "a duration", d.initial))
    maximum = collect(lambda: m["max"].convert(_positive_duration, "a duration", d.max))
    give_up = collect(lambda: m["give_up_after"].convert(_positive_duration, "a duration", d.give_up_after))
    if initial is not None and maximum is not None and maximum < initial:
        m["max"].fail("must not be less than initial")
    return RetryPolicy(initial or d.initial, maximum or d.max, give_up or d.give_up_after)
