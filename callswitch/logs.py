"""Structured logging: JSON lines in production, key=value on a terminal.

Phone numbers are masked except their last digits, and secrets are never printed:
values under secret-looking keys are replaced, and anything that looks like a phone
number inside a message is masked too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SECRET_KEYS = frozenset(
    {"secret", "password", "token", "api_key", "admin_token", "authorization", "dsn", "site_secret"}
)
PHONE_KEYS = frozenset({"phone", "phone_e164", "phone_raw", "number", "customer", "member", "dialled", "callerid"})
_PHONE_RE = re.compile(r"(?<![\w.])\+?\d[\d ()./-]{5,}\d(?![\w])")
KEEP_DIGITS = 3
MIN_PHONE_DIGITS = 7  # shorter digit runs (extensions, versions) are not treated as phone numbers


def mask_phone(value: str, keep: int = KEEP_DIGITS) -> str:
    """``+4930123456789`` -> ``+***********789``: keeps a leading '+' and the last digits."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= keep:
        return "*" * len(digits)
    prefix = "+" if value.strip().startswith("+") else ""
    return prefix + "*" * (len(digits) - keep) + "".join(digits[-keep:])


_NOT_PHONE_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}|\d{4}-\d{2}-\d{2}.*|\d+\.\d+")  # IPv4, dates, decimals


def _mask_match(m: re.Match[str]) -> str:
    text = m.group(0)
    if _NOT_PHONE_RE.fullmatch(text) or sum(c.isdigit() for c in text) < MIN_PHONE_DIGITS:  # versions, ids
        return text
    return mask_phone(text)


def _mask_text(text: str) -> str:
    return _PHONE_RE.sub(_mask_match, text)


def _mask_dsn(value: str) -> str:
    return re.sub(r"//([^:/@]+):([^@]*)@", r"//\1:***@", value)


def scrub(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask phone numbers and hide secrets."""
    for key, value in list(event_dict.items()):
        lk = key.lower()
        if lk in SECRET_KEYS or lk.endswith(("_secret", "_token", "_password")):
            if lk == "dsn" and isinstance(value, str):
                event_dict[key] = _mask_dsn(value)
            elif value:
                event_dict[key] = "***"
        elif lk in PHONE_KEYS or lk.endswith("_phone") or lk.startswith("phone"):
            # endpoints such as PJSIP/201 are not phone numbers
            if isinstance(value, str) and sum(c.isdigit() for c in value) >= MIN_PHONE_DIGITS:
                event_dict[key] = mask_phone(value)
        elif isinstance(value, str) and key != "timestamp":
            event_dict[key] = _mask_text(value)
    return event_dict


class MaskingFormatter(logging.Formatter):
    """The libraries' records (message and traceback) with phone numbers masked, like our own."""

    def format(self, record: logging.LogRecord) -> str:
        return _mask_text(super().format(record))


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog (and the stdlib loggers of our libraries) once at start-up."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    numeric = getattr(logging, level.upper(), logging.INFO)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        scrub,  # after the traceback is rendered: a number inside an exception message is masked too
    ]
    if use_json:
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries (aiohttp, asyncpg, panoramisk) log through the standard library.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()
