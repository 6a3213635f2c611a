"""Routing of callback requests: YAML rules -> :class:`RoutePlan` (who to ring, how, when).

Typical use::

    rules = load_rules("config/routing.yaml")         # validates everything, raises SourceError
    plan = route(rules, request, now)                  # pure, fast
    plan = route(rules, request, now, explain=True)    # with a readable trace

See docs/routing.md for the file format.
"""

from __future__ import annotations

from callswitch.routing.engine import route
from callswitch.routing.load import CheckResult, check_file, check_text, load_rules, loads_rules
from callswitch.routing.model import DEFER, DIAL, REJECT, Announcements, Destination, Member, RoutePlan, Trunk
from callswitch.routing.reload import RulesHolder, watch_file
from callswitch.routing.rules import Rule, Rules
from callswitch.routing.schedule import Schedule

__all__ = [
    "DEFER",
    "DIAL",
    "REJECT",
    "Announcements",
    "CheckResult",
    "Destination",
    "Member",
    "RoutePlan",
    "Rule",
    "Rules",
    "RulesHolder",
    "Schedule",
    "Trunk",
    "check_file",
    "check_text",
    "load_rules",
    "loads_rules",
    "route",
    "watch_file",
]
