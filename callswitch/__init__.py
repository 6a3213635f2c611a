"""callswitch: a self-hosted web-callback soft switch on Asterisk."""

from __future__ import annotations

__version__ = "0.1.0"
