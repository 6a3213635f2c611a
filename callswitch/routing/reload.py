"""Hot reload: hold the current :class:`Rules`, swap them atomically, keep the old ones on errors.

``RulesHolder.reload()`` loads and validates the whole file (and its tables) first and only then
replaces the rules, so a broken edit never takes effect; the error is kept in ``last_error`` for
readiness checks and metrics. Plans already computed are immutable and unaffected by a swap.
``watch_file`` polls the files' size, mtime and content hash and reloads on change.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from callswitch.aio import wait_event
from callswitch.callback import CallbackRequest
from callswitch.routing.engine import route
from callswitch.routing.load import check_file
from callswitch.routing.model import RoutePlan
from callswitch.routing.rules import Rules
from callswitch.yamlsrc import Problem


@dataclass(frozen=True)
class ReloadStatus:
    generation: int  # 0 before the first successful load
    last_loaded_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    warnings: int


class RulesHolder:
    """The live routing rules of the daemon."""

    def __init__(self, path: str | Path, clock: Callable[[], datetime] | None = None):
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rules: Rules | None = None
        self.generation = 0
        self.last_loaded_at: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.last_problems: tuple[Problem, ...] = ()

    @property
    def loaded(self) -> bool:
        return self._rules is not None

    @property
    def rules(self) -> Rules:
        if self._rules is None:
            raise RuntimeError(f"no routing rules loaded from {self.path}: {self.last_error or 'not loaded yet'}")
        return self._rules

    def reload(self) -> bool:
        """Load the file; on success swap the rules in and return True, else keep the old ones."""
        result = check_file(self.path)
        now = self._clock()
        self.last_problems = result.problems
        if result.rules is None:
            errors = result.errors or list(result.problems)
            self.last_error = "\n".join(str(p) for p in errors)
            self.last_error_at = now
            return False
        self._rules = result.rules  # a single reference assignment: readers see old or new
        self.generation += 1
        self.last_loaded_at = now
        self.last_error = None
        self.last_error_at = None
        return True

    def status(self) -> ReloadStatus:
        warnings = len(self._rules.warnings) if self._rules else 0
        return ReloadStatus(self.generation, self.last_loaded_at, self.last_error, self.last_error_at, warnings)

    def route(self, request: CallbackRequest, now: datetime, *, explain: bool = False) -> RoutePlan:
        return route(self.rules, request, now, explain=explain)

    def sources(self) -> tuple[Path, ...]:
        """The files that make up the current rules (the YAML file first)."""
        if self._rules is None:
            return (self.path,)
        return tuple(Path(s) for s in self._rules.sources)


Fingerprint = tuple[tuple[str, int, int, str], ...]


def fingerprint(paths: tuple[Path, ...]) -> Fingerprint:
    """(path, size, mtime_ns, sha256) per file; a missing file has size -1."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            out.append((str(path), -1, 0, ""))
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns, digest))
    return tuple(out)


def _content(fp: Fingerprint) -> tuple[tuple[str, int, str], ...]:
    return tuple((p, size, digest) for p, size, _mtime, digest in fp)


async def watch_file(
    holder: RulesHolder,
    interval: float = 2.0,
    *,
    stop: asyncio.Event | None = None,
    on_reload: Callable[[bool], None] | None = None,
) -> None:
    """Poll the holder's files every ``interval`` seconds and reload when their content changes.

    Cheap checks (size, mtime) run each time; the hash is taken only when those change, so a
    ``touch`` without a content change does not reload. Runs until ``stop`` is set or cancelled.
    ``on_reload(ok)`` is called after each reload attempt (for logs and metrics).
    """
    current = await asyncio.to_thread(fingerprint, holder.sources())
    while stop is None or not stop.is_set():
        if stop is None:
            await asyncio.sleep(interval)
        elif await wait_event(stop, interval):
            return
        cheap = _stat_only(holder.sources())
        if cheap == tuple((p, size, mtime) for p, size, mtime, _d in current):
            continue
        latest = await asyncio.to_thread(fingerprint, holder.sources())
        if _content(latest) == _content(current):
            current = latest
            continue
        ok = await asyncio.to_thread(holder.reload)
        # the file list may change with the rules (a table added or removed)
        current = await asyncio.to_thread(fingerprint, holder.sources())
        if not ok:
            current = latest
        if on_reload is not None:
            on_reload(ok)


def _stat_only(paths: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((str(path), -1, 0))
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)
