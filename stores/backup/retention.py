"""Which backups to keep: the newest of each of the last N hours, days, weeks and months.

A pure function over (name, time, verified), so that it is tested with an injected ``now`` and
no files. Buckets are taken in UTC: an hour is a UTC hour, a day a UTC day, a week an ISO week of
the UTC calendar. Daylight-saving changes of the local zone therefore neither merge two hours
into one bucket nor leave an hour without one.

Rules, in the style of restic and borg: each rule walks the backups newest first and keeps the
first one it meets in each bucket until it has N buckets; a backup made by hand (``infractl
backup now``) is kept by the ``manual`` rule too, the newest N of them, so that two made a
minute apart are both there until that rule, which ``backup list`` names, lets one go.
Buckets with no backup are not counted, so a machine that was off for a month keeps its old
backups. A backup that failed verification fills no bucket. The newest verified backup is
always kept, whatever the counts, and so is a backup stamped later than ``now`` (the clock
went back; it cannot be judged).

A failed backup is removed only when a newer backup is verified: until then the newest readable
one (its manifest read, its archive there) is kept even if it failed, because a backup with one
damaged file still restores the others, which beats having none. Older failed ones go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stores.backup.config import Retention

Bucket = Callable[[datetime], str]

#: Rule name -> how a UTC time is put in a bucket of that rule, and the bucket's label.
BUCKETS: dict[str, Bucket] = {
    "hourly": lambda t: t.strftime("%Y-%m-%dT%H"),
    "daily": lambda t: t.strftime("%Y-%m-%d"),
    "weekly": lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2]),
    "monthly": lambda t: t.strftime("%Y-%m"),
}


@dataclass(frozen=True)
class Point:
    """One backup as retention sees it. ``verified``: True (passed), False (failed), None
    (never checked)."""

    name: str
    at: datetime
    verified: bool | None = None
    #: Its manifest was read and its archive is there: a restore can at least try it.
    readable: bool = True
    #: Made by hand (``infractl backup now``).
    manual: bool = False


@dataclass(frozen=True)
class Plan:
    #: name -> why it is kept ("daily 2026-03-10", "newest verified", ...)
    keep: dict[str, tuple[str, ...]]
    remove: tuple[str, ...]


def plan(points: Iterable[Point], retention: Retention, now: datetime) -> Plan:
    """What to keep and what to remove; ``now`` must be aware (any zone)."""
    ordered = sorted(points, key=lambda p: (_utc(p.at), p.name), reverse=True)
    reasons: dict[str, list[str]] = {p.name: [] for p in ordered}
    newest = next((p for p in ordered if p.verified), None)
    if newest is not None:
        reasons[newest.name].append("newest verified")
    fallback = _newest_readable_if_failed(ordered)
    if fallback is not None:
        reasons[fallback.name].append("newest readable (failed, none newer verified)")
    for p in ordered:
        if _utc(p.at) > _utc(now):
            reasons[p.name].append("newer than now")
    candidates = [p for p in ordered if p.verified is not False]
    for rule, count in _rules(retention):
        for point, label in _newest_per_bucket(candidates, BUCKETS[rule], count):
            reasons[point.name].append(f"{rule} {label}")
    manual = [p for p in candidates if p.manual][: retention.manual]
    for n, point in enumerate(manual, 1):
        reasons[point.name].append(f"manual {n} of {retention.manual}")
    keep = {name: tuple(why) for name, why in reasons.items() if why}
    remove = tuple(p.name for p in ordered if p.name not in keep)
    return Plan(keep=keep, remove=remove)


def _newest_readable_if_failed(newest_first: Sequence[Point]) -> Point | None:
    """The newest readable backup, when it failed verification: no newer backup is verified
    (the newest verified one would be readable and newer), so it is the best left to restore."""
    readable = next((p for p in newest_first if p.readable), None)
    return readable if readable is not None and readable.verified is False else None


def _rules(retention: Retention) -> list[tuple[str, int]]:
    return [
        ("hourly", retention.hourly),
        ("daily", retention.daily),
        ("weekly", retention.weekly),
        ("monthly", retention.monthly),
    ]


def _newest_per_bucket(
    newest_first: Sequence[Point], bucket: Bucket, count: int
) -> list[tuple[Point, str]]:
    kept: list[tuple[Point, str]] = []
    seen: set[str] = set()
    for point in newest_first:
        if len(seen) >= count:
            break
        label = bucket(_utc(point.at))
        if label not in seen:
            seen.add(label)
            kept.append((point, label))
    return kept


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"retention needs aware times, got {moment!r}")
    return moment.astimezone(UTC)
