"""Faults: the running daemon under load while its process, Postgres, the AMI link and Asterisk fail.

    .venv/bin/python bench/faults.py [--faults 50] [--seed N] [--rate 4]

Processes: the daemon (`callswitch serve`), the AMI simulator (bench/_pbxsim.py, which logs every
Originate and channel it sees, across restarts), an open-loop load generator (bench/_loadgen.py) and a
private durable Postgres cluster (fsync on) in a temporary directory. The daemon reaches the simulator
through a TCP proxy in this process, so the AMI link can be cut.

At random moments (``--seed``; printed, so a run can be repeated) one fault at a time, until
``--faults`` were injected:

* ``kill_daemon``: SIGKILL the daemon, start it again 0-2 s later (a new node; it takes over the calls
  of the dead one once their leases lapse);
* ``restart_postgres``: ``pg_ctl stop -m immediate`` (a crash) or ``-m fast``, start again 0-2 s later;
* ``drop_ami``: cut the AMI connection; half of the time refuse reconnections for 0.5-3 s;
* ``restart_pbx``: SIGKILL the simulator and start a new one on the same port, as if Asterisk
  restarted: its calls vanish without a single event.

Then the load stops and the daemon gets up to ``--drain`` seconds to finish every request, and is
stopped with SIGTERM. Checks, from the database and the simulator's Originate log:

* ``lost``: accepted (202) requests that are not stored, or not final and not waiting (queued or
  scheduled) at the end;
* ``double_dialled``: requests with a second Originate for the same leg (ChannelId), or for the same
  agent in the same attempt (each agent is rung at most once per attempt here);
* ``unrecorded_legs``: connected requests without an agent and a visitor leg with their times in
  ``call_legs``, plus Originates whose leg has no ``call_legs`` row at all. Not counted there, and shown
  on their own (``legs_lost_with_node``): requests a take-over counted as connected on Asterisk's word
  (the dialplan's AstDB mark, ``connected_by_mark``) whose node died before it wrote the answer or the
  acceptance; nobody else saw those events, so there is nothing to record them from. Before the mark
  existed these visitors were dialled a second time instead, and the second call's legs filled the check.

For information (not in the exit status): visitors who answered in one attempt and were dialled again in a
later one (``redialled_after_answer``), what had happened to the daemon working the answered attempt,
requests a daemon "took over" from itself, and the limits as the simulated PBX and the call records saw them.

Last line: {"faults": ..., "accepted": ..., "lost": ..., "double_dialled": ..., "unrecorded_legs": ...,
"redialled_after_answer": ..., "connected_by_mark": ..., "legs_lost_with_node": ..., "seed": ...}
Exit status 1 if anything was lost, double-dialled or unrecorded (the logs and the database are then kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _loadkit import (  # noqa: E402
    Limits,
    SimLog,
    db_limit_report,
    double_dials,
    limit_report,
    read_results,
    records_report,
    snapshot_code,
    spawn_daemon,
    spawn_loadgen,
    spawn_sim,
    stop_process,
    until,
    wait_done,
    wait_ready,
    wait_tcp,
    write_config,
)

from callswitch.pgcluster import LocalCluster, free_port  # noqa: E402
from tests.tcpproxy import TcpProxy  # noqa: E402

KINDS = ("kill_daemon", "restart_postgres", "drop_ami", "restart_pbx")
# One team: an agent who declines and one who does not answer first, then eight who accept (lab plan).
MEMBERS = ["+13125550110", "+13125550120", *(f"+1312555010{i}" for i in range(8))]
LIMITS = Limits(max_calls=16, trunk_channels=12, trunk_cps=None, per_destination=None,
                members=dict.fromkeys(MEMBERS, "store"))


class Rig:
    """The processes under test and the faults done to them."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.cluster = LocalCluster(work / "pg", durable=True)
        self.sim_port = free_port()
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.proxy = TcpProxy("127.0.0.1", self.sim_port)
        self.daemon: subprocess.Popen[bytes] | None = None
        self.sim: subprocess.Popen[bytes] | None = None
        self.dsn = ""
        self.cfg = work / "callswitch.yaml"
        self.sim_starts = 0
        self.daemons: list[tuple[int, Path]] = []  # pid and log file of every daemon started
        self.killed: dict[int, float] = {}  # pid -> when it was SIGKILLed (Unix time)
        self.keep_db = bool(args.keep)

    async def start(self) -> None:
        await asyncio.to_thread(self.cluster.start)
        admin = await asyncpg.connect(self.cluster.dsn())
        await admin.execute("CREATE DATABASE faults")
        await admin.close()
        self.dsn = self.cluster.dsn("faults")
        await self.proxy.start()
        self.cfg = write_config(self.work, port=self.http_port, dsn=self.dsn, ami_port=self.proxy.port,
                                limits=LIMITS, lease="2s", poll="0.5s", ping="1s", pool=10)
        await self.start_sim()
        self.start_daemon()
        await wait_ready(self.url, 60)

    async def start_sim(self) -> None:
        self.sim_starts += 1
        self.sim = spawn_sim(self.sim_port, self.work / "sim.jsonl", self.work / "sim.out",
                             time_scale=self.args.time_scale, seed=self.args.seed + self.sim_starts)
        await wait_tcp(self.sim_port)

    def start_daemon(self) -> None:
        log = self.work / f"daemon-{len(self.daemons) + 1:02d}.log"
        self.daemon = spawn_daemon(self.cfg, log)
        self.daemons.append((self.daemon.pid, log))

    async def inject(self, kind: str, rnd: random.Random) -> str:
        if kind == "kill_daemon":
            assert self.daemon is not None
            self.killed[self.daemon.pid] = time.time()
            self.daemon.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.daemon.wait, 10)
            pause = rnd.uniform(0, 2)
            await asyncio.sleep(pause)
            self.start_daemon()
            return f"SIGKILL, started again after {pause:.1f} s"
        if kind == "restart_postgres":
            mode = rnd.choice(("immediate", "fast"))
            pause = rnd.uniform(0, 2)
            await asyncio.to_thread(self.cluster.stop, mode)
            await asyncio.sleep(pause)
            await asyncio.to_thread(self.cluster.start)
            return f"stop -m {mode}, started again after {pause:.1f} s"
        if kind == "drop_ami":
            self.proxy.cut_all()
            if rnd.random() < 0.5:
                pause = rnd.uniform(0.5, 3)
                self.proxy.refuse = True
                await asyncio.sleep(pause)
                self.proxy.refuse = False
                return f"connection cut, reconnections refused for {pause:.1f} s"
            return "connection cut"
        if kind == "restart_pbx":
            stop_process(self.sim, signal.SIGKILL)
            pause = rnd.uniform(0, 2)
            await asyncio.sleep(pause)
            await self.start_sim()
            return f"SIGKILL, started again after {pause:.1f} s"
        raise ValueError(kind)

    async def stop(self) -> None:
        stop_process(self.daemon, signal.SIGKILL)
        stop_process(self.sim, signal.SIGKILL)
        await self.proxy.stop()
        if self.keep_db:  # the database stays for a look: LocalCluster(Path(".../pg"), port=...).start()
            await asyncio.to_thread(self.cluster.stop)
        else:
            await asyncio.to_thread(self.cluster.destroy)


