"""Job schedules as the user writes them ("every 5m", "0 3 * * *") and what follows from them.

A schedule knows its fire times, which is all that catch-up and staleness need; both are pure
functions of a schedule, an anchor and an injected ``now``, so they are tested without sleeping.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.durations import format_duration, parse_duration

_MICROSECOND = timedelta(microseconds=1)


class ScheduleKind(StrEnum):
    CRON = "cron"
    INTERVAL = "interval"


@dataclass(frozen=True)
class Schedule:
    kind: ScheduleKind
    cron: str | None = None
    interval: timedelta | None = None

    def __str__(self) -> str:
        if self.kind is ScheduleKind.CRON:
            return str(self.cron)
        assert self.interval is not None
        return f"every {format_duration(self.interval)}"

    def trigger(self, tz: tzinfo, *, anchor: datetime | None = None) -> BaseTrigger:
        """The APScheduler trigger; an interval keeps the phase of ``anchor`` when given."""
        if self.kind is ScheduleKind.CRON:
            return CronTrigger.from_crontab(self.cron, timezone=tz)
        assert self.interval is not None
        return IntervalTrigger(
            seconds=self.interval.total_seconds(), start_date=anchor, timezone=tz
        )

    def fire_times_after(
        self, anchor: datetime, until: datetime, tz: tzinfo, *, limit: int = 1000
    ) -> list[datetime]:
        """Fire times in (anchor, until], oldest first; only the newest ``limit`` of them, so a
        minutely job after a month away costs no more than one after an hour."""
        if self.kind is ScheduleKind.INTERVAL:
            return self._interval_fires(anchor, until, limit)
        assert self.cron is not None
        trigger = _cron_trigger(self.cron, tz)
        head = _cron_fires(trigger, anchor, until, limit)
        if len(head) < limit:
            return head
        # More than `limit`: start again close enough to `until` to find just the newest ones.
        span = head[-1] - anchor
        tail = _cron_fires(trigger, max(head[-1], until - span), until, 2 * limit + 1)
        return (head + tail)[-limit:]

    def _interval_fires(self, anchor: datetime, until: datetime, limit: int) -> list[datetime]:
        assert self.interval is not None
        count = math.floor((until - anchor) / self.interval)
        first = max(1, count - limit + 1)
        return [anchor + k * self.interval for k in range(first, count + 1)]

    def nominal_interval(self, around: datetime, tz: tzinfo) -> timedelta:
        """The gap between runs near ``around``: for cron, between the next two fire times."""
        if self.kind is ScheduleKind.INTERVAL:
            assert self.interval is not None
            return self.interval
        assert self.cron is not None
        key = (self.cron, tz)
        cached = _GAPS.get(key)
        if cached is not None and cached[0] <= around < cached[1]:
            return cached[2]
        trigger = _cron_trigger(self.cron, tz)
        first: datetime = trigger.get_next_fire_time(None, around)
        second: datetime = trigger.get_next_fire_time(None, first + _MICROSECOND)
        _GAPS[key] = (around, first, second - first)
        return second - first


#: (cron, zone) -> (from, until, gap): the next two fire times, so the gap between them, stay
#: the same for any ``around`` in [from, until). ``status`` asks for every job's interval on
#: each call, and a cron fire time costs APScheduler a fraction of a millisecond.
_GAPS: dict[tuple[str, tzinfo], tuple[datetime, datetime, timedelta]] = {}


@functools.lru_cache(maxsize=64)
def _cron_trigger(cron: str, tz: tzinfo) -> CronTrigger:
    """For computing fire times only: the scheduler gets a trigger of its own per job."""
    return CronTrigger.from_crontab(cron, timezone=tz)


def _cron_fires(
    trigger: BaseTrigger, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    fires: list[datetime] = []
    cursor = after
    while len(fires) < limit:
        nxt: datetime | None = trigger.get_next_fire_time(None, cursor + _MICROSECOND)
        if nxt is None or nxt > until:
            break
        fires.append(nxt)
        cursor = nxt
    return fires


_EVERY = re.compile(r"^every\s+(.+)$", re.IGNORECASE)


def parse_schedule(value: Any) -> Schedule:
    """'every 5m' (or 'interval 5m'), or a 5-field crontab line; ValueError says what is wrong."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("schedule must be a non-empty string")
    text = " ".join(value.split())
    match = _EVERY.match(text) or re.match(r"^interval\s+(.+)$", text, re.IGNORECASE)
    if match:
        return Schedule(ScheduleKind.INTERVAL, interval=parse_duration(match.group(1)))
    if text.lower().startswith("cron "):
        text = text[5:].strip()
    if len(text.split()) != 5:
        raise ValueError(
            f"not a schedule: {value!r} (use a 5-field cron line like '0 * * * *'"
            " or an interval like 'every 5m')"
        )
    try:
        CronTrigger.from_crontab(text)
    except ValueError as exc:
        raise ValueError(f"not a valid cron line: {value!r} ({exc})") from None
    return Schedule(ScheduleKind.CRON, cron=text)
