"""sd_notify over a real datagram socket, as systemd provides it."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from callswitch.ops.sdnotify import SystemdNotifier


def listen(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock, path


def test_ready_status_and_stopping_reach_the_socket(tmp_path: Path) -> None:
    sock, path = listen(tmp_path)
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready("ready")
    assert sock.recv(4096) == b"READY=1\nSTATUS=ready"
    n.status("degraded: Asterisk pbx not logged in")
    assert sock.recv(4096) == b"STATUS=degraded: Asterisk pbx not logged in"
    n.stopping()
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
    sock.close()


def test_outside_systemd_nothing_is_sent() -> None:
    n = SystemdNotifier({})
    assert not n.enabled and n.notify("READY=1") is False


async def test_watchdog_beats_from_the_event_loop(tmp_path: Path) -> None:
    sock, path = listen(tmp_path)
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_interval == 0.05
    n.start_watchdog()
    try:
        beats = [await asyncio.to_thread(sock.recv, 64) for _ in range(3)]
    finally:
        n.stop_watchdog()
        sock.close()
    assert beats == [b"WATCHDOG=1"] * 3


def test_watchdog_for_another_pid_is_ignored() -> None:
    n = SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None
