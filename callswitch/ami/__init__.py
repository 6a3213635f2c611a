"""AMI wire protocol (parser, encoder) and client helpers for callswitch."""

from __future__ import annotations

from callswitch.ami.protocol import (
    BANNER_PREFIX,
    DEFAULT_MAX_MESSAGE_SIZE,
    AmiMessage,
    AmiParser,
    ParserStats,
    encode_action,
)

__all__ = [
    "BANNER_PREFIX",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AmiMessage",
    "AmiParser",
    "ParserStats",
    "encode_action",
]
