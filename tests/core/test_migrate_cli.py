"""Migrations (concurrency, checksums) and the CLI's exit codes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from callswitch import cli
from callswitch.db import migrate as migrate_mod
from callswitch.db.migrate import MigrationError, available_migrations, current_version, latest_version, migrate
from callswitch.testing.pbx import PbxSimulator
from tests.conftest import with_database


@pytest.fixture
async def empty_db(pg_server: str) -> AsyncIterator[str]:
    name = f"callswitch_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(pg_server, name)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_two_daemons_migrating_at_once_apply_each_migration_once(empty_db: str) -> None:
    conns = [await asyncpg.connect(empty_db) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(v for r in results for v in r)
        assert applied == [m.version for m in available_migrations()]
        assert await current_version(conns[0]) == latest_version()
        comment = await conns[0].fetchval("SELECT obj_description('callback_requests'::regclass)")
        assert comment and "callback request" in comment
    finally:
        for c in conns:
            await c.close()


async def test_every_column_is_commented_for_analysts(database_dsn: str) -> None:
    conn = await asyncpg.connect(database_dsn)
    try:
        missing = await conn.fetch(
            """SELECT c.table_name, c.column_name FROM information_schema.columns c
               WHERE c.table_schema = 'public'
                 AND c.table_name IN ('callback_requests', 'callback_events', 'call_legs')
                 AND col_description((quote_ident(c.table_name))::regclass, c.ordinal_position) IS NULL""")
    finally:
        await conn.close()
    assert [tuple(r) for r in missing] == []


async def test_edited_migration_is_detected(empty_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn)
        original = available_migrations()
        edited = [migrate_mod.Migration(m.version, m.name, m.sql + "\n-- edited") for m in original]
        monkeypatch.setattr(migrate_mod, "available_migrations", lambda: edited)
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn)
        monkeypatch.setattr(migrate_mod, "available_migrations", lambda: original[:1])
        with pytest.raises(MigrationError, match="newer release"):
            await migrate(conn)
    finally:
        await conn.close()


def test_invalid_config_exits_78_and_lists_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sites:\n  shop:\n    site_key: k\n")
    assert cli.main(["check", "-c", str(path)]) == cli.EX_CONFIG
    assert cli.main(["check", "--offline", "-c", str(path)]) == cli.EX_CONFIG
    assert cli.main(["serve", "-c", str(path)]) == cli.EX_CONFIG
    err = capsys.readouterr().err
    assert f"{path}:3:15: sites.shop.site_key: too short" in err


async def test_check_and_migrate_against_a_real_database(
    empty_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = PbxSimulator(users={"callswitch": "secret"}, endpoints=("carrier",))
    await sim.start()
    path = tmp_path / "ok.yaml"
    (tmp_path / "routing.yaml").write_text(
        'version: 1\ntrunks: {carrier: {dial: "PJSIP/{number}@carrier"}}\n'
        'destinations: {store: {members: ["+13125550100", PJSIP/201]}}\ndefault: store\n')
    path.write_text(f"database:\n  dsn: {empty_db}\nsites:\n  shop:\n    site_key: pk_shop_123456\n"
                    f"ami: {{port: {sim.port}, secret: secret}}\nrouting: {{file: routing.yaml}}\n")
    assert await asyncio.to_thread(cli.main, ["check", "-c", str(path)]) == 1
    out = capsys.readouterr().out
    assert "PASS  configuration" in out and "FAIL  postgres" in out and "callswitch migrate" in out
    assert await asyncio.to_thread(cli.main, ["migrate", "-c", str(path)]) == 0
    assert "applied migrations 0001" in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, ["check", "-c", str(path)]) == 1  # endpoint 201 is missing
    out = capsys.readouterr().out
    assert f"reachable, schema version {latest_version()}" in out
    assert "PASS  asterisk pbx login" in out and "Asterisk 22.10.1" in out
    assert "PASS  asterisk pbx dialplan callswitch-agent" in out
    assert "PASS  asterisk pbx endpoint carrier" in out
    assert "FAIL  asterisk pbx endpoint 201" in out and "Unable to retrieve endpoint 201" in out
    sim.endpoints.add("201")
    assert await asyncio.to_thread(cli.main, ["check", "-c", str(path)]) == 0
    sim.contexts.discard("callswitch-confirm")
    assert await asyncio.to_thread(cli.main, ["check", "-c", str(path)]) == 1
    assert "FAIL  asterisk pbx dialplan callswitch-confirm" in capsys.readouterr().out
    await sim.stop()
