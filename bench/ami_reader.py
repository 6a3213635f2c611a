"""Benchmark: callswitch.ami.AmiParser vs panoramisk 1.4's own reader on the same AMI byte stream.

The stream is built by repeating the real Asterisk 22 transcripts in ../shared/asterisk/flows/*.txt
(fallback: the recordings bundled in tests/ami/data/) behind one banner line, then cut into random
1-4 KiB chunks (seeded) like TCP reads. Both readers get exactly the same chunks:

(a) ``AmiParser.feed(chunk)``; each returned message is handed to a dispatch function.
(b) panoramisk's real ``AMIProtocol.data_received(chunk)`` (decode, split on CRLFCRLF, ``Message.from_line``,
    ``handle_message`` -> ``factory.dispatch``) on an instance with a fake transport and a stand-in factory:
    the same per-message work panoramisk does inside a Manager, minus its callback pattern matching.
Both dispatch functions read the same three headers (Event, Uniqueid, ActionID) of every message, since
AmiParser extracts header values lazily; a second line reports AmiParser with every header of every
message materialised into a dict.

Prints events/s for both and the ratio; the last line is one JSON object.
Usage: python bench/ami_reader.py [--mib 40] [--rounds 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callswitch.ami.protocol import AmiParser  # noqa: E402

SHARED = Path(os.environ.get("CALLSWITCH_SHARED_DIR", ROOT.parent / "shared")) / "asterisk" / "flows"
BUNDLED = ROOT / "tests" / "ami" / "data"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def load_corpus() -> tuple[bytes, str]:
    files = sorted(SHARED.glob("*.txt")) if SHARED.is_dir() else []
    files = [f for f in files if not f.name.endswith((".action.txt", ".summary.txt"))]
    source = str(SHARED)
    if not files:
        files = [f for f in sorted(BUNDLED.glob("*.txt"))
                 if not f.name.endswith((".action.txt", ".summary.txt")) and not f.name.startswith("login")]
        source = str(BUNDLED)
    if not files:
        raise SystemExit("no transcripts found")
    return b"".join(f.read_bytes() for f in files), source


def make_chunks(corpus: bytes, target_bytes: int, seed: int) -> tuple[list[bytes], int]:
    reps = max(1, target_bytes // len(corpus))
    stream = BANNER + corpus * reps
    rnd = random.Random(seed)
    chunks = []
    pos = 0
    while pos < len(stream):
        n = rnd.randint(1024, 4096)
        chunks.append(stream[pos : pos + n])
        pos += n
    return chunks, len(stream)


# What a consumer does with every message, identical for both readers: read the event name and the
# two correlation keys. (panoramisk has already built a full case-insensitive dict by then; AmiParser
# looks the three headers up in the raw text.) --full additionally materialises every header of every
# message on our side.
def touch(msg: Any) -> None:
    msg.get("Event")
    msg.get("Uniqueid")
    msg.get("ActionID")


def run_ours(chunks: list[bytes], full: bool = False) -> tuple[int, float]:
    count = 0

    def dispatch(msg: Any) -> None:
        nonlocal count
        count += 1
        touch(msg)
        if full:
            msg.to_dict()

    parser = AmiParser()
    t0 = time.perf_counter()
    for chunk in chunks:
        for msg in parser.feed(chunk):
            dispatch(msg)
    return count, time.perf_counter() - t0


class _FakeTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class _NoopFactory:
    forgetable_actions = ("ping", "login")

    def __init__(self) -> None:
        self.awaiting_actions: list[Any] = []
        self.count = 0

    def dispatch(self, message: Any) -> None:
        self.count += 1
        touch(message)

    def connection_lost(self, exc: Any) -> None:
        pass


def run_panoramisk(chunks: list[bytes]) -> tuple[int, float]:
    proto = AMIProtocol()
    proto.connection_made(_FakeTransport())
    factory = _NoopFactory()
    proto.factory = factory
    # count the responses too (panoramisk drops responses nobody waits for; we count them as work done)
    handled = 0
    orig = proto.handle_message

    def handle_message(message: Any) -> None:
        nonlocal handled
        handled += 1
        orig(message)

    proto.handle_message = handle_message  # type: ignore[method-assign]
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.data_received(chunk)
    return handled, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=float, default=40.0, help="stream size in MiB")
    ap.add_argument("--rounds", type=int, default=3, help="best of N rounds")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # panoramisk logs at debug per message; keep logging cost out

    corpus, source = load_corpus()
    chunks, size = make_chunks(corpus, int(args.mib * (1 << 20)), args.seed)
    print(f"corpus: {source} ({len(corpus)} bytes), stream {size / (1 << 20):.1f} MiB in {len(chunks)} chunks")

    best_ours = best_pano = best_full = 0.0
    n_ours = n_pano = 0
    for _ in range(args.rounds):
        gc.collect()
        n_ours, t = run_ours(chunks)
        best_ours = max(best_ours, n_ours / t)
        gc.collect()
        n_full, t = run_ours(chunks, full=True)
        best_full = max(best_full, n_full / t)
        gc.collect()
        n_pano, t = run_panoramisk(chunks)
        best_pano = max(best_pano, n_pano / t)
    if n_ours != n_pano:
        print(f"WARNING: message counts differ: callswitch {n_ours}, panoramisk {n_pano}")
    ratio = best_ours / best_pano
    print(f"callswitch AmiParser: {n_ours} messages, {best_ours:,.0f} events/s")
    print(f"callswitch AmiParser, every header materialised: {best_full:,.0f} events/s "
          f"({best_full / best_pano:.2f}x)")
    print(f"panoramisk 1.4 reader: {n_pano} messages, {best_pano:,.0f} events/s")
    print(f"ratio: {ratio:.2f}x")
    print(json.dumps({
        "bench": "ami_reader",
        "reader_events_per_s": round(best_ours),
        "panoramisk_events_per_s": round(best_pano),
        "ratio": round(ratio, 2),
        "reader_full_events_per_s": round(best_full),
    }))


if __name__ == "__main__":
    main()
