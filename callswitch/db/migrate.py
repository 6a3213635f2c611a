"""Numbered SQL migrations (``migrations/NNNN_name.sql``), applied in order.

Applied by ``callswitch migrate`` and at daemon start-up. A session advisory lock makes
two daemons starting together take turns; each migration runs in its own transaction
and is recorded in ``schema_migrations`` with a checksum, so an edited migration that
was already applied is detected instead of silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from callswitch.logs import get_logger

log = get_logger("callswitch.migrate")

# pg_advisory_lock key: "callswitch migrate"
MIGRATION_LOCK_KEY = 0x63616C6C_6D696772
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    pass


def available_migrations() -> list[Migration]:
    out = []
    for entry in resources.files("callswitch.db").joinpath("migrations").iterdir():
        m = _FILE_RE.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in out]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return out


def latest_version() -> int:
    migrations = available_migrations()
    return migrations[-1].version if migrations else 0


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_migrations IS 'Schema migrations applied to this database (managed by callswitch migrate).';
"""


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    return {r["version"]: r["checksum"] for r in rows}


async def current_version(conn: asyncpg.Connection) -> int:
    versions = await applied_versions(conn)
    return max(versions) if versions else 0


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        done = await applied_versions(conn)
        known = {m.version for m in available_migrations()}
        newer = [v for v in done if v not in known]
        if newer:
            raise MigrationError(
                f"the database has migration(s) {newer} that this version of callswitch does not know: "
                "it was migrated by a newer release"
            )
        for mig in available_migrations():
            if mig.version in done:
                if done[mig.version] != mig.checksum:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name}.sql was changed after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    mig.version,
                    mig.name,
                    mig.checksum,
                )
            log.info("migration_applied", version=mig.version, name=mig.name)
            applied_now.append(mig.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now
