"""Schedules: DST changes, overnight hours, exceptions, and next-opening properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callswitch.routing.schedule import Schedule
from callswitch.routing.timespec import Interval, parse_days, parse_interval, parse_intervals

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def weekly(spec: dict[str, str]) -> tuple[tuple[Interval, ...], ...]:
    days: list[tuple[Interval, ...]] = [()] * 7
    for key, hours in spec.items():
        for d in parse_days(key):
            days[d] = parse_intervals(hours)
    return tuple(days)


def local(tz, *args) -> datetime:
    return datetime(*args, tzinfo=tz)


def test_parse_helpers():
    assert parse_interval("22:00-02:00") == Interval(1320, 120)
    assert parse_interval("22:00-00:00") == Interval(1320, 1440)
    assert parse_days("fri-mon") == (4, 5, 6, 0)
    assert parse_days("weekend") == (5, 6)
    with pytest.raises(ValueError, match="is not a time of day"):
        parse_interval("09:00-25:00")
    with pytest.raises(ValueError, match="is empty"):
        parse_interval("09:00-09:00")
    with pytest.raises(ValueError, match="overlaps"):
        parse_intervals("09:00-12:00, 11:00-13:00")
    with pytest.raises(ValueError, match="YAML read this as the number"):
        parse_intervals(570)  # YAML 1.1 reads 9:30 as 570


def test_berlin_opening_hours_follow_dst():
    s = Schedule("store", BERLIN, weekly({"mon-sun": "09:00-18:00"}))
    # 2025-03-30 is the last Sunday of March: 09:00 local is 07:00 UTC after the change
    assert s.is_open(datetime(2025, 3, 30, 7, 0, tzinfo=UTC))
    assert not s.is_open(datetime(2025, 3, 30, 6, 59, tzinfo=UTC))
    # the day before it was 08:00 UTC
    assert not s.is_open(datetime(2025, 3, 29, 7, 30, tzinfo=UTC))
    assert s.next_open(datetime(2025, 3, 29, 20, tzinfo=UTC)) == datetime(2025, 3, 30, 7, tzinfo=UTC)
    # 2025-10-26, the last Sunday of October: 09:00 local is 08:00 UTC again
    assert s.next_open(datetime(2025, 10, 25, 20, tzinfo=UTC)) == datetime(2025, 10, 26, 8, tzinfo=UTC)


def test_interval_starting_in_the_skipped_hour_opens_when_clocks_jump():
    s = Schedule("night", BERLIN, weekly({"daily": "02:30-04:00"}))
    # 02:00 CET -> 03:00 CEST at 01:00 UTC; 02:30 does not exist that night
    assert s.next_open(datetime(2025, 3, 30, 0, 0, tzinfo=UTC)) == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


def test_repeated_hour_is_open_on_both_passes():
    s = Schedule("night", BERLIN, weekly({"daily": "02:15-02:45"}))
    first = local(BERLIN, 2025, 10, 26, 2, 20, 0)  # fold=0: CEST, 00:20 UTC
    second = first.replace(fold=1)  # CET, 01:20 UTC
    assert s.is_open(first) and s.is_open(second)
    between = datetime(2025, 10, 26, 0, 50, tzinfo=UTC)  # 02:50 CEST: closed until the second pass
    assert not s.is_open(between)
    # the clocks go back to 02:00 CET at 01:00 UTC; 02:15 CET (01:15 UTC) is the next opening
    assert s.next_open(between) == datetime(2025, 10, 26, 1, 15, tzinfo=UTC)


def test_new_york_overnight_across_midnight_and_dst():
    s = Schedule("desk", NEW_YORK, weekly({"mon-fri": "22:00-02:00"}))
    assert s.is_open(local(NEW_YORK, 2025, 3, 7, 23, 0))  # Friday 23:00
    assert s.is_open(local(NEW_YORK, 2025, 3, 8, 1, 59))  # Saturday 01:59, Friday's interval
    assert not s.is_open(local(NEW_YORK, 2025, 3, 8, 2, 0))
    assert not s.is_open(local(NEW_YORK, 2025, 3, 8, 23, 0))  # Saturday evening is not listed
    assert not s.is_open(local(NEW_YORK, 2025, 3, 10, 1, 0))  # Monday 01:00 (Sunday has no hours)
    # US DST starts 2025-03-09 02:00: Monday 22:00 EDT is 02:00 UTC on Tuesday
    assert s.next_open(local(NEW_YORK, 2025, 3, 8, 12, 0)) == datetime(2025, 3, 11, 2, 0, tzinfo=UTC)


def test_exceptions_replace_the_weekly_hours_of_a_date():
    exceptions = {
        date(2025, 12, 24): parse_intervals("09:00-12:00"),
        date(2025, 12, 25): (),
        date(2025, 12, 28): parse_intervals("10:00-11:00"),  # a Sunday, normally closed
    }
    s = Schedule("store", BERLIN, weekly({"mon-sat": "09:00-18:00"}), exceptions)
    assert s.is_open(local(BERLIN, 2025, 12, 24, 11, 59))
    assert not s.is_open(local(BERLIN, 2025, 12, 24, 12, 0))
    assert not s.is_open(local(BERLIN, 2025, 12, 25, 10, 0))
    assert s.next_open(local(BERLIN, 2025, 12, 24, 13, 0)) == local(BERLIN, 2025, 12, 26, 9, 0)
    assert s.is_open(local(BERLIN, 2025, 12, 28, 10, 30))


def test_next_open_returns_now_when_open_and_none_when_never():
    s = Schedule("s", BERLIN, weekly({"mon": "09:00-10:00"}))
    now = local(BERLIN, 2025, 3, 31, 9, 30)
    assert s.next_open(now) is now
    closed_for_long = {date(2025, 1, 1) + timedelta(days=n): () for n in range(60)}
    t = Schedule("t", BERLIN, weekly({"mon": "09:00-10:00"}), closed_for_long)
    assert t.next_open(local(BERLIN, 2025, 1, 1, 0, 0), horizon_days=30) is None
    assert t.next_open(local(BERLIN, 2025, 1, 1, 0, 0)) == local(BERLIN, 2025, 3, 3, 9, 0)


# -- properties -------------------------------------------------------------------------------------

ZONES = [BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]  # Lord Howe: 30-minute DST


@st.composite
def schedules(draw):
    tz = draw(st.sampled_from(ZONES))
    days = []
    for _ in range(7):
        if draw(st.booleans()):
            days.append(())
            continue
        start = draw(st.integers(0, 47)) * 30
        length = draw(st.integers(1, 47)) * 30
        end = (start + length) % 1440 or 1440
        days.append((Interval(start, end),))
    # overlaps of overnight intervals with the next day are harmless for the evaluator
    if not any(days):
        days[draw(st.integers(0, 6))] = (Interval(draw(st.integers(0, 1380)), 1440),)
    exceptions = {}
    for _ in range(draw(st.integers(0, 3))):
        d = date(2025, 3, 20) + timedelta(days=draw(st.integers(0, 240)))
        exceptions[d] = draw(st.sampled_from([(), (Interval(120, 180),), (Interval(1380, 60),)]))
    return Schedule("p", tz, tuple(days), exceptions)


instants = st.datetimes(
    min_value=datetime(2025, 3, 20), max_value=datetime(2025, 11, 10), timezones=st.just(UTC)
).map(lambda d: d.replace(second=d.second, microsecond=0))


@settings(max_examples=150, deadline=None)
@given(schedules(), instants)
def test_next_open_is_open_not_early_and_earliest(schedule, now):
    result = schedule.next_open(now)
    assert result is not None  # every generated schedule opens at least weekly
    assert result >= now
    assert schedule.is_open(result)
    # no earlier open minute between now and the result
    t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert not schedule.is_open(now) or result == now
    while t < result:
        assert not schedule.is_open(t), f"open at {t} before {result}"
        t += timedelta(minutes=1)
