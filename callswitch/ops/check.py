"""``callswitch check``: the live checks against Asterisk (AMI login, dialplan, endpoints)."""

from __future__ import annotations

import asyncio
import re

from callswitch.config import AmiConfig
from callswitch.dialer.ami_client import AmiActionFailed, AmiClient, AmiError, AmiServer
from callswitch.routing.rules import Rules

# the contexts the daemon originates into or the dialplan jumps to (asterisk/extensions_callswitch.conf)
REQUIRED_CONTEXTS = ("callswitch-agent", "callswitch-confirm", "callswitch-customer", "callswitch-predial",
                     "callswitch-leg-ended", "callswitch-mark-connected")
_PJSIP = re.compile(r"^PJSIP/(?:[^@/]*@)?([A-Za-z0-9_.+-]+)$")

Result = tuple[str, bool, str]


def pjsip_endpoints(rules: Rules) -> dict[str, str]:
    """PJSIP endpoints the rules dial: ``{endpoint: where it is used}``."""
    out: dict[str, str] = {}
    for name, trunk in rules.trunks.items():
        m = _PJSIP.match(trunk.dial.replace("{number}", "0"))
        if m:
            out.setdefault(m.group(1), f"trunk {name}")
    for dname, dest in rules.destinations.items():
        for member in dest.members:
            m = _PJSIP.match(member.dial)
            if member.is_endpoint and m:
                out.setdefault(m.group(1), f"destination {dname}")
    return out


async def check_asterisk(server: AmiConfig, rules: Rules | None, wait_s: float = 10.0) -> list[Result]:
    label = f"asterisk {server.name}"
    client = AmiClient(AmiServer(server.name, server.host, server.port, server.username, server.secret),
                       lambda _m: None, backoff_max=wait_s)
    results: list[Result] = []
    await client.start()
    try:
        if not await client.wait_connected(wait_s):
            return [(f"{label} login", False, f"{server.host}:{server.port} as {server.username}: "
                                               f"{client.last_error or client.state}")]
        results.append((f"{label} login", True, f"{server.host}:{server.port}, Asterisk {client.version or '?'}"))
        for context in REQUIRED_CONTEXTS:
            try:
                items = await client.action("ShowDialPlan", {"Context": context}, complete_event="ShowDialPlanComplete")
                found = any(m.get("Event") == "ListDialplan" for m in items)
                results.append((f"{label} dialplan {context}", found,
                                "present" if found else "missing: install asterisk/extensions_callswitch.conf"))
            except AmiActionFailed as exc:
                results.append((f"{label} dialplan {context}", False,
                                f"missing ({exc.message}): install asterisk/extensions_callswitch.conf"))
        if rules is not None:
            for endpoint, used_by in sorted(pjsip_endpoints(rules).items()):
                try:
                    await client.action("PJSIPShowEndpoint", {"Endpoint": endpoint},
                                        complete_event="EndpointDetailComplete")
                    results.append((f"{label} endpoint {endpoint}", True, f"exists ({used_by})"))
                except AmiActionFailed as exc:
                    results.append((f"{label} endpoint {endpoint}", False, f"{exc.message} ({used_by})"))
    except AmiError as exc:
        results.append((f"{label}", False, f"AMI error: {exc}"))
    finally:
        await asyncio.wait_for(client.stop(), wait_s)
    return results
