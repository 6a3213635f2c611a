"""Event scripts for the AMI simulator, extracted from the real Asterisk 22.10.1 flow-A captures.

Each scenario is the exact sequence of messages one agent-first call produced on AMI (after the
``Response: Success`` of the Originate), with its arrival time, plus the identifiers used in that
capture so the simulator can substitute the ones of the simulated call. Dialplan noise (Newexten,
VarSet) is left out: the reference dialplan's steps differ from the shipped one, and the daemon's AMI
user filters them (asterisk/manager_callswitch.conf).

Regenerate ``data/scenarios.json`` with ``python -m callswitch.testing.scenarios [../shared/asterisk]``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from callswitch.ami.protocol import AmiParser

DATA_FILE = Path(__file__).resolve().parent / "data" / "scenarios.json"

# capture name -> scenario key
CAPTURES = {
    "A_accept_customer_hangs_up": "accept/customer_hangs_up",
    "A_accept_agent_hangs_up": "accept/customer_stays",
    "A_customer_busy": "accept/customer_busy",
    "A_customer_noanswer": "accept/customer_noanswer",
    "A_customer_404": "accept/customer_404",
    "A_decline": "decline",
    "A_agent_noanswer": "noanswer",
    "A_agent_busy": "busy",
    "A_agent_congestion": "congestion",
    "A_agent_hangs_up_in_announcement": "hangs_up_in_announcement",
    "A_voicemail_no_key": "voicemail",
    "A_early_dtmf": "early_dtmf",
}
NOISE = {"Newexten", "VarSet"}


def _times(summary: Path) -> list[float]:
    out = []
    for line in summary.read_text().splitlines():
        if not line.startswith("t+"):
            continue
        _t, secs, *rest = line.split(None, 2)
        if rest and rest[0].startswith((">>>", "#")):
            continue
        out.append(float(secs))
    return out


def build(shared: Path) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    for capture, key in CAPTURES.items():
        wire = (shared / "flows" / f"{capture}.txt").read_bytes()
        action = (shared / "flows" / f"{capture}.action.txt").read_bytes().decode().split("\r\n\r\n")[0]
        times = _times(shared / "flows" / f"{capture}.summary.txt")
        msgs = AmiParser().feed(wire)
        assert len(msgs) == len(times), capture
        hdr = dict(re.findall(r"^(ActionID|Channel|ChannelId): (.*?)\r?$", action, re.M))
        variables = dict(re.findall(r"^Variable: (\w+)=(.*?)\r?$", action, re.M))
        agent = hdr["Channel"].split("/", 1)[1].split("@", 1)[0]
        customer = ""
        script: list[list[Any]] = []
        hangup_action_at = None
        for t, m in zip(times, msgs, strict=True):
            if m.event is None:  # a response (OriginateResponse is an event with a Response header)
                if m.action_id == hdr["ActionID"]:
                    continue  # the "Originate successfully queued" response is sent by the simulator
                hangup_action_at = len(script)  # A_accept_agent_hangs_up: response to Action: Hangup
                continue
            if m.event in NOISE:
                continue
            if m.event == "DialBegin" and m.get("DestChannel") and (m.get("DialString") or "").startswith("1773"):
                customer = m["DialString"].split("@", 1)[0]
            script.append([round(t, 3), m.raw])
        scenarios[key] = {
            "capture": capture,
            "action_id": hdr["ActionID"],
            "channel_id": hdr["ChannelId"],
            "agent": agent,
            "customer": customer or variables.get("CUSTOMER", ""),
            "wait_for_hangup_at": hangup_action_at,
            "messages": script,
        }
    return scenarios


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA_FILE.read_text())
    return data


if __name__ == "__main__":  # pragma: no cover
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/asterisk")
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_text(json.dumps(build(root), indent=1) + "\n")
    print(f"wrote {DATA_FILE}")
