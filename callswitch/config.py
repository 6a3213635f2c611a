"""Daemon configuration: loading, environment overrides and validation.

Everything is validated up front. Every problem names the file, the line, the column
and the key, e.g. ``config/callswitch.yaml:14:7: sites.shop.allowed_origins[0]: not a URL``,
and all problems are reported at once. Secrets may come from the environment with
``${VAR}`` / ``${VAR:-default}`` in any value, or from ``CALLSWITCH_<SECTION>__<KEY>``
overrides (``CALLSWITCH_AMI__SECRET``, ``CALLSWITCH_DATABASE__DSN``,
``CALLSWITCH_SITES__SHOP__API_KEY``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from callswitch import yamlsrc
from callswitch.durations import parse_duration
from callswitch.notify.config import NotificationsConfig, parse_notifications
from callswitch.yamlsrc import Document, Issues, Node, SourceError, collect

ENV_PREFIX = "CALLSWITCH_"

# International ranges abused for toll fraud: satellite and international networks,
# international premium rate and shared cost. Premium-rate and shared-cost numbers of
# every country are also refused by number type (see blocked_number_types).
DEFAULT_BLOCKED_PREFIXES = ("+870", "+878", "+881", "+882", "+883", "+888", "+979", "+808")
NUMBER_TYPES = {
    "premium_rate": phonenumbers.PhoneNumberType.PREMIUM_RATE,
    "shared_cost": phonenumbers.PhoneNumberType.SHARED_COST,
    "voip": phonenumbers.PhoneNumberType.VOIP,
    "pager": phonenumbers.PhoneNumberType.PAGER,
    "uan": phonenumbers.PhoneNumberType.UAN,
    "voicemail": phonenumbers.PhoneNumberType.VOICEMAIL,
    "personal_number": phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    "toll_free": phonenumbers.PhoneNumberType.TOLL_FREE,
}
DEFAULT_BLOCKED_TYPES = ("premium_rate", "shared_cost", "personal_number", "pager", "uan", "voicemail")


class ConfigError(SourceError):
    """The configuration is invalid; ``str()`` lists every problem with its location."""


@dataclass(frozen=True)
class RateLimit:
    """``count`` events per ``period`` seconds (a token bucket of that size)."""

    count: int
    period: float

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


@dataclass(frozen=True)
class RateLimits:
    per_ip: RateLimit | None = RateLimit(10, 60)
    per_phone: RateLimit | None = RateLimit(3, 3600)
    per_site: RateLimit | None = RateLimit(600, 60)


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 64 * 1024
    trusted_proxies: tuple[str, ...] = ()
    retry_after_seconds: int = 5
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # who may read /metrics without the admin token
    # Slow and oversized clients (see callswitch/ops/httpserver.py):
    header_timeout: float = 10.0  # a request head must arrive within this (also closes idle keep-alive connections)
    body_timeout: float = 15.0  # the whole body must arrive within this once the head is in (408 otherwise)
    max_header_bytes: int = 8190  # longest request line and longest header line (400 beyond)
    max_headers: int = 64  # most header lines in one request (400 beyond)


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str | None = None
    min_connections: int = 2
    max_connections: int = 10
    connect_timeout: float = 5.0
    command_timeout: float = 10.0


@dataclass(frozen=True)
class AmiConfig:
    name: str = "pbx"
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callswitch"
    secret: str = field(default="", repr=False)
    ping_interval: float = 10.0


@dataclass(frozen=True)
class TtsConfig:
    """Per-request announcements rendered by a text-to-speech engine on the PBX host (``dialing.tts``).

    ``commands`` run in order without a shell; in each argument ``{text}`` is the announcement,
    ``{work}`` a scratch directory and ``{out}`` the file to produce (an 8 kHz mono 16-bit WAV that
    Asterisk plays). The file lands in ``sounds_dir`` as ``<request id>.wav`` and is played as
    ``<sound_prefix>/<request id>``."""

    sounds_dir: str
    sound_prefix: str = "callswitch-tts"
    text: str = "Web callback from {name}. {topic} Page {page}."
    commands: tuple[tuple[str, ...], ...] = (
        ("espeak-ng", "-v", "en-us", "-s", "155", "-w", "{work}/speech.wav", "{text}"),
        ("sox", "{work}/speech.wav", "-r", "8000", "-c", "1", "-b", "16", "{out}"),
    )
    timeout: float = 5.0


@dataclass(frozen=True)
class DialingConfig:
    node: str = ""  # this daemon's name in leases; default host-pid
    max_concurrent_calls: int | None = 20  # all daemons together
    max_calls_per_destination: int | None = None
    lease_seconds: float = 30.0
    poll_interval: float = 5.0  # look for due work this often even without a notification
    customer_retries: int = 2  # further attempts: visitor busy / no answer / unreachable, or no agent accepted
    retry_backoff: tuple[float, ...] = (300.0, 900.0)
    max_age: float = 86400.0  # a request not connected by then expires
    customer_timeout: int = 30  # seconds the visitor's phone rings
    busy_wait: float = 2.0  # when every member is on another call, look again after this
    drain_timeout: float = 60.0  # on SIGTERM, let calls in progress finish this long
    say_digits: int = 4  # trailing digits of the visitor's number read to the agent (0: all)
    confirm_timeout: int = 6  # seconds the agent has to press a key after the beep
    max_repeats: int = 2  # how often the agent may press 3 to hear the announcement again
    tts: TtsConfig | None = None  # per-request announcements (None: prompts and digits only)
    # visitor legs one number may get in any 24 hours, over every daemon (None: no cap); past it the request
    # fails (outcome number_daily_cap) instead of dialling
    max_calls_per_number_per_day: int | None = 10


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # auto | json | console


@dataclass(frozen=True)
class PhonePolicy:
    default_region: str = "US"
    allowed_countries: tuple[str, ...] = ()  # empty: any country
    blocked_prefixes: tuple[str, ...] = DEFAULT_BLOCKED_PREFIXES
    blocked_number_types: tuple[str, ...] = DEFAULT_BLOCKED_TYPES
    own_numbers: tuple[str, ...] = ()  # the company's own numbers, never dialled back
    # Requests one number may make in any 24 hours, counted over every site and daemon (None: no cap).
    max_per_day: int | None = 5


@dataclass(frozen=True)
class SiteConfig:
    id: str
    name: str
    site_key: str
    api_key: str | None = field(default=None, repr=False)
    allowed_origins: tuple[str, ...] = ()
    thank_you_url: str | None = None
    require_consent: bool = False
    time_zone: str = "UTC"
    phone: PhonePolicy = PhonePolicy()
    max_preferred_days: int = 14
    max_requests_per_day: int | None = None  # requests this site stores in any 24 hours (None: no cap)


@dataclass(frozen=True)
class Config:
    file: str
    http: HttpConfig
    database: DatabaseConfig
    ami: AmiConfig
    logging: LoggingConfig
    admin_token: str | None = field(repr=False)
    routing_file: str | None
    rate_limits: RateLimits
    sites: dict[str, SiteConfig]
    dialing: DialingConfig = DialingConfig()
    ami_servers: tuple[AmiConfig, ...] = ()  # all Asterisk servers; ``ami`` is the first
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)

    def site_by_key(self, site_key: str) -> SiteConfig | None:
        for site in self.sites.values():
            if site.site_key == site_key:
                return site
        return None

    def origin_allowed_anywhere(self, origin: str) -> bool:
        return any(origin in s.allowed_origins for s in self.sites.values())


# ----------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Load and validate ``path``; raise :class:`ConfigError` listing every problem."""
    env = os.environ if env is None else env
    try:
        doc = yamlsrc.load(Path(path), interpolate_env=True, env=env)
    except SourceError as exc:
        raise ConfigError(exc.problems) from None
    _apply_env_overrides(doc, env)
    issues = Issues(doc)
    config = _parse(issues, Path(path))
    if issues.errors or config is None:
        raise ConfigError(issues.errors)
    return config


