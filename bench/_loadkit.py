"""Shared parts of bench/load.py and bench/faults.py: processes, configuration, /proc sampling, and the
checks run on the simulator's log and the database after a run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from benchdb import scratch_database

from callswitch.dialer.worker import TAKEN_OVER_BY_MARK
from callswitch.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FINAL_STATES = ("completed", "failed", "cancelled", "expired", "rejected")
WAITING_STATES = ("queued", "scheduled")
CLK_TCK = os.sysconf("SC_CLK_TCK")

CONFIG = """\
http: {{listen: "127.0.0.1:{port}", public_url: "http://127.0.0.1:{port}"}}
database: {{dsn: "{dsn}", min_connections: 2, max_connections: {pool}, command_timeout: 10s}}
ami: {{name: pbx, host: 127.0.0.1, port: {ami_port}, username: callswitch, secret: secret, ping_interval: {ping}}}
dialing:
  max_concurrent_calls: {max_calls}
  max_calls_per_destination: {max_per_destination}
  lease: {lease}
  poll_interval: {poll}
  customer_retries: 1
  retry_backoff: [2s]
  busy_wait: 0.5s
  customer_timeout: 10
  drain_timeout: 20s
logging: {{level: info, format: json}}
routing: {{file: routing.yaml}}
intake: {{rate_limits: {{per_ip: "off", per_phone: "off", per_site: "off"}}}}
sites:
  shop:
    site_key: pk_bench_site
    allowed_origins: ["https://shop.example"]
    phone: {{default_region: US}}
"""

ROUTING = """\
version: 1
defaults: {{timezone: America/Chicago, ring_timeout: 5}}
trunks:
  carrier: {{dial: "PJSIP/{{number}}@carrier", caller_id: "+13125550000"{trunk_limits}}}
destinations:
{destinations}
rules:
  - name: support-pages
    when: {{page_url: {{glob: "*/support*"}}}}
    route: {support}
