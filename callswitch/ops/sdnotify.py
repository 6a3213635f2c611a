"""sd_notify(3) over the socket systemd gives us, without a dependency.

``READY=1`` once the service is up (or explicitly degraded), ``STATUS=...`` lines for
``systemctl status``, ``STOPPING=1`` when draining, and ``WATCHDOG=1`` from the event loop
every half ``WATCHDOG_USEC`` so a blocked loop gets the daemon restarted. Outside systemd
(no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket

from callswitch.logs import get_logger

log = get_logger("callswitch.sdnotify")


class SystemdNotifier:
    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace
            address = "\0" + address[1:]
        self.address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval = (
            int(usec) / 2_000_000 if usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines; False outside systemd or if the socket is gone."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(payload)
            return True
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc))
            return False

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def start_watchdog(self) -> None:
        if self.watchdog_interval is None or self.address is None or self._task is not None:
            return

        async def beat() -> None:
            assert self.watchdog_interval is not None
            while True:
                self.notify("WATCHDOG=1")
                await asyncio.sleep(self.watchdog_interval)

        self._task = asyncio.get_running_loop().create_task(beat())

    def stop_watchdog(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
