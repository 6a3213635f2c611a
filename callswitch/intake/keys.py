"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from aiohttp import web

from callswitch.config import Config
from callswitch.db.pool import Database
from callswitch.db.wakeup import WorkSignal
from callswitch.metrics import Metrics

if TYPE_CHECKING:
    from callswitch.intake.api import IntakeLimits
    from callswitch.intake.store import BatchWriter
    from callswitch.ops.health import Components
    from callswitch.routing.reload import RulesHolder

CONFIG = web.AppKey("config", Config)
DB = web.AppKey("db", Database)
METRICS = web.AppKey("metrics", Metrics)
LIMITS: web.AppKey[IntakeLimits] = web.AppKey("limits")
TRUSTED_PROXIES: web.AppKey[list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = web.AppKey("trusted_proxies")
WRITER: web.AppKey[BatchWriter] = web.AppKey("writer")
WORK: web.AppKey[WorkSignal | None] = web.AppKey("work")
RULES: web.AppKey[RulesHolder | None] = web.AppKey("rules")
COMPONENTS: web.AppKey[Components | None] = web.AppKey("components")
REQUEST_ID = web.RequestKey("request_id", str)