default: {default}
"""


@dataclass(frozen=True)
class Limits:
    """The limits a run is configured with, and which destination each agent number belongs to."""

    max_calls: int
    trunk_channels: int | None
    trunk_cps: float | None
    per_destination: int | None
    members: dict[str, str]  # agent number (E.164) -> destination


def write_config(directory: Path, *, port: int, dsn: str, ami_port: int, limits: Limits, lease: str = "30s",
                 poll: str = "1s", ping: str = "2s", pool: int = 10) -> Path:
    """callswitch.yaml and routing.yaml for ``limits`` in ``directory`` (made if missing); destinations in the
    order first seen in ``members``."""
    directory.mkdir(parents=True, exist_ok=True)
    dests: dict[str, list[str]] = {}
    for number, dest in limits.members.items():
        dests.setdefault(dest, []).append(number)
    trunk = ""
    if limits.trunk_channels is not None:
        trunk += f", max_channels: {limits.trunk_channels}"
    if limits.trunk_cps is not None:
        trunk += f", max_cps: {limits.trunk_cps:g}"
    lines = []
    for dest, numbers in dests.items():
        lines.append(f"  {dest}:")
        lines.append(f"    members: [{', '.join(json.dumps(n) for n in numbers)}]")
        lines.append("    strategy: sequential")
    names = list(dests)
    (directory / "routing.yaml").write_text(ROUTING.format(
        trunk_limits=trunk, destinations="\n".join(lines), support=names[-1], default=names[0]))
    per_dest = "~" if limits.per_destination is None else str(limits.per_destination)
    cfg = directory / "callswitch.yaml"
    cfg.write_text(CONFIG.format(port=port, dsn=dsn, ami_port=ami_port, max_calls=limits.max_calls,
                                 max_per_destination=per_dest, lease=lease, poll=poll, ping=ping, pool=pool))
    return cfg


# --------------------------------------------------------------------------------------- processes
CODE = ROOT  # where the daemon and the simulator import callswitch from (see snapshot_code)


def snapshot_code(directory: Path) -> str:
    """Copy callswitch/ to ``directory`` and run every daemon and simulator of this run from that copy, so
    that edits to the checkout while the run goes on cannot mix two versions of the code. Returns a
    description of the version: the git commit and whether callswitch/ had uncommitted changes."""
    global CODE
    shutil.copytree(ROOT / "callswitch", directory / "callswitch",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    CODE = directory
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "callswitch"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head}" + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(CODE), "CALLSWITCH_BENCH_CODE": str(CODE)}


def spawn_daemon(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # cwd: `python -m` puts the working directory first on sys.path
        return subprocess.Popen([sys.executable, "-m", "callswitch", "serve", "-c", str(cfg)], env=child_env(),
                                cwd=CODE, stdout=out, stderr=subprocess.STDOUT)


def spawn_sim(port: int, log: Path, out: Path, *, time_scale: float, seed: int) -> subprocess.Popen[bytes]:
    with out.open("ab") as stdout:
        return subprocess.Popen([sys.executable, str(BENCH / "_pbxsim.py"), "--port", str(port), "--log", str(log),
                                 "--time-scale", str(time_scale), "--seed", str(seed),
                                 "--astdb", str(log.parent / "astdb.json")], env=child_env(),
                                cwd=CODE, stdout=stdout, stderr=subprocess.STDOUT)


def spawn_loadgen(url: str, schedule: str, out: Path, *, seed: int, first: int = 0, prefix: str = "+1773",
                  connections: int = 128) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(BENCH / "_loadgen.py"), "--url", url, "--schedule", schedule,
                             "--out", str(out), "--seed", str(seed), "--first", str(first), "--prefix", prefix,
                             "--connections", str(connections)], env=child_env())


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@dataclass(frozen=True)
class Stack:
    """A daemon on a scratch database, with the AMI simulator it dials through (if any)."""

    dsn: str
    url: str
    work: Path
    sim_port: int
    daemon: subprocess.Popen[bytes]
    sim: subprocess.Popen[bytes] | None


@contextlib.asynccontextmanager
async def start_stack(server_dsn: str, work: Path, *, limits: Limits, pool: int, time_scale: float, seed: int,
                      with_sim: bool = True) -> AsyncIterator[Stack]:
    """Start the simulator (unless ``with_sim`` is false: Asterisk unreachable) and a daemon on a new database in
    ``work``; on leaving, stop both (a daemon still running gets SIGTERM) and drop the database."""
    dsn, drop = await scratch_database(server_dsn)
    sim_port, http_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    cfg = write_config(work, port=http_port, dsn=dsn, ami_port=sim_port, limits=limits, pool=pool)
    sim = daemon = None
    try:
        if with_sim:
            sim = spawn_sim(sim_port, work / "sim.jsonl", work / "sim.out", time_scale=time_scale, seed=seed)
            await wait_tcp(sim_port)
        daemon = spawn_daemon(cfg, work / "daemon.log")
        await wait_ready(url, degraded_ok=not with_sim)
        yield Stack(dsn=dsn, url=url, work=work, sim_port=sim_port, daemon=daemon, sim=sim)
    finally:
        stop_process(daemon)
        stop_process(sim)
        await drop()


async def wait_tcp(port: int, timeout: float = 30) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while True:
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.05)


async def wait_ready(url: str, timeout: float = 60, *, degraded_ok: bool = False) -> None:  # noqa: ASYNC109
    """Until /readyz says ready (and, unless degraded_ok, every Asterisk logged in)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
        while True:
            try:
                async with http.get(url + "/readyz") as resp:
                    body = await resp.json()
                    if resp.status == 200 and (degraded_ok or not body.get("degraded")):
                        return
            except (aiohttp.ClientError, OSError, ValueError):
                pass
            await asyncio.sleep(0.1)


