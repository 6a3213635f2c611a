"""Parsing of the small time notations used in routing files: ``09:00``, ``22:00-02:00``, ``mon-fri``.

Pure functions; every parser raises :class:`ValueError` with a message meant for an admin.
Times are minutes after local midnight (0..1440). An interval whose end is not after its
start runs across midnight into the next day (``22:00-02:00``); ``24:00`` is allowed as an end.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_DAY_ALIASES = {
    "weekdays": tuple(range(5)),
    "weekend": (5, 6),
    "daily": tuple(range(7)),
}


@dataclass(frozen=True)
class Interval:
    """Opening interval on one local day, in minutes after midnight.

    ``end`` is in ``1..1440`` and may be smaller than ``start``: the interval then runs past
    midnight and ends at ``end`` on the following day.
    """

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    @property
    def length(self) -> int:
        return self.end - self.start if self.end > self.start else self.end + MINUTES_PER_DAY - self.start

    def contains_same_day(self, minute: int) -> bool:
        """Is ``minute`` of the interval's own day inside it?"""
        if self.end > self.start:
            return self.start <= minute < self.end
        return minute >= self.start

    def contains_next_day(self, minute: int) -> bool:
        """Is ``minute`` of the following day inside the part that spills past midnight?"""
        return self.end <= self.start and minute < self.end

    def __str__(self) -> str:
        return f"{format_clock(self.start)}-{format_clock(self.end)}"


def format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_clock(text: str, *, allow_24: bool = False) -> int:
    """``"09:30"`` -> 570. ``"24:00"`` only when ``allow_24`` (as the end of an interval)."""
    m = _CLOCK_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time of day (write HH:MM, e.g. 09:00)")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if allow_24 and hours == 24 and minutes == 0:
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day (00:00 to 23:59{', or 24:00 as an end' if allow_24 else ''})")
    return hours * 60 + minutes


def parse_interval(text: str) -> Interval:
    """``"09:00-18:00"``; ``"22:00-02:00"`` runs across midnight; ``"00:00-24:00"`` is all day."""
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not a time range (write HH:MM-HH:MM, e.g. 09:00-18:00)")
    start = parse_clock(parts[0])
    end = parse_clock(parts[1], allow_24=True)
    if end == 0:
        end = MINUTES_PER_DAY
    if start == end:
        raise ValueError(f"{text!r} is empty: start and end are the same time")
    return Interval(start, end)


def parse_intervals(value: object) -> tuple[Interval, ...]:
    """A string ``"09:00-12:00, 13:00-18:00"`` / ``"closed"``, or a list of range strings.

    Raises ValueError for bad times and for intervals of the same day that overlap.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError("expected time ranges like '09:00-18:00' or 'closed'")
    if isinstance(value, int):
        raise ValueError(
            f"YAML read this as the number {value}; write time ranges as 'HH:MM-HH:MM' (e.g. '09:00-18:00')"
        )
    if isinstance(value, str):
        if value.strip().lower() == "closed":
            return ()
        items = [p for p in (s.strip() for s in value.split(",")) if p]
    elif isinstance(value, list):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"expected a time range like '09:00-18:00', got {item!r}")
            items.append(item.strip())
    else:
        raise ValueError("expected time ranges like '09:00-18:00' or 'closed'")
    if not items:
        raise ValueError("no time ranges given (write 'closed' for a closed day)")
    intervals = sorted((parse_interval(i) for i in items), key=lambda iv: iv.start)
    check_no_overlap([(iv.start, iv.start + iv.length, str(iv)) for iv in intervals], period=None)
    return tuple(intervals)


def check_no_overlap(spans: list[tuple[int, int, str]], period: int | None) -> None:
    """Raise ValueError naming the first two spans ``(start, end, label)`` that overlap.

    With ``period`` the spans are on a circle of that length (a week), so the last span may
    overlap the first one after wrapping around.
    """
    ordered = sorted(spans)
    for (_s1, e1, l1), (s2, _e2, l2) in itertools.pairwise(ordered):
        if s2 < e1:
            raise ValueError(f"{l1} overlaps {l2}")
    if period is not None and len(ordered) > 1:
        first, last = ordered[0], ordered[-1]
        if last[1] > first[0] + period:
            raise ValueError(f"{last[2]} overlaps {first[2]}")
    if period is not None and len(ordered) == 1 and ordered[0][1] - ordered[0][0] > period:
        raise ValueError(f"{ordered[0][2]} is longer than a week")


def parse_days(text: str) -> tuple[int, ...]:
    """``"mon-fri"``, ``"sat,sun"``, ``"fri-mon"`` (wraps), ``"weekdays"``, ``"weekend"``, ``"daily"``.

    Returns weekday numbers (Monday = 0) in the order given, without duplicates.
    """
    out: list[int] = []
    for raw in text.split(","):
        part = raw.strip().lower()
        if not part:
            continue
        if part in _DAY_ALIASES:
            days: tuple[int, ...] = _DAY_ALIASES[part]
        elif "-" in part:
            a, _, b = part.partition("-")
            first, last = _day(a.strip(), text), _day(b.strip(), text)
            days = tuple((first + i) % 7 for i in range((last - first) % 7 + 1))
        else:
            days = (_day(part, text),)
        for d in days:
            if d in out:
                raise ValueError(f"{DAY_NAMES[d]} is named twice in {text!r}")
            out.append(d)
    if not out:
        raise ValueError("no days given")
    return tuple(out)


def _day(name: str, whole: str) -> int:
    if name in DAY_NAMES:
        return DAY_NAMES.index(name)
    if name in DAY_NAMES_LONG:
        return DAY_NAMES_LONG.index(name)
    raise ValueError(f"{name!r} in {whole!r} is not a day (use mon, tue, wed, thu, fri, sat, sun)")


DAY_NAMES_LONG = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
