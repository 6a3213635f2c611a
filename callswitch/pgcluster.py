"""A private, throwaway Postgres cluster (initdb + pg_ctl) for the demo and the tests.

Used only when no DSN is configured. It listens on 127.0.0.1 on a free port and on a
Unix socket inside its own directory, with trust authentication, and is stopped on exit.
When run as root (containers, CI), the server runs as the unprivileged ``postgres`` user,
because Postgres refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def find_pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise ClusterError(
        f"{name} not found: install the PostgreSQL server (Debian: apt-get install postgresql) "
        "or set a DSN (CALLSWITCH_DATABASE_DSN / CALLSWITCH_TEST_DSN)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    directory: Path
    port: int = 0
    # False (tests): fsync and synchronous commit off, for speed. True: a committed row survives a crash.
    durable: bool = False

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def logfile(self) -> Path:
        return self.directory / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_user(self) -> tuple[list[str], int | None, int | None]:
        if os.geteuid() != 0:
            return [], None, None
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterError("running as root and there is no 'postgres' user to run the server as") from None
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            raise ClusterError("running as root and neither runuser nor setpriv is available")
        if runuser.endswith("runuser"):
            return [runuser, "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid
        return [runuser, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"], pw.pw_uid, pw.pw_gid

    def _run(self, args: list[str], timeout: float = 120) -> None:
        prefix, _, _ = self._as_user()
        proc = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise ClusterError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _, uid, gid = self._as_user()
        if uid is not None and gid is not None:
            os.chown(self.directory, uid, gid)
        if not self.initialized():
            self._run([find_pg_bin("initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                       "-E", "UTF8", "--no-sync", "--no-instructions"])
        if not self.port:
            self.port = free_port()
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([find_pg_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                   "-o", options, "-w", "-t", "60", "start"])

    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run([find_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop"])

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