async def until(check: Callable[[], Awaitable[bool]], timeout: float | None, interval: float = 0.5) -> bool:  # noqa: ASYNC109
    """Poll ``check`` until it is true (True) or ``timeout`` seconds passed (False)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not await check():  # noqa: ASYNC110 - polling another process / the database
                await asyncio.sleep(interval)
            return True
    return False


async def wait_done(proc: subprocess.Popen[bytes], timeout: float | None = None) -> int:  # noqa: ASYNC109
    async def exited() -> bool:
        return proc.poll() is not None

    if not await until(exited, timeout, 0.1):
        raise TimeoutError(f"process {proc.pid} still running")
    return int(proc.returncode)


# --------------------------------------------------------------------------------------- /proc
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Sampler:
    """Samples the daemon's CPU and RSS, the database's queue, and the CPU time of the other processes of the
    run (``watch``) and of the Postgres backends serving this database, every second."""

    pid: int
    dsn: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    watched: dict[str, int] = field(default_factory=dict)  # name -> pid
    _task: asyncio.Task[None] | None = None
    _last: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds at the last sample

    def watch(self, name: str, pid: int) -> None:
        self.watched[name] = pid

    def _cpu_delta(self, pid: int) -> float:
        try:
            now = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return 0.0
        before = self._last.get(pid)
        self._last[pid] = now
        return 0.0 if before is None else now - before

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            t0 = time.time()
            prev_t, prev_cpu = time.monotonic(), cpu_seconds(self.pid)
            prev_busy, prev_total = machine_jiffies()
            while True:
                await asyncio.sleep(1.0)
                try:
                    now, cpu, rss = time.monotonic(), cpu_seconds(self.pid), rss_bytes(self.pid)
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    return
                busy, total = machine_jiffies()
                machine = 100 * (busy - prev_busy) / max(1, total - prev_total)
                prev_busy, prev_total = busy, total
                rows = await conn.fetch("SELECT state, count(*) AS n FROM callback_requests "
                                        "WHERE finished_at IS NULL GROUP BY state")
                states = {r["state"]: int(r["n"]) for r in rows}
                others = {name: self._cpu_delta(pid) for name, pid in self.watched.items()}
                backends = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                            "AND pid <> pg_backend_pid()")
                others["postgres"] = sum(self._cpu_delta(int(r["pid"])) for r in backends)
                self.samples.append({
                    "t": round(time.time() - t0, 1), "cpu_pct": round(100 * (cpu - prev_cpu) / (now - prev_t), 1),
                    "rss_mb": round(rss / 2**20, 1), "queued": states.get("queued", 0),
                    "scheduled": states.get("scheduled", 0),
                    "in_call": sum(n for s, n in states.items() if s not in WAITING_STATES),
                    "machine_pct": round(machine, 1), "cpu_s": others,
                })
                prev_t, prev_cpu = now, cpu
        finally:
            await conn.close()


# --------------------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))
    return float(ordered[k])


def sweep(intervals: Iterable[tuple[float, float]], limit: int | None) -> tuple[int, int]:
    """(peak concurrency, number of interval starts that took it above ``limit``). Ends sort before starts."""
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    n = peak = over = 0
    for _t, d in events:
        n += d
        peak = max(peak, n)
        if d > 0 and limit is not None and n > limit:
            over += 1
    return peak, over


def window_peak(times: Sequence[float], width: float, limit: float | None) -> tuple[int, int]:
    """(most events in any ``width`` window ending at an event, events that made a window exceed ``limit``)."""
    ordered = sorted(times)
    lo = peak = over = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - width:
            lo += 1
        n = hi - lo + 1
        peak = max(peak, n)
        if limit is not None and n > limit:
            over += 1
    return peak, over


# --------------------------------------------------------------------------------------- the simulator's log
@dataclass
class Channel:
    name: str
    call: str | None
    uid: str | None
    up: float
    answered: float | None = None
    down: float | None = None


@dataclass
class SimLog:
    originates: list[dict[str, Any]]
    channels: list[Channel]
    starts: list[float]
    end: float

    @classmethod
    def read(cls, path: Path, end: float | None = None) -> SimLog:
        originates: list[dict[str, Any]] = []
        channels: list[Channel] = []
        starts: list[float] = []
        open_chans: dict[str, Channel] = {}
        last = 0.0
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by SIGKILL
                last = max(last, rec["t"])
                k = rec["k"]
                if k == "start":
                    for ch in open_chans.values():  # the previous incarnation died with its calls
                        ch.down = rec["t"]
                    open_chans.clear()
                    starts.append(rec["t"])
                elif k == "orig":
                    originates.append(rec)
                elif k == "up":
                    ch = Channel(rec["ch"], rec.get("call"), rec.get("uid"), rec["t"])
                    open_chans[ch.name] = ch
                    channels.append(ch)
                elif k == "ans" and rec["ch"] in open_chans:
                    open_chans[rec["ch"]].answered = open_chans[rec["ch"]].answered or rec["t"]
                elif k == "down" and rec["ch"] in open_chans:
                    open_chans.pop(rec["ch"]).down = rec["t"]
        end = end if end is not None else last
        return cls(originates, channels, starts, end)

    def agent_channels(self) -> list[Channel]:
        """Channels the Originates created (Uniqueid = ChannelId = callswitch's leg id)."""
        return [c for c in self.channels if c.call is not None and c.uid == c.call]

    def customer_channels(self) -> list[Channel]:
        return [c for c in self.channels if c.call is not None and c.uid != c.call]


def dialled_number(dial: str | None) -> tuple[str, str]:
    """'PJSIP/+13125550100@carrier' -> ('+13125550100', 'carrier')."""
    dest = (dial or "").split("/", 1)[-1]
    number, _, endpoint = dest.partition("@")
    return number, endpoint or number


def check_spans(ivs: dict[str, list[tuple[float, float]]], limits: Limits, out: dict[str, Any]) -> dict[str, int]:
    """Each group of call spans ("global", "trunk:X", "member:X", "destination:X") against its limit: moments
    over it are added to ``out["violations"]`` and ``out["exceeded"]``; returns the peak of each group."""
    peaks: dict[str, int] = {}
    for key, spans in sorted(ivs.items()):
        kind = key.split(":", 1)[0]
        limit = {"global": limits.max_calls, "trunk": limits.trunk_channels, "member": 1,
                 "destination": limits.per_destination}[kind]
        peak, over = sweep(spans, limit)
        peaks[key] = peak
        out["violations"] += over
        if over:
            out.setdefault("exceeded", {})[key] = {"peak": peak, "limit": limit, "times": over}
    return peaks


def limit_report(sim: SimLog, limits: Limits) -> dict[str, Any]:
    """Concurrency the simulated PBX actually carried, against every configured limit."""
    by_leg = {o["id"]: o for o in sim.originates if o.get("ok")}
    ivs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for ch in sim.agent_channels():
        o = by_leg.get(ch.call or "")
        if o is None:
            continue
        number, trunk = dialled_number(o.get("dial"))
        span = (ch.up, ch.down if ch.down is not None else sim.end)
        ivs["global"].append(span)
        ivs[f"trunk:{trunk}"].append(span)
        ivs[f"member:{number}"].append(span)
        ivs[f"destination:{limits.members.get(number, '?')}"].append(span)
    out: dict[str, Any] = {"violations": 0, "peaks": {}}
    peaks = check_spans(ivs, limits, out)
    out["peaks"] = {key: peak for key, peak in peaks.items() if not key.startswith("member:")}
    out["peaks"]["any member"] = max((p for k, p in peaks.items() if k.startswith("member:")), default=0)
    # every channel on the trunk (agent and visitor legs), for information: the limit counts calls
    trunk_spans = [(c.up, c.down if c.down is not None else sim.end) for c in sim.channels]
    out["trunk_channels_peak_both_legs"] = sweep(trunk_spans, None)[0]
    return out


async def db_limit_report(conn: asyncpg.Connection, limits: Limits) -> dict[str, Any]:
    """The same limits checked on the call records (agent legs from originated_at to ended_at; legs never
    closed are left out) and the trunk's calls per second (originated_at, as the dialer counts them)."""
    rows = await conn.fetch(  # legs never closed are reported apart (records_report: open_legs)
        "SELECT trunk, destination, member, extract(epoch FROM originated_at)::float8 AS s, "
        "extract(epoch FROM ended_at)::float8 AS e FROM call_legs WHERE leg = 'agent' AND ended_at IS NOT NULL")
    ivs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    starts: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        span = (r["s"], r["e"])
        ivs["global"].append(span)
        ivs[f"trunk:{r['trunk']}"].append(span)
        ivs[f"member:{r['member']}"].append(span)
        ivs[f"destination:{r['destination']}"].append(span)
        starts[str(r["trunk"])].append(r["s"])
    out: dict[str, Any] = {"violations": 0}
    check_spans(ivs, limits, out)
    for trunk, ts in starts.items():
        peak, over = window_peak(ts, 1.0, limits.trunk_cps)
        out[f"cps_peak:{trunk}"] = peak
        out["violations"] += over
        if over:
            out.setdefault("exceeded", {})[f"cps:{trunk}"] = {"peak": peak, "limit": limits.trunk_cps, "times": over}
    return out


def double_dials(sim: SimLog) -> dict[str, Any]:
    """Originates that repeat one already sent for the same leg (ChannelId), or for the same member in the
    same attempt of the same request (each member is rung at most once per attempt: rounds = 1)."""
    by_leg: dict[str, int] = defaultdict(int)
    by_member: dict[tuple[str, str, str], int] = defaultdict(int)
    for o in sim.originates:
        by_leg[str(o.get("id"))] += 1
        by_member[(str(o.get("req")), str(o.get("att")), dialled_number(o.get("dial"))[0])] += 1
    same_leg = {k: n for k, n in by_leg.items() if n > 1}
    same_member = {k: n for k, n in by_member.items() if n > 1}
    requests = {k[0] for k in same_member} | {
        str(o.get("req")) for o in sim.originates if str(o.get("id")) in same_leg}
    return {"same_leg": same_leg, "same_member_same_attempt": {"/".join(k): n for k, n in same_member.items()},
            "requests": sorted(requests), "count": len(requests)}


async def records_report(conn: asyncpg.Connection, sim: SimLog, accepted: Sequence[str]) -> dict[str, Any]:
    """What the database says about the accepted requests, checked against the simulator's log."""
    rows = await conn.fetch("SELECT id::text AS id, state, outcome FROM callback_requests")
    state = {r["id"]: (r["state"], r["outcome"]) for r in rows}
    missing = [rid for rid in accepted if rid not in state]
    stuck = [rid for rid in accepted if rid in state and state[rid][0] not in FINAL_STATES + WAITING_STATES]
    waiting = [rid for rid in accepted if rid in state and state[rid][0] in WAITING_STATES]
    stuck_any = [rid for rid, (s, _o) in state.items() if s not in FINAL_STATES + WAITING_STATES]
    legs = await conn.fetch(
        "SELECT request_id::text AS rid, attempt, leg, leg_id, originated_at, answered_at, ended_at FROM call_legs")
    leg_ids = {r["leg_id"] for r in legs}
    by_req: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in legs:
        by_req[r["rid"]].append(r)
    connected = [rid for rid, (s, o) in state.items() if s == "completed" and o == "connected"]
    # connected on Asterisk's word (the dialplan's AstDB mark) after the node working the call died: the leg facts
    # that node had not written yet are missing, as nobody else saw them
    by_mark = {r["rid"] for r in await conn.fetch(
        "SELECT request_id::text AS rid FROM call_attempts WHERE outcome = 'connected' AND outcome_detail = $1",
        TAKEN_OVER_BY_MARK)}
    unrecorded_connected: list[str] = []
    legs_lost_with_node: list[str] = []
    for rid in connected:
        got = by_req.get(rid, [])
        agent = any(r["leg"] == "agent" and r["originated_at"] and r["answered_at"] and r["ended_at"] for r in got)
        customer = any(r["leg"] == "customer" and r["originated_at"] and r["ended_at"] for r in got)
        if not (agent and customer):
            (legs_lost_with_node if rid in by_mark else unrecorded_connected).append(rid)
    dialled_unrecorded = sorted({str(o.get("id")) for o in sim.originates if o.get("id") not in leg_ids})
    open_legs = sum(1 for r in legs if r["ended_at"] is None)
    # a visitor who answered (seen by the PBX) in an attempt that the database does not count as connected
    answered_calls = {c.call for c in sim.customer_channels() if c.answered is not None}
    attempt_of = {o["id"]: (str(o.get("req")), str(o.get("att"))) for o in sim.originates}
    answered_attempts = {attempt_of[c] for c in answered_calls if c in attempt_of}
    answered_not_connected = sorted({rid for rid, _a in answered_attempts
                                     if state.get(rid, ("", ""))[1] != "connected"})
    later_dials = sorted({rid for rid, att in answered_attempts for o in sim.originates
                          if str(o.get("req")) == rid and o.get("ok") and _int(o.get("att")) > _int(att)})
    # how the database settled the attempts in which the visitor had answered, for those dialled again
    attempts = {(r["rid"], str(r["attempt"])): r for r in await conn.fetch(
        "SELECT request_id::text AS rid, attempt, node, outcome, outcome_detail, "
        "extract(epoch FROM finished_at)::float8 AS finished FROM call_attempts")}
    redial_reasons = _count(
        f"{attempts[k]['outcome']}: {attempts[k]['outcome_detail']}" if k in attempts else "no attempt row"
        for k in answered_attempts if k[0] in later_dials)
    # Originates the PBX received after the database had already settled their attempt
    after_finish = sorted({str(o.get("req")) for o in sim.originates
                           if (a := attempts.get((str(o.get("req")), str(o.get("att"))))) is not None
                           and a["finished"] is not None and o["t"] > a["finished"]})
    return {
        "stored": len(state), "accepted": len(accepted), "missing": missing, "stuck": stuck,
        "still_waiting": len(waiting), "stuck_any": stuck_any,
        "final": sum(1 for s, _o in state.values() if s in FINAL_STATES),
        "outcomes": _count(o for s, o in state.values() if s in FINAL_STATES),
        "connected": len(connected), "unrecorded_connected": unrecorded_connected,
        "connected_by_mark": sorted(by_mark), "legs_lost_with_node": legs_lost_with_node,
        "dialled_without_record": dialled_unrecorded, "open_legs": open_legs,
        "visitor_answered_not_connected": answered_not_connected,
        "dialled_again_after_visitor_answered": later_dials, "redial_reasons": redial_reasons,
        "dialled_after_attempt_settled": after_finish,
    }


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _count(values: Iterable[Any]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in values:
        out[str(v)] += 1
    return dict(sorted(out.items()))


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def hang_up_all(port: int) -> int:
    """Ask the PBX to hang up every channel (what people putting down their phones do)."""
    from callswitch import logs
    from callswitch.dialer.ami_client import AmiClient, AmiServer

    logs.configure("warning", "console")  # the client's own connect/stop lines are noise here
    client = AmiClient(AmiServer("bench", "127.0.0.1", port, "callswitch", "secret"), lambda _m: None)
    await client.start()
    try:
        if not await client.wait_connected(10):
            return 0
        channels = await client.channels()
        for ch in channels:
            with contextlib.suppress(Exception):
                await client.action("Hangup", {"Channel": ch["Channel"]})
        return len(channels)
    finally:
        await client.stop()
