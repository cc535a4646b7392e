"""Hours of the daemon's local clock, as windows of real time that never overlap or leave gaps.

A window starts where the local clock shows a full hour and ends where it next shows one. In a
zone whose changes move the clock by whole hours (nearly all) that is one hour of real time,
``[start, start + 1h)``: a "fall back" day has two windows labelled ``02:00`` (one per UTC
offset) and a "spring forward" day has none for the hour the clock skips. A zone that moves its
clock by half an hour (Lord Howe Island) gets one window of 30 or 90 minutes at the change, so
the windows still cover time exactly once. A window stores its ends as local times with their
UTC offset: an exact instant that also knows its label, without needing the zone again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

HOUR = timedelta(hours=1)
EN_DASH = "\u2013"  # a range of times, as typeset
#: Every zone's UTC offset today is a whole number of quarter hours, so a local full hour always
#: falls on a UTC quarter hour.
_STEP = timedelta(minutes=15)
#: A local full hour is never further than this from the previous one (90 minutes at most).
_SEARCH = 10


class HourWindow(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: Local wall-clock time with the UTC offset in force at the start.
    start: AwareDatetime
    #: Local wall-clock time with the UTC offset in force at the end.
    end: AwareDatetime

    @field_validator("start", "end")
    @classmethod
    def _fixed_offset(cls, value: datetime) -> datetime:
        """A zone object becomes its offset at that instant: same instant, self-contained."""
        offset = value.utcoffset()
        assert offset is not None  # AwareDatetime has checked
        return value.replace(tzinfo=timezone(offset)) if value.tzinfo is not UTC else value

    @model_validator(mode="after")
    def _ordered(self) -> HourWindow:
        if self.end <= self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self

    @property
    def utc_start(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def utc_end(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def day(self) -> date:
        """The local date the window starts on: 23:00-00:00 belongs to the day it starts."""
        return self.start.date()

    @property
    def offset_label(self) -> str:
        """``UTC+01:00``; ``UTC+00:00`` for UTC itself, so every label has the same shape."""
        offset = self.start.utcoffset() or timedelta(0)
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"

    @property
    def label(self) -> str:
        """``14:00-15:00 (UTC+01:00)`` with an en dash; both ends on the start's offset, so the
        window before a clock change reads ``01:00-02:00 (UTC+01:00)``, not ``01:00-03:00``."""
        end = self.end.astimezone(self.start.tzinfo)
        return f"{self.start:%H:%M}{EN_DASH}{end:%H:%M} ({self.offset_label})"

    @property
    def timestamps(self) -> tuple[float, float]:
        """``(start, end)`` as POSIX seconds, the memory store's time column."""
        return self.start.timestamp(), self.end.timestamp()

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def __str__(self) -> str:
        return f"{self.day.isoformat()} {self.label}"


def hour_window_at(when: datetime, tz: tzinfo) -> HourWindow:
    """The window holding the instant ``when``."""
    start = _full_hour_at_or_before(_aware(when), tz)
    end = _next_full_hour(start, tz)
    return HourWindow(start=start.astimezone(tz), end=end.astimezone(tz))


def previous_hour(now: datetime, tz: tzinfo) -> HourWindow:
    """The last window that has ended by ``now`` (at 15:00:00 sharp: 14:00-15:00)."""
    current = hour_window_at(now, tz)
    return hour_window_at(current.utc_start - timedelta(microseconds=1), tz)


def hour_windows(now: datetime, tz: tzinfo, count: int) -> list[HourWindow]:
    """The last ``count`` windows that have ended by ``now``, oldest first."""
    if count < 0:
        raise ValueError("count must not be negative")
    windows: list[HourWindow] = []
    if count:
        windows.append(previous_hour(now, tz))
    while len(windows) < count:
        windows.append(hour_window_at(windows[-1].utc_start - timedelta(microseconds=1), tz))
    return windows[::-1]


def windows_between(since: datetime, now: datetime, tz: tzinfo) -> list[HourWindow]:
    """Every window that has ended by ``now`` and ends after ``since``, oldest first: what a
    catch-up after ``since`` (the end of the last hour done) has to do."""
    since = _aware(since)
    windows: list[HourWindow] = []
    window = previous_hour(now, tz)
    while window.end > since:
        windows.append(window)
        window = hour_window_at(window.utc_start - timedelta(microseconds=1), tz)
    return windows[::-1]


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no time zone: an hour cannot be placed")
    return when.astimezone(UTC)


def _is_full_hour(when: datetime, tz: tzinfo) -> bool:
    local = when.astimezone(tz)
    return local.minute == 0 and local.second == 0 and local.microsecond == 0


def _full_hour_at_or_before(when: datetime, tz: tzinfo) -> datetime:
    local = when.astimezone(tz)
    # On the clock's current offset: right everywhere except just after a half-hour change.
    guess = when - timedelta(
        minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )
    if _is_full_hour(guess, tz):
        return guess
    quarter = when.replace(minute=when.minute - when.minute % 15, second=0, microsecond=0)
    for step in range(_SEARCH):
        candidate = quarter - step * _STEP
        if _is_full_hour(candidate, tz):
            return candidate
    return guess  # an offset of odd minutes (historical local mean time): its own hours


def _next_full_hour(start: datetime, tz: tzinfo) -> datetime:
    for step in range(1, _SEARCH):
        candidate = start + step * _STEP
        if _is_full_hour(candidate, tz):
            return candidate
    return start + HOUR