async def unfinished(dsn: str) -> list[tuple[str, str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id::text AS id, state, attempts FROM callback_requests "
                                "WHERE finished_at IS NULL ORDER BY id")
        return [(r["id"], r["state"], r["attempts"]) for r in rows]
    finally:
        await conn.close()


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rnd = random.Random(args.seed)
    print(f"faults: seed {args.seed}, {args.faults} faults, load {args.rate:g} requests/s, logs in {work}",
          flush=True)
    print(f"code under test: {snapshot_code(work / 'code')} (a copy, so edits during the run do not count)",
          flush=True)
    rig = Rig(args, work)
    gen = None
    try:
        await rig.start()
        t0 = time.time()
        gen = spawn_loadgen(rig.url, f"inf:{args.rate:g}", work / "requests.jsonl", seed=args.seed, connections=16)
        injected: list[dict[str, Any]] = []
        while len(injected) < args.faults:
            await asyncio.sleep(rnd.uniform(args.min_gap, args.max_gap))
            kind = rnd.choice(KINDS)
            at = time.time() - t0
            what = await rig.inject(kind, rnd)
            injected.append({"t": round(at, 1), "kind": kind, "what": what})
            clock = time.strftime("%H:%M:%S", time.gmtime(t0 + at)) + f".{int((t0 + at) % 1 * 1000):03d}Z"
            print(f"  fault {len(injected):3d} at +{at:6.1f} s ({clock})  {kind:<17} {what}", flush=True)
        await asyncio.sleep(args.min_gap)
        gen.send_signal(signal.SIGTERM)
        await wait_done(gen, 60)
        t_load = time.time() - t0
        print(f"load stopped at +{t_load:.0f} s; draining (at most {args.drain:g} s)", flush=True)

        snapshot: list[Any] = []
        unchanged_since = time.monotonic()

        async def settled() -> bool:
            """Every request finished, or none waiting and nothing changed for 30 s (the rest is stuck)."""
            nonlocal snapshot, unchanged_since
            now = await unfinished(rig.dsn)
            if now != snapshot:
                snapshot, unchanged_since = now, time.monotonic()
            waiting = any(state in ("queued", "scheduled") for _id, state, _n in now)
            return not now or (not waiting and time.monotonic() - unchanged_since > 30)

        await wait_ready(rig.url, 60)
        drained = await until(settled, args.drain, 1.0)
        print(f"drain {'over' if drained else 'timed out'} at +{time.time() - t0:.0f} s with {len(snapshot)} "
              f"requests unfinished", flush=True)
        await asyncio.to_thread(stop_process, rig.daemon, signal.SIGTERM, 60)
        stop_process(rig.sim)
        result = await check(rig, work, injected)
        if result["lost"] or result["double_dialled"] or result["unrecorded_legs"]:
            rig.keep_db = True
        return result
    finally:
        stop_process(gen)
        await rig.stop()


async def check(rig: Rig, work: Path, injected: list[dict[str, Any]]) -> dict[str, Any]:
    results = read_results(work / "requests.jsonl")
    accepted = [r["id"] for r in results if r["status"] == 202]
    statuses: dict[str, int] = {}
    for r in results:
        key = str(r["status"] or r["error"])
        statuses[key] = statuses.get(key, 0) + 1
    sim = SimLog.read(work / "sim.jsonl")
    conn = await asyncpg.connect(rig.dsn)
    try:
        records = await records_report(conn, sim, accepted)
        db_limits = await db_limit_report(conn, LIMITS)
        attempts = await conn.fetch("SELECT outcome, count(*) AS n FROM call_attempts GROUP BY outcome")
    finally:
        await conn.close()
    self_takeovers = await own_takeovers(rig)
    redials = await classify_redials(rig, sim, records["dialled_again_after_visitor_answered"])
    doubles = double_dials(sim)
    sim_limits = limit_report(sim, LIMITS)
    kinds = {k: sum(1 for f in injected if f["kind"] == k) for k in KINDS}
    lost = len(records["missing"]) + len(records["stuck"])
    unrecorded = len(records["unrecorded_connected"]) + len(records["dialled_without_record"])
    print(f"\nfaults injected: {len(injected)} {kinds}; the simulated PBX ran {len(sim.starts)} times")
    print(f"requests sent: {len(results)} by answer {statuses}")
    print(f"records: {records['accepted']} accepted, {records['stored']} stored (the others were stored but "
          f"their answer was lost to a fault), {records['final']} final {records['outcomes']}, "
          f"{records['still_waiting']} accepted still waiting")
    print(f"  attempts by outcome: { {str(a['outcome']): int(a['n']) for a in attempts} }")
    print(f"  Originates: {len(sim.originates)}; call_legs left open: {records['open_legs']}; requests stuck "
          f"mid-call (any, acknowledged or not): {len(records['stuck_any'])}")
    print(f"lost: {lost} (not stored {len(records['missing'])}: {records['missing'][:5]}; "
          f"stuck {len(records['stuck'])}: {records['stuck'][:5]})")
    print(f"double_dialled: {doubles['count']} (same leg {len(doubles['same_leg'])}: "
          f"{list(doubles['same_leg'].items())[:5]}; same agent, same attempt "
          f"{len(doubles['same_member_same_attempt'])}: {list(doubles['same_member_same_attempt'].items())[:5]})")
    print(f"unrecorded_legs: {unrecorded} (connected without both legs {len(records['unrecorded_connected'])}: "
          f"{records['unrecorded_connected'][:5]}; Originates without a call_legs row "
          f"{len(records['dialled_without_record'])}: {records['dialled_without_record'][:5]})")
    print(f"connected on Asterisk's word after their node died (the dialplan's AstDB mark): "
          f"{len(records['connected_by_mark'])}; of those, with leg times the dead node had not written: "
          f"{len(records['legs_lost_with_node'])} {records['legs_lost_with_node'][:5]}")
    print("for information:")
    print(f"  visitor answered (PBX) in an attempt of a request whose outcome is not 'connected': "
          f"{len(records['visitor_answered_not_connected'])} {records['visitor_answered_not_connected'][:5]}")
    print(f"  visitor dialled again in a later attempt after answering: "
          f"{len(records['dialled_again_after_visitor_answered'])} "
          f"{records['dialled_again_after_visitor_answered'][:5]}; how the attempt the visitor answered in was "
          f"settled: {records['redial_reasons']}")
    print(f"  ... by what happened to the daemon working the attempt the visitor answered in: "
          f"{ {k: len(v) for k, v in redials.items()} }; alive: {redials.get('daemon alive', [])[:5]}")
    print(f"  requests with an Originate sent after the database had settled that attempt: "
          f"{len(records['dialled_after_attempt_settled'])} {records['dialled_after_attempt_settled'][:5]}")
    print(f"  requests a daemon settled as a take-over of an attempt it had started itself (its task for it had "
          f"ended, or its lease lapsed while it still worked it): "
          f"{len(self_takeovers)} {self_takeovers[:5]}")
    print(f"  limits on the simulated PBX: violations {sim_limits['violations']} {sim_limits.get('exceeded', '')}; "
          f"in the call records: {db_limits['violations']} {db_limits.get('exceeded', '')}")
    return {"faults": len(injected), "accepted": len(accepted), "lost": lost,
            "double_dialled": int(doubles["count"]), "unrecorded_legs": unrecorded,
            "redialled_after_answer": len(records["dialled_again_after_visitor_answered"]),
            "connected_by_mark": len(records["connected_by_mark"]),
            "legs_lost_with_node": len(records["legs_lost_with_node"])}


async def classify_redials(rig: Rig, sim: SimLog, rids: list[str]) -> dict[str, list[str]]:
    """Visitors dialled again after answering: was the daemon that worked the answered attempt killed before
    the answer (nobody could record it), within a second after it (the record may not have been written
    yet), or alive (it should have recorded the answer)?"""
    attempt_of = {o["id"]: (str(o.get("req")), str(o.get("att"))) for o in sim.originates}
    answered: dict[tuple[str, str], float] = {}
    for ch in sim.customer_channels():
        key = attempt_of.get(ch.call or "")
        if key is not None and key[0] in rids and ch.answered is not None:
            answered[key] = min(answered.get(key, ch.answered), ch.answered)
    conn = await asyncpg.connect(rig.dsn)
    try:
        nodes = {(r["rid"], str(r["attempt"])): r["node"] for r in await conn.fetch(
            "SELECT request_id::text AS rid, attempt, node FROM call_attempts WHERE request_id = ANY($1::uuid[])",
            rids)}
    finally:
        await conn.close()
    out: dict[str, list[str]] = {}
    for (rid, att), t_ans in sorted(answered.items()):
        node = nodes.get((rid, att), "")
        pid = int(node.rsplit("-", 1)[-1]) if node.rsplit("-", 1)[-1].isdigit() else -1
        killed = rig.killed.get(pid)
        if killed is not None and killed <= t_ans:
            why = "daemon killed before the visitor answered"
        elif killed is not None and killed <= t_ans + 1.0:
            why = "daemon killed within 1 s after the answer"
        else:
            why = "daemon alive"
        out.setdefault(why, []).append(rid)
    return out


async def own_takeovers(rig: Rig) -> list[str]:
    """Requests a daemon settled as 'taken over after the dialer node stopped' whose attempt it had started
    itself: it was still alive, still working them (from each daemon's own log and call_attempts.node)."""
    host = socket.gethostname()
    conn = await asyncpg.connect(rig.dsn)
    try:
        rows = await conn.fetch("SELECT request_id::text AS rid, node FROM call_attempts "
                                "WHERE outcome_detail LIKE 'settled after the dialer node stopped mid-call%'")
    finally:
        await conn.close()
    settled_by_node: dict[str, set[str]] = {}
    for r in rows:
        settled_by_node.setdefault(r["node"], set()).add(r["rid"])
    found: set[str] = set()
    for pid, log in rig.daemons:
        mine = settled_by_node.get(f"{host}-{pid}", set())
        if not mine or not log.exists():
            continue
        for line in log.read_text().splitlines():
            if '"takeover_settled"' not in line:
                continue
            masked = str(json.loads(line).get("callback_id", ""))  # the log masks the middle of ids
            found.update(rid for rid in mine if rid[:8] == masked[:8] and rid[-12:] == masked[-12:])
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--rate", type=float, default=4.0, help="requests/s during the faults")
    parser.add_argument("--min-gap", type=float, default=1.0, help="seconds between faults, at least")
    parser.add_argument("--max-gap", type=float, default=5.0, help="seconds between faults, at most")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds for every request to finish")
    parser.add_argument("--time-scale", type=float, default=0.1, help="simulated call time / real capture time")
    parser.add_argument("--keep", action="store_true", help="keep the logs even if every check passed")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="callswitch-faults-"))
    work.chmod(0o755)  # the cluster below it runs as the postgres user when this runs as root
    result = asyncio.run(run(args, work))
    result["seed"] = args.seed
    bad = result["lost"] or result["double_dialled"] or result["unrecorded_legs"]
    if args.keep or bad:
        print(f"logs kept in {work} (daemon-NN.log, sim.jsonl, requests.jsonl; Postgres in pg/)")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
