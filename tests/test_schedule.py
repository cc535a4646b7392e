from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.durations import format_duration, parse_duration
from daemon.schedule import ScheduleKind, parse_schedule
from daemon.scheduler import CatchupAction, plan_catchup

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("250ms", 0.25),
        ("45", 45),
        ("1w", 604800),
        (" 1h 5m ", 3900),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "5 parsecs",
        "-5m",
        "0s",
        "1h-",
        "m5",
        "nan",
        "1e-7",
        "1e300",
        "99999999d",
        "9" * 100,
    ],
)
def test_bad_durations_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_round_trips_through_its_text() -> None:
    for text in ("30s", "5m", "1h30m", "2d3h"):
        assert format_duration(parse_duration(text)) == text


def test_schedules_parse_both_kinds() -> None:
    every = parse_schedule("every 5m")
    assert every.kind is ScheduleKind.INTERVAL
    assert every.interval == timedelta(minutes=5)
    assert str(every) == "every 5m"
    cron = parse_schedule("cron  0 3 * * *")
    assert cron.kind is ScheduleKind.CRON
    assert str(cron) == "0 3 * * *"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("whenever", "not a schedule"),
        ("61 * * * *", "not a valid cron line"),
        ("* * * *", "not a schedule"),
        ("every never", "duration"),
        ("", "non-empty"),
    ],
)
def test_bad_schedules_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_schedule(text)


def test_cron_fire_times_follow_wall_clock_across_dst() -> None:
    # Europe/Berlin left summer time on 2026-10-25: the night had 25 hours.
    daily = parse_schedule("0 3 * * *")
    anchor = datetime(2026, 10, 23, 3, 0, tzinfo=BERLIN)
    fires = daily.fire_times_after(anchor, datetime(2026, 10, 27, 12, 0, tzinfo=BERLIN), BERLIN)
    assert [f.astimezone(BERLIN).hour for f in fires] == [3, 3, 3, 3]
    utc = [f.astimezone(UTC) for f in fires]
    gaps = {b - a for a, b in itertools.pairwise(utc)}
    assert gaps == {timedelta(hours=24), timedelta(hours=25)}


def test_cron_nominal_interval_is_the_gap_between_fires() -> None:
    hourly = parse_schedule("0 * * * *")
    around = datetime(2026, 11, 24, 10, 17, tzinfo=UTC)
    assert hourly.nominal_interval(around, UTC) == timedelta(hours=1)


def test_interval_fire_times_keep_the_anchor_phase() -> None:
    every = parse_schedule("every 10m")
    anchor = datetime(2026, 11, 24, 10, 3, tzinfo=UTC)
    fires = every.fire_times_after(anchor, anchor + timedelta(minutes=35), UTC)
    assert [f.minute for f in fires] == [13, 23, 33]


def test_catchup_runs_the_latest_missed_fire_once_within_grace() -> None:
    hourly = parse_schedule("0 * * * *")
    anchor = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # last run before the machine slept
    now = datetime(2026, 11, 24, 9, 20, tzinfo=UTC)
    plan = plan_catchup(hourly, anchor, now, timedelta(hours=6), UTC)
    assert plan.action is CatchupAction.RUN
    assert plan.scheduled_for == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert plan.missed_runs == 3


def test_catchup_beyond_grace_is_recorded_missed() -> None:
    daily = parse_schedule("0 3 * * *")
    anchor = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # today's 03:00 is 9 hours old
    plan = plan_catchup(daily, anchor, now, timedelta(hours=6), UTC)
    assert plan.action is CatchupAction.MISSED
    assert plan.scheduled_for == datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    assert plan.missed_runs == 4


def test_nothing_to_catch_up_when_no_fire_time_passed() -> None:
    hourly = parse_schedule("0 * * * *")
    anchor = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    plan = plan_catchup(hourly, anchor, anchor + timedelta(minutes=59), timedelta(hours=6), UTC)
    assert plan.action is CatchupAction.NONE


def test_a_fire_time_equal_to_now_is_caught_up() -> None:
    every = parse_schedule("every 1h")
    anchor = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    plan = plan_catchup(every, anchor, anchor + timedelta(hours=1), timedelta(hours=6), UTC)
    assert plan.action is CatchupAction.RUN
    assert plan.scheduled_for == anchor + timedelta(hours=1)


def test_catchup_over_a_long_outage_stays_bounded() -> None:
    minutely = parse_schedule("* * * * *")
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime(2026, 11, 24, tzinfo=UTC)
    plan = plan_catchup(minutely, anchor, now, timedelta(hours=6), UTC)
    assert plan.action is CatchupAction.RUN
    assert plan.scheduled_for == now
