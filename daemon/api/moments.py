"""Times and durations as a client writes them (``2026-11-01``, ``2026-11-01T09:00``, ``7d``),
bounded here, at the edge, so that no value reaches date arithmetic that would overflow.

A moment must fall between 1900 and 9000 (UTC): wide enough for "everything" and "forever",
far enough from year 1 and year 9999 that a time-zone shift or an ISO round trip stays in range.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from daemon.durations import parse_duration
from daemon.errors import BadRequest

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_EXAMPLES = "use 2026-11-01, 2026-11-01T09:00 or 7d"


def parse_moment(text: str, name: str, zone: tzinfo, now: datetime) -> datetime:
    """YYYY-MM-DD (midnight in ``zone``), an ISO date-time (``zone`` if it has none), or an age
    before ``now`` ('7d'). Raises ``BadRequest`` naming ``name``."""
    try:
        moment = _moment(text.strip(), zone, now)
    except ValueError as exc:
        if str(exc).startswith("duration"):  # an age, but out of bounds: say which bound
            raise BadRequest(f"{name}: {exc}") from None
        raise BadRequest(f"{name}: not a date, time or age: {text[:64]!r} ({_EXAMPLES})") from None
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise BadRequest(f"{name}: {text[:64]!r} is outside the years 1900 to 9000")
    return moment


def _moment(text: str, zone: tzinfo, now: datetime) -> datetime:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), time(), zone).astimezone(UTC)
    if re.match(r"\d{4}-\d{2}-\d{2}[T ]", text) and len(text) <= 64:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)
    return (now - parse_duration(text)).astimezone(UTC)


def parse_span(text: str, name: str) -> timedelta:
    """A duration ('30d'), a millisecond to a century; ``BadRequest`` naming ``name``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None
