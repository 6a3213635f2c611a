"""The AMI simulator in a process of its own, for bench/load.py and bench/faults.py.

    python bench/_pbxsim.py --port 5038 --log sim.jsonl [--time-scale 0.05] [--seed 1] [--astdb astdb.json]

Runs :class:`callswitch.testing.pbx.PbxSimulator` (login ``callswitch``/``secret``) so that it does
not share the daemon's CPU, and so that killing it looks like Asterisk going away. Every Originate it
receives and every channel it creates, answers and hangs up is appended to ``--log`` as one JSON line,
written at once (a SIGKILL loses nothing already logged); several incarnations may append to the same
file, each starting with a ``start`` line. With ``--astdb`` the AstDB (the dialplan's connected marks)
is kept in that file and read back by the next incarnation, as a restarted Asterisk keeps astdb.sqlite3.
The log:

    {"k": "start", "t": ..., "pid": ...}
    {"k": "orig", "t": ..., "id": ChannelId, "req": CS_REQUEST_ID, "att": CS_ATTEMPT, "dial": Channel, "ok": bool}
    {"k": "up" | "ans" | "down", "t": ..., "ch": channel name, "call": ChannelId of the Originate, "uid": Uniqueid}

``t`` is the Unix time (time.time()). Number plan (``bench_behaviour``): the lab plan of
:func:`callswitch.testing.pbx.lab_behaviour` for +131255501X.. / +177355502X..; any other +13124..
agent accepts; visitors +1773.. hang up after talking, except a last digit 7 (busy) or 8 (no
answer); visitors +1872.. stay on the line until hung up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("CALLSWITCH_BENCH_CODE") or str(ROOT))  # the run's copy of callswitch/

from callswitch.ami.protocol import AmiMessage  # noqa: E402
from callswitch.testing.pbx import PbxSimulator, lab_behaviour  # noqa: E402


def bench_behaviour(number: str) -> str:
    digits = number.lstrip("+")
    if digits.startswith(("131255501", "177355502")):
        return lab_behaviour(number)
    if digits.startswith("13124"):
        return "accept"
    if digits.startswith("1872"):
        return "stays"
    if digits.startswith("1773"):
        return {"7": "busy", "8": "noanswer"}.get(digits[-1], "hangs_up")
    return lab_behaviour(number)


class LoggingSimulator(PbxSimulator):
    """PbxSimulator that appends its Originates and channel life cycle to a JSON-lines file."""

    def __init__(self, log: IO[str], **kw: Any) -> None:
        super().__init__(**kw)
        self._log = log

    def _write(self, **fields: Any) -> None:
        fields["t"] = time.time()
        self._log.write(json.dumps(fields, separators=(",", ":")) + "\n")

    def _originate(self, s: Any, m: AmiMessage, reply: Any) -> None:
        super()._originate(s, m, reply)
        rec = self.originates[-1]
        self.originates.clear()  # the file is the record; keep the process small over long runs
        v = rec.variables
        self._write(k="orig", id=rec.headers.get("ChannelId"), aid=rec.headers.get("ActionID"),
                    req=v.get("CS_REQUEST_ID"), att=v.get("CS_ATTEMPT"), dial=rec.headers.get("Channel"),
                    ok=rec.accepted, sess=rec.session)

    def _track(self, raw: str) -> None:
        m = AmiMessage(raw)
        ev, name = m.event, m.get("Channel")
        before = self.channels.get(name) if ev == "Hangup" and name else None
        super()._track(raw)
        if not name:
            return
        if ev == "Newchannel":
            ch = self.channels.get(name)
            call = ch.call.channel_id if ch is not None and ch.call is not None else None
            self._write(k="up", ch=name, call=call, uid=m.get("Uniqueid"))
        elif ev == "Newstate" and m.get("ChannelStateDesc") == "Up":
            ch = self.channels.get(name)
            call = ch.call.channel_id if ch is not None and ch.call is not None else None
            self._write(k="ans", ch=name, call=call, uid=m.get("Uniqueid"))
        elif ev == "Hangup" and before is not None:
            call = before.call.channel_id if before.call is not None else None
            self._write(k="down", ch=name, call=call, uid=m.get("Uniqueid"))


async def run(args: argparse.Namespace) -> None:
    with open(args.log, "a", buffering=1) as log:  # noqa: ASYNC230 - line-buffered: every line written at once
        sim = LoggingSimulator(log, users={"callswitch": "secret"}, time_scale=args.time_scale,
                               default_behaviour=bench_behaviour, seed=args.seed,
                               astdb_file=Path(args.astdb) if args.astdb else None)
        log.write(json.dumps({"k": "start", "t": time.time(), "pid": os.getpid()}) + "\n")
        await sim.start(port=args.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"pbxsim ready on port {sim.port}", flush=True)
        await stop.wait()
        with contextlib.suppress(Exception):
            await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="AMI simulator process with an Originate/channel log")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--astdb", help="JSON file holding the AstDB across incarnations, as astdb.sqlite3 does")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
