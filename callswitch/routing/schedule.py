"""Weekly opening hours with exceptions, evaluated in the schedule's own time zone.

Openness is a function of the local wall-clock time: at an instant ``t`` the schedule is open
when the local time of ``t`` falls in one of the intervals of its local date (or in the part of
the previous date's overnight interval that runs past midnight). Hours listed under a date belong
to the date on which they *start*; an exception for a date replaces that date's weekly hours.

Across DST changes this means: an interval starting inside a skipped hour (spring forward) opens
at the moment the clocks jump; during a repeated hour (fall back) an interval is open on both passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from callswitch.routing.timespec import Interval

DEFAULT_HORIZON_DAYS = 400
_BATCH_DAYS = 7
_CACHE_DAYS = 4000
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, eq=False)
class Schedule:
    name: str
    tz: tzinfo
    weekly: tuple[tuple[Interval, ...], ...]  # 7 entries, Monday first
    exceptions: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)  # () = closed all day
    notes: Mapping[date, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError("weekly must have 7 entries")
        # candidate opening instants per local date: a pure function of the date, so cached
        object.__setattr__(self, "_candidate_cache", {})

    # -- queries --------------------------------------------------------------------
    def hours_on(self, day: date) -> tuple[Interval, ...]:
        """Intervals that start on local date ``day``."""
        special = self.exceptions.get(day)
        if special is not None:
            return special
        return self.weekly[day.weekday()]

    def ever_open(self) -> bool:
        return any(self.weekly) or any(self.exceptions.values())

    def is_open(self, at: datetime) -> bool:
        """Is the schedule open at the (timezone-aware) instant ``at``?"""
        local = at.astimezone(self.tz)
        day = local.date()
        minute = local.hour * 60 + local.minute
        for iv in self.hours_on(day):
            if iv.contains_same_day(minute):
                return True
        for iv in self.hours_on(day - _ONE_DAY):
            if iv.contains_next_day(minute):
                return True
        return False

    def next_open(self, at: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS) -> datetime | None:
        """The earliest instant ``>= at`` at which the schedule is open, or None within the horizon.

        Returns ``at`` itself when already open; otherwise an instant in UTC (a local time with
        ``fold=1`` would compare unequal to every other-zone datetime, see PEP 495).
        """
        if at.tzinfo is None:
            raise ValueError("next_open needs a timezone-aware datetime")
        if self.is_open(at):
            return at
        first_day = at.astimezone(self.tz).date() - _ONE_DAY
        last_day = first_day + timedelta(days=horizon_days + 1)
        batch_start = first_day
        while batch_start <= last_day:
            batch_end = batch_start + timedelta(days=_BATCH_DAYS)
            candidates: list[datetime] = []
            day = batch_start
            while day <= batch_end:  # one day of overlap so that candidates sort correctly
                candidates.extend(self._candidates(day))
                day += _ONE_DAY
            # Candidates from later days are all after the local midnight that starts batch_end.
            boundary = _local_instant(batch_end, 0, self.tz, fold=0)
            for candidate in sorted(candidates):
                if candidate < at:
                    continue
                if candidate >= boundary:
                    break
                if self.is_open(candidate):
                    return candidate
            batch_start = batch_end
        return None

    def next_close(self, at: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS) -> datetime | None:
        """The first minute boundary ``> at`` at which the schedule is closed (None if open all horizon).

        Coarse helper for displays ("open until ..."); checks minute by minute within the current
        opening, which is at most a day or two long.
        """
        t = _ceil_minute(at)
        if t == at:
            t += timedelta(minutes=1)
        limit = at + timedelta(days=min(horizon_days, 8))
        while t <= limit:
            if not self.is_open(t):
                return t
            t += timedelta(minutes=1)
        return None

    # -- internals ------------------------------------------------------------------
    def _candidates(self, day: date) -> list[datetime]:
        """Instants at which the schedule may go from closed to open, for local date ``day``."""
        cache: dict[date, list[datetime]] = self._candidate_cache  # type: ignore[attr-defined]
        found = cache.get(day)
        if found is None:
            if len(cache) > _CACHE_DAYS:
                cache.clear()
            found = cache[day] = self._compute_candidates(day)
        return found

    def _compute_candidates(self, day: date) -> list[datetime]:
        out: list[datetime] = []
        for iv in self.hours_on(day):
            out.append(_local_instant(day, iv.start, self.tz, fold=0))
            out.append(_local_instant(day, iv.start, self.tz, fold=1))
        transition = _transition_on(day, self.tz)
        if transition is not None:
            out.append(transition)
        return out


def _local_instant(day: date, minute: int, tz: tzinfo, fold: int) -> datetime:
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz, fold=fold)
    return local.astimezone(UTC)


def _transition_on(day: date, tz: tzinfo) -> datetime | None:
    """The UTC instant at which the zone's UTC offset changes during local date ``day``, if any."""
    lo = _local_instant(day, 0, tz, fold=0)
    hi = _local_instant(day + _ONE_DAY, 0, tz, fold=0)
    off_lo = lo.astimezone(tz).utcoffset()
    if off_lo == hi.astimezone(tz).utcoffset():
        return None
    lo_s, hi_s = 0, int((hi - lo).total_seconds())
    while hi_s - lo_s > 1:  # invariant: offset at lo_s is the old one, at hi_s the new one
        mid = (lo_s + hi_s) // 2
        if (lo + timedelta(seconds=mid)).astimezone(tz).utcoffset() == off_lo:
            lo_s = mid
        else:
            hi_s = mid
    return lo + timedelta(seconds=hi_s)


def _ceil_minute(at: datetime) -> datetime:
    floor = at.replace(second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(minutes=1)
