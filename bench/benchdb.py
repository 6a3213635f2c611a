"""Postgres for the benchmarks: a server to measure on, and a scratch database per run."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from callswitch.pgcluster import LocalCluster


@contextmanager
def postgres_server(*env_names: str) -> Iterator[str]:
    """A server-level DSN: the first of ``env_names`` that is set, else a private durable cluster."""
    for name in env_names:
        if os.environ.get(name):
            yield os.environ[name]
            return
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="callswitch-bench-pg-")), durable=True)
    cluster.start()
    try:
        yield cluster.dsn()
    finally:
        cluster.destroy()


async def scratch_database(server_dsn: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """Create an empty database; returns its DSN and a coroutine function that drops it."""
    name = f"callswitch_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')

    async def drop() -> None:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    return server_dsn.rsplit("/", 1)[0] + "/" + name, drop
