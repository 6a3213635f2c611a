"""Hot reload: atomic swap, old rules kept on errors, status for readiness, file watching."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from callswitch.routing import RulesHolder

from .helpers import req

GOOD = "version: 1\ndestinations:\n  a: {members: [PJSIP/1]}\n  b: {members: [PJSIP/2]}\ndefault: TARGET\n"
T0 = datetime(2025, 3, 31, 8, tzinfo=UTC)


def test_reload_swaps_and_keeps_old_rules_on_errors(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD.replace("TARGET", "a"))
    clock = iter([T0, T0.replace(minute=1), T0.replace(minute=2), T0.replace(minute=3)])
    holder = RulesHolder(path, clock=lambda: next(clock))
    assert holder.reload() is True
    first = holder.rules
    plan = holder.route(req(), T0)
    assert plan.destination is not None and plan.destination.name == "a"
    status = holder.status()
    assert (status.generation, status.last_loaded_at, status.last_error) == (1, T0, None)

    path.write_text(GOOD.replace("TARGET", "nowhere"))  # invalid: unknown destination
    assert holder.reload() is False
    assert holder.rules is first  # old rules still in use
    status = holder.status()
    assert status.generation == 1
    assert status.last_error is not None and "default: destination 'nowhere' is not defined" in status.last_error
    assert status.last_error_at == T0.replace(minute=1)

    path.write_text(GOOD.replace("TARGET", "b"))
    assert holder.reload() is True
    assert holder.generation == 2 and holder.last_error is None
    assert holder.route(req(), T0).destination.name == "b"  # type: ignore[union-attr]
    assert plan.destination.name == "a"  # plans computed earlier are unchanged


def test_holder_without_rules_reports_why(tmp_path):
    holder = RulesHolder(tmp_path / "missing.yaml")
    assert holder.reload() is False
    assert not holder.loaded
    assert "cannot read" in (holder.last_error or "")
    try:
        holder.rules  # noqa: B018
    except RuntimeError as exc:
        assert "no routing rules loaded" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected RuntimeError")


async def test_watch_file_reloads_on_change_including_tables(tmp_path):
    from callswitch.routing import watch_file

    (tmp_path / "t.csv").write_text("postal_code,store\n10115,a\n")
    path = tmp_path / "routing.yaml"
    path.write_text(
        "version: 1\ndestinations:\n  a: {members: [PJSIP/1]}\n  b: {members: [PJSIP/2]}\n"
        "tables:\n  zips: {file: t.csv, key: postal_code}\n"
        "rules:\n  - route: {table: zips, column: store}\ndefault: b\n"
    )
    holder = RulesHolder(path)
    assert holder.reload()
    results: list[bool] = []
    stop = asyncio.Event()
    task = asyncio.create_task(watch_file(holder, 0.01, stop=stop, on_reload=results.append))
    await asyncio.sleep(0.05)
    (tmp_path / "t.csv").write_text("postal_code,store\n10115,b\n")
    for _ in range(200):
        if results:
            break
        await asyncio.sleep(0.01)
    assert results == [True]
    assert holder.generation == 2
    assert holder.route(req(postal_code="10115"), T0).destination.name == "b"  # type: ignore[union-attr]
    (tmp_path / "t.csv").write_text("postal_code,store\n10115,c\n")  # 'c' is not a destination
    for _ in range(200):
        if len(results) > 1:
            break
        await asyncio.sleep(0.01)
    assert results == [True, False]
    assert holder.generation == 2 and "store 'c' is not a destination" in (holder.last_error or "")
    stop.set()
    await asyncio.wait_for(task, 1)
