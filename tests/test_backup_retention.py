"""Retention: a pure function over (name, time, verified), tested with an injected ``now``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stores.backup.config import Retention
from stores.backup.retention import Point, plan

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def hourly_points(hours: int, end: datetime = NOW, verified: bool | None = True) -> list[Point]:
    return [Point(f"b{i:04d}", end - timedelta(hours=i), verified) for i in range(hours)]


def test_defaults_keep_24_hourly_7_daily_4_weekly_6_monthly() -> None:
    points = hourly_points(24 * 200)  # every hour for 200 days
    decided = plan(points, Retention(), NOW)
    kept = {p.name: p.at for p in points if p.name in decided.keep}
    by_rule: dict[str, int] = {}
    for reasons in decided.keep.values():
        for reason in reasons:
            rule = reason.split()[0]
            by_rule[rule] = by_rule.get(rule, 0) + 1
    assert by_rule == {"newest": 1, "hourly": 24, "daily": 7, "weekly": 4, "monthly": 6}
    # Overlaps (the newest backup is in every rule) leave fewer distinct backups.
    assert len(kept) == len(decided.keep) < 24 + 7 + 4 + 6
    assert set(decided.remove) == {p.name for p in points} - set(kept)
    # The monthly ones are the newest of each of the last six months.
    monthly = sorted(
        (kept[n] for n, r in decided.keep.items() if any(x.startswith("monthly") for x in r)),
        reverse=True,
    )
    assert [m.strftime("%Y-%m") for m in monthly] == [
        "2026-03",
        "2026-02",
        "2026-01",
        "2025-12",
        "2025-11",
        "2025-10",
    ]
    assert all(
        m == max(p.at for p in points if p.at.strftime("%Y-%m") == m.strftime("%Y-%m"))
        for m in monthly
    )


def test_the_newest_of_each_bucket_is_kept_and_empty_buckets_do_not_count() -> None:
    # Three backups on one day, then a gap of 20 days, then two backups on one day.
    day1 = NOW - timedelta(days=25)
    points = [
        Point("a1", day1.replace(hour=1), True),
        Point("a2", day1.replace(hour=5), True),
        Point("a3", day1.replace(hour=9), True),
        Point("b1", NOW.replace(hour=2), True),
        Point("b2", NOW.replace(hour=3), True),
    ]
    decided = plan(points, Retention(hourly=0, daily=2, weekly=0, monthly=0), NOW)
    assert set(decided.keep) == {"b2", "a3"}  # the machine was off: old days still count
    assert set(decided.remove) == {"a1", "a2", "b1"}


FALLBACK = "newest readable (failed, none newer verified)"


def test_the_newest_verified_backup_is_never_removed() -> None:
    points = [
        Point("old-verified", NOW - timedelta(days=40), True),
        Point("failed-1", NOW - timedelta(days=2), False),
        Point("failed-2", NOW - timedelta(hours=1), False),
    ]
    decided = plan(points, Retention(0, 0, 0, 0), NOW)
    assert decided.keep == {"old-verified": ("newest verified",), "failed-2": (FALLBACK,)}
    assert decided.remove == ("failed-1",)


def test_failed_backups_go_only_once_a_newer_one_is_verified() -> None:
    points = [
        Point("failed-old", NOW - timedelta(days=3), False),
        Point("verified", NOW - timedelta(days=2), True),
        Point("failed-new", NOW - timedelta(hours=1), False),
    ]
    decided = plan(points, Retention(0, 0, 0, 0), NOW)
    assert decided.keep == {"verified": ("newest verified",), "failed-new": (FALLBACK,)}
    assert decided.remove == ("failed-old",)
    newer = [*points, Point("verified-now", NOW, True)]
    decided = plan(newer, Retention(0, 0, 0, 0), NOW)
    assert decided.keep == {"verified-now": ("newest verified",)}
    assert set(decided.remove) == {"failed-old", "verified", "failed-new"}


def test_with_nothing_verified_the_newest_readable_failed_backup_is_kept() -> None:
    points = [
        Point("failed-1", NOW - timedelta(days=2), False),
        Point("failed-2", NOW - timedelta(days=1), False),
        Point("unreadable", NOW - timedelta(hours=1), False, readable=False),
    ]
    decided = plan(points, Retention(), NOW)
    assert decided.keep == {"failed-2": (FALLBACK,)}
    assert decided.remove == ("unreadable", "failed-1")
    nothing_readable = [replace(p, readable=False) for p in points]
    assert plan(nothing_readable, Retention(), NOW).keep == {}


def test_failed_backups_fill_no_bucket_and_unchecked_ones_do() -> None:
    points = [
        Point("unchecked", NOW - timedelta(hours=27), None),
        Point("failed", NOW - timedelta(hours=26), False),
        Point("ok", NOW - timedelta(days=2), True),
        Point("ok-now", NOW, True),
    ]
    decided = plan(points, Retention(hourly=0, daily=2, weekly=0, monthly=0), NOW)
    assert decided.remove == ("failed", "ok")
    assert decided.keep["unchecked"] == ("daily 2026-03-30",)  # not the newer failed one
    assert decided.keep["ok-now"] == ("newest verified", "daily 2026-03-31")


def test_zero_everywhere_keeps_only_the_newest_verified() -> None:
    decided = plan(hourly_points(50), Retention(0, 0, 0, 0), NOW)
    assert list(decided.keep) == ["b0000"]
    assert len(decided.remove) == 49


def test_nothing_verified_and_no_rules_removes_everything_it_judges() -> None:
    decided = plan(hourly_points(3, verified=None), Retention(0, 0, 0, 0), NOW)
    assert decided.keep == {}
    assert len(decided.remove) == 3


def test_a_backup_from_the_future_is_kept() -> None:
    points = [*hourly_points(3), Point("ahead", NOW + timedelta(days=3), True)]
    decided = plan(points, Retention(hourly=1, daily=0, weekly=0, monthly=0), NOW)
    assert "newer than now" in decided.keep["ahead"]
    # It is the newest verified too, and it takes the newest hourly bucket.
    assert decided.keep["ahead"] == ("newest verified", "newer than now", "hourly 2026-04-03T12")


def test_buckets_are_utc_so_a_dst_change_neither_merges_nor_drops_hours() -> None:
    """Europe/Berlin goes from +01:00 to +02:00 at 02:00 local on 2026-03-29: local 02:xx does
    not exist, and in autumn 02:xx happens twice. In UTC every hour is one bucket."""
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    points = [
        Point(f"h{i}", (start + timedelta(hours=i)).astimezone(berlin), True) for i in range(6)
    ]
    now = start + timedelta(hours=6)
    decided = plan(points, Retention(hourly=6, daily=0, weekly=0, monthly=0), now)
    assert len(decided.keep) == 6
    assert decided.remove == ()
    autumn = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # Berlin: 03:00 CEST -> 02:00 CET
    points = [
        Point(f"a{i}", (autumn + timedelta(hours=i)).astimezone(berlin), True) for i in range(4)
    ]
    local_hours = [p.at.strftime("%H") for p in points]
    assert local_hours == ["02", "02", "03", "04"]  # two distinct hours share a local label
    decided = plan(
        points, Retention(hourly=4, daily=0, weekly=0, monthly=0), autumn + timedelta(hours=4)
    )
    assert len(decided.keep) == 4


def test_days_and_weeks_are_utc_days_and_iso_weeks() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # 23:30 UTC on Sunday 2026-03-29 is Monday morning in Tokyo, still Sunday (week 13) in UTC.
    late_sunday = datetime(2026, 3, 29, 23, 30, tzinfo=UTC).astimezone(tokyo)
    monday = datetime(2026, 3, 30, 1, 0, tzinfo=UTC)
    points = [Point("sunday", late_sunday, True), Point("monday", monday, True)]
    decided = plan(points, Retention(hourly=0, daily=0, weekly=2, monthly=0), NOW)
    assert decided.keep["sunday"] == ("weekly 2026-W13",)
    assert decided.keep["monday"] == ("newest verified", "weekly 2026-W14")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan([Point("x", datetime(2026, 1, 1), True)], Retention(), NOW)