def _apply_env_overrides(doc: Document, env: Mapping[str, str]) -> None:
    """``CALLSWITCH_AMI__SECRET=x`` sets ``ami.secret``; values are read as YAML scalars."""
    if not isinstance(doc.data, dict):
        return
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if any(not p for p in parts):
            continue
        try:
            value = yamlsrc.yaml.safe_load(raw) if raw.strip() else ""
        except yamlsrc.yaml.YAMLError:
            value = raw
        if isinstance(value, dict | list) or value is None:
            value = raw
        target = doc.data
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target[parts[-1]] = value
        doc.origins[tuple(parts)] = f"env {name}"


_PERIODS = {"second": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400, "d": 86400}


def parse_rate(value: Any) -> RateLimit | None:
    """``"10/minute"``, ``"3/hour"``, ``"5/30s"``; ``off`` or ``false`` disables the limit."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    text = str(value).strip()
    count_s, sep, period_s = text.partition("/")
    if not sep or not count_s.strip().isdigit() or int(count_s) < 1:
        raise ValueError("expected COUNT/PERIOD, e.g. 10/minute, 3/hour, 5/30s, or off")
    period_s = period_s.strip().lower()
    known = _PERIODS.get(period_s)
    period = float(known) if known is not None else parse_duration(period_s)
    if period <= 0:
        raise ValueError("the period must be positive")
    return RateLimit(int(count_s), float(period))


def _check_url(value: Any, *, origin: bool = False) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("")
    if origin and (parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ValueError("an origin is scheme://host[:port] with no path")
    return text.rstrip("/") if origin else text


def _check_region(value: Any) -> str:
    region = str(value).strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("not an ISO 3166 region phonenumbers knows (e.g. US, DE, GB)")
    return region


def _check_zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA time zone") from None
    return str(value)


def _check_e164(value: Any) -> str:
    text = str(value).strip()
    try:
        num = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError("expected an E.164 number like +4930123456") from None
    if not phonenumbers.is_possible_number(num):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _check_prefix(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"\+\d{1,14}", text):
        raise ValueError("expected '+' and digits, e.g. +881")
    return text


def _parse(issues: Issues, path: Path) -> Config | None:
    root = issues.root()
    top = collect(
        lambda: root.mapping({"http", "database", "ami", "admin", "logging", "routing", "intake", "sites", "dialing",
                              "notifications"})
    )
    if top is None:
        return None

    http = collect(lambda: _parse_http(top["http"].mapping(required=False))) or HttpConfig()
    database = collect(lambda: _parse_database(top["database"].mapping(required=False))) or DatabaseConfig()
    ami_servers = _parse_ami_servers(top["ami"])
    ami = ami_servers[0]
    logging = collect(lambda: _parse_logging(top["logging"].mapping(required=False))) or LoggingConfig()

    admin_token: str | None = None
    admin = collect(lambda: top["admin"].mapping({"token"}, required=False))
    if admin is not None:
        admin_token = collect(lambda: admin["token"].str("", nonempty=False)) or None
        if admin_token is not None and len(admin_token) < 16:
            admin["token"].fail("too short: use at least 16 random characters")

    routing_file: str | None = None
    routing = collect(lambda: top["routing"].mapping({"file"}, required=False))
    if routing is not None:
        rf = collect(lambda: routing["file"].str(None))
        if rf:
            rp = Path(rf)
            routing_file = str(rp if rp.is_absolute() else (path.parent / rp))

    intake = collect(lambda: top["intake"].mapping(
        {"phone", "rate_limits", "max_preferred_days", "max_requests_per_day"}, required=False))
    base_phone = PhonePolicy()
    rate_limits = RateLimits()
    max_days = 14
    site_day_cap: int | None = None
    if intake is not None:
        base_phone = collect(lambda: _parse_phone(intake["phone"], PhonePolicy())) or base_phone
        rate_limits = collect(lambda: _parse_rate_limits(intake["rate_limits"])) or rate_limits
        max_days = collect(lambda: intake["max_preferred_days"].int(14, min=1, max=365)) or max_days
        site_day_cap = collect(lambda: _parse_cap(intake["max_requests_per_day"], None, MAX_SITE_DAY_CAP))

    sites: dict[str, SiteConfig] = {}
    sites_node = collect(lambda: top["sites"].mapping(required=True))
    if sites_node is not None:
        if not sites_node.value:
            sites_node.fail("at least one site is required")
        for site_id, node in sites_node.items():
            site = collect(
                lambda n=node, i=site_id: _parse_site(i, n, base_phone, max_days, site_day_cap)  # type: ignore[misc]
            )
            if site is not None:
                sites[site_id] = site
        seen: dict[str, str] = {}
        for site_id, site in sites.items():
            if site.site_key in seen:
                sites_node[site_id]["site_key"].fail(f"same site_key as site {seen[site.site_key]!r}")
            seen[site.site_key] = site_id

    dialing = collect(lambda: _parse_dialing(top["dialing"].mapping(required=False))) or DialingConfig()
    notifications = collect(lambda: parse_notifications(
        top["notifications"],
        sites=set(sites_node.value) if sites_node is not None and isinstance(sites_node.value, dict) else None,
    )) or NotificationsConfig()
    return Config(
        file=str(path),
        http=http,
        database=database,
        ami=ami,
        logging=logging,
        admin_token=admin_token,
        routing_file=routing_file,
        rate_limits=rate_limits,
        sites=sites,
        dialing=dialing,
        ami_servers=ami_servers,
        notifications=notifications,
    )


def _parse_listen(node: Node) -> tuple[str, int]:
    text = node.str("127.0.0.1:8080")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 < int(port) < 65536) or not host:
        raise node.fail("expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _parse_http(n: Node) -> HttpConfig:
    n.mapping({
        "listen", "public_url", "max_body_bytes", "trusted_proxies", "retry_after_seconds", "metrics_allow",
        "header_timeout", "body_timeout", "max_header_bytes", "max_headers",
    })
    d = HttpConfig()
    listen = collect(lambda: _parse_listen(n["listen"])) or ("127.0.0.1", 8080)
    public_url = collect(
        lambda: n["public_url"].convert(_check_url, "a URL", f"http://{listen[0]}:{listen[1]}")
    )
    max_body = collect(lambda: n["max_body_bytes"].int(64 * 1024, min=1024, max=10 * 1024 * 1024))
    proxies = _networks(n["trusted_proxies"], ())
    metrics_allow = _networks(n["metrics_allow"], HttpConfig.metrics_allow)
    retry_after = collect(lambda: n["retry_after_seconds"].int(5, min=1, max=3600))
    header_timeout = collect(lambda: _bounded_duration(n["header_timeout"], d.header_timeout, 1.0, 300.0))
    body_timeout = collect(lambda: _bounded_duration(n["body_timeout"], d.body_timeout, 1.0, 600.0))
    max_header_bytes = collect(lambda: n["max_header_bytes"].int(d.max_header_bytes, min=1024, max=65536))
    max_headers = collect(lambda: n["max_headers"].int(d.max_headers, min=16, max=256))
    return HttpConfig(
        host=listen[0],
        port=listen[1],
        public_url=(public_url or f"http://{listen[0]}:{listen[1]}").rstrip("/"),
        max_body_bytes=max_body or 64 * 1024,
        trusted_proxies=tuple(proxies),
        retry_after_seconds=retry_after or 5,
        metrics_allow=tuple(metrics_allow),
        header_timeout=header_timeout or d.header_timeout,
        body_timeout=body_timeout or d.body_timeout,
        max_header_bytes=max_header_bytes or d.max_header_bytes,
        max_headers=max_headers or d.max_headers,
    )


def _bounded_duration(node: Node, default: float, lo: float, hi: float) -> float:
    value: float = node.convert(parse_duration, "a duration", default)
    if value < lo or value > hi:
        raise node.fail(f"must be between {lo:g}s and {hi:g}s")
    return value


MAX_PHONE_DAY_CAP = 1000
MAX_SITE_DAY_CAP = 10_000_000


def _parse_cap(node: Node, default: int | None, maximum: int) -> int | None:
    """A count per 24 hours: a positive integer, or ``off`` for no cap."""
    if not node.present:
        return default
    value = node.value
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    result: int = node.int(min=1, max=maximum)
    return result


def _networks(node: Node, default: tuple[str, ...]) -> list[str]:
    if not node.present:
        return list(default)
    out = []
    for item in node.sequence():
        value = collect(lambda i=item: i.str())  # type: ignore[misc]
        if value is None:
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            item.fail("not an IP address or network")
            continue
        out.append(value)
    return out


def _parse_database(n: Node) -> DatabaseConfig:
    n.mapping({"dsn", "min_connections", "max_connections", "connect_timeout", "command_timeout"})
    dsn = collect(lambda: n["dsn"].str("", nonempty=False)) or None
    if dsn and not dsn.startswith(("postgres://", "postgresql://")):
        n["dsn"].fail("expected a postgresql:// URL")
    lo = collect(lambda: n["min_connections"].int(2, min=0, max=100))
    hi = collect(lambda: n["max_connections"].int(10, min=1, max=200))
    if lo is not None and hi is not None and lo > hi:
        n["min_connections"].fail("must not exceed max_connections")
    ct = collect(lambda: n["connect_timeout"].convert(parse_duration, "a duration", 5.0))
    qt = collect(lambda: n["command_timeout"].convert(parse_duration, "a duration", 10.0))
    return DatabaseConfig(dsn, lo if lo is not None else 2, hi or 10, ct or 5.0, qt or 10.0)


def _parse_ami_servers(n: Node) -> tuple[AmiConfig, ...]:
    """``ami:`` is one server (a mapping) or several (a list of mappings, each with a ``name``)."""
    if isinstance(n.value, list):
        servers = []
        for item in n.sequence():
            server = collect(lambda i=item: _parse_ami(i.mapping(), named=True))  # type: ignore[misc]
            if server is not None:
                servers.append(server)
        if not servers and not n.value:
            n.fail("list at least one Asterisk server")
        names = [s.name for s in servers]
        for i, name in enumerate(names):
            if names.index(name) != i:
                n[i]["name"].fail(f"two servers are named {name!r}")
        return tuple(servers) or (AmiConfig(),)
    single = collect(lambda: _parse_ami(n.mapping(required=False)))
    return (single or AmiConfig(),)


def _parse_ami(n: Node, named: bool = False) -> AmiConfig:
    n.mapping({"name", "host", "port", "username", "secret", "ping_interval"})
    return AmiConfig(
        name=(n["name"].str() if named else collect(lambda: n["name"].str("pbx"))) or "pbx",
        host=collect(lambda: n["host"].str("127.0.0.1")) or "127.0.0.1",
        port=collect(lambda: n["port"].int(5038, min=1, max=65535)) or 5038,
        username=collect(lambda: n["username"].str("callswitch")) or "callswitch",
        secret=collect(lambda: n["secret"].str("", nonempty=False)) or "",
        ping_interval=collect(lambda: n["ping_interval"].convert(parse_duration, "a duration", 10.0)) or 10.0,
    )


def _parse_dialing(n: Node) -> DialingConfig:
    n.mapping({
        "node", "max_concurrent_calls", "max_calls_per_destination", "lease", "poll_interval", "customer_retries",
        "retry_backoff", "max_age", "customer_timeout", "busy_wait", "drain_timeout", "say_digits",
        "confirm_timeout", "max_repeats", "tts", "max_calls_per_number_per_day",
    })
    d = DialingConfig()
    backoff: list[float] = []
    for item in n["retry_backoff"].sequence(required=False):
        v = collect(lambda i=item: i.convert(parse_duration, "a duration"))  # type: ignore[misc]
        if v is not None:
            backoff.append(v)

    def optional_int(key: str, default: int | None) -> int | None:
        node = n[key]
        if node.present and node.value is None:
            return None
        return collect(lambda: node.int(default, min=1))

    return DialingConfig(
        node=collect(lambda: n["node"].str("")) or "",
        max_concurrent_calls=optional_int("max_concurrent_calls", d.max_concurrent_calls),
        max_calls_per_destination=optional_int("max_calls_per_destination", d.max_calls_per_destination),
        lease_seconds=collect(lambda: n["lease"].convert(parse_duration, "a duration", d.lease_seconds))
        or d.lease_seconds,
        poll_interval=collect(lambda: n["poll_interval"].convert(parse_duration, "a duration", d.poll_interval))
        or d.poll_interval,
        customer_retries=collect(lambda: n["customer_retries"].int(d.customer_retries, min=0, max=20))
        or 0,
        retry_backoff=tuple(backoff) if n["retry_backoff"].present else d.retry_backoff,
        max_age=collect(lambda: n["max_age"].convert(parse_duration, "a duration", d.max_age)) or d.max_age,
        customer_timeout=collect(lambda: n["customer_timeout"].int(d.customer_timeout, min=5, max=300))
        or d.customer_timeout,
        busy_wait=collect(lambda: n["busy_wait"].convert(parse_duration, "a duration", d.busy_wait)) or d.busy_wait,
        drain_timeout=collect(lambda: n["drain_timeout"].convert(parse_duration, "a duration", d.drain_timeout))
        or d.drain_timeout,
        say_digits=_int_or(collect(lambda: n["say_digits"].int(d.say_digits, min=0, max=15)), d.say_digits),
        confirm_timeout=_int_or(collect(lambda: n["confirm_timeout"].int(d.confirm_timeout, min=2, max=60)),
                                d.confirm_timeout),
        max_repeats=_int_or(collect(lambda: n["max_repeats"].int(d.max_repeats, min=0, max=10)), d.max_repeats),
        tts=collect(lambda: _parse_tts(n["tts"])) if n["tts"].present and n["tts"].value is not None else None,
        max_calls_per_number_per_day=_cap_or_off(n["max_calls_per_number_per_day"],
                                                 d.max_calls_per_number_per_day),
    )


def _cap_or_off(node: Node, default: int | None) -> int | None:
    """A whole number >= 1, or ``off`` / null for no cap."""
    if node.present and (node.value is None or node.value is False or node.value == "off"):
        return None
    value = collect(lambda: node.int(default, min=1, max=1000))
    return default if value is None else int(value)


_TTS_FIELDS = frozenset({"name", "topic", "page", "site"})


def _parse_tts(n: Node) -> TtsConfig:
    n.mapping({"sounds_dir", "sound_prefix", "text", "commands", "timeout"})
    d = TtsConfig(sounds_dir="")
    sounds_dir = n["sounds_dir"].str()
    if not sounds_dir.startswith("/"):
        n["sounds_dir"].fail("an absolute path (a folder under Asterisk's sounds directory)")
    prefix = collect(lambda: n["sound_prefix"].str(d.sound_prefix)) or d.sound_prefix
    if not all(c.isalnum() or c in "-_/" for c in prefix):
        n["sound_prefix"].fail("letters, digits, '-', '_' and '/' only (a path under the sounds directory)")
    text = collect(lambda: n["text"].str(d.text)) or d.text
    try:
        names = {f[1] for f in string.Formatter().parse(text) if f[1] is not None}
    except ValueError:
        names = {"?"}
    if not names <= _TTS_FIELDS:
        n["text"].fail(f"placeholders must be among {{{'}, {'.join(sorted(_TTS_FIELDS))}}}")
    commands: list[tuple[str, ...]] = []
    for item in n["commands"].sequence(required=False):
        args = [a.str() for a in item.sequence()]
        if not args:
            item.fail("a command: a list of program and arguments")
        commands.append(tuple(args))
    if commands and not any("{out}" in a for a in commands[-1]):
        n["commands"].fail("the last command must write {out}")
    timeout = collect(lambda: n["timeout"].convert(parse_duration, "a duration", d.timeout)) or d.timeout
    return TtsConfig(sounds_dir=sounds_dir, sound_prefix=prefix.strip("/"), text=text,
                     commands=tuple(commands) or d.commands, timeout=timeout)


def _int_or(value: int | None, default: int) -> int:
    return default if value is None else value


def _parse_logging(n: Node) -> LoggingConfig:
    n.mapping({"level", "format"})
    level = collect(lambda: n["level"].choice(("debug", "info", "warning", "error"), "info")) or "info"
    fmt = collect(lambda: n["format"].choice(("auto", "json", "console"), "auto")) or "auto"
    return LoggingConfig(level, fmt)


def _parse_rate_limits(n: Node) -> RateLimits:
    m = n.mapping({"per_ip", "per_phone", "per_site"}, required=False)
    d = RateLimits()
    return RateLimits(
        per_ip=collect(lambda: m["per_ip"].convert(parse_rate, "a rate", d.per_ip)),
        per_phone=collect(lambda: m["per_phone"].convert(parse_rate, "a rate", d.per_phone)),
        per_site=collect(lambda: m["per_site"].convert(parse_rate, "a rate", d.per_site)),
    )


def _parse_phone(n: Node, base: PhonePolicy) -> PhonePolicy:
    m = n.mapping(
        {"default_region", "allowed_countries", "blocked_prefixes", "blocked_number_types", "own_numbers",
         "max_per_day"},
        required=False,
    )

    def items(key: str, check: Any, default: tuple[str, ...]) -> tuple[str, ...]:
        node = m[key]
        if not node.present:
            return default
        out = []
        for item in node.sequence():
            v = collect(lambda i=item: i.convert(check, "valid"))  # type: ignore[misc]
            if v is not None:
                out.append(v)
        return tuple(out)

    def number_type(v: Any) -> str:
        if v not in NUMBER_TYPES:
            raise ValueError(f"one of {', '.join(NUMBER_TYPES)}")
        return str(v)

    return PhonePolicy(
        default_region=collect(lambda: m["default_region"].convert(_check_region, "a region", base.default_region))
        or base.default_region,
        allowed_countries=items("allowed_countries", _check_region, base.allowed_countries),
        blocked_prefixes=items("blocked_prefixes", _check_prefix, base.blocked_prefixes),
        blocked_number_types=items("blocked_number_types", number_type, base.blocked_number_types),
        own_numbers=items("own_numbers", _check_e164, base.own_numbers),
        # (an invalid value is recorded as a problem: the configuration is refused, whatever is returned here)
        max_per_day=collect(lambda: _parse_cap(m["max_per_day"], base.max_per_day, MAX_PHONE_DAY_CAP)),
    )


_SITE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _parse_site(
    site_id: str, n: Node, base_phone: PhonePolicy, max_days: int, day_cap: int | None = None
) -> SiteConfig:
    n.mapping(
        {
            "name", "site_key", "api_key", "allowed_origins", "thank_you_url", "require_consent",
            "time_zone", "phone", "max_preferred_days", "max_requests_per_day",
        }
    )
    if not _SITE_ID_RE.match(site_id):
        n.fail("a site id is lowercase letters, digits, '-' and '_' (at most 63)")
    site_key = n["site_key"].str()
    if len(site_key) < 8:
        n["site_key"].fail("too short: use at least 8 characters")
    api_key = collect(lambda: n["api_key"].str("", nonempty=False)) or None
    if api_key is not None and len(api_key) < 16:
        n["api_key"].fail("too short: use at least 16 random characters")
    origins = []
    for item in n["allowed_origins"].sequence(required=False):
        o = collect(lambda i=item: i.convert(lambda v: _check_url(v, origin=True), "a URL"))  # type: ignore[misc]
        if o is not None:
            origins.append(o)
    thank_you = collect(lambda: n["thank_you_url"].convert(_check_url, "a URL", None))
    phone = _parse_phone(n["phone"], base_phone)
    return SiteConfig(
        id=site_id,
        name=collect(lambda: n["name"].str(site_id)) or site_id,
        site_key=site_key,
        api_key=api_key,
        allowed_origins=tuple(origins),
        thank_you_url=thank_you,
        require_consent=bool(collect(lambda: n["require_consent"].bool(False))),
        time_zone=collect(lambda: n["time_zone"].convert(_check_zone, "a time zone", "UTC")) or "UTC",
        phone=phone,
        max_preferred_days=collect(lambda: n["max_preferred_days"].int(max_days, min=1, max=365)) or max_days,
        max_requests_per_day=collect(lambda: _parse_cap(n["max_requests_per_day"], day_cap, MAX_SITE_DAY_CAP)),
    )
