"""Durations as people write them (``90s``, ``5m``, ``1h30m``, ``2d``) and back.

Stdlib only: the daemon's settings and schedules use these, and so does ``infractl`` to check
``--since 7d`` before it asks the daemon anything.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

#: The shortest and longest duration anything accepts: below a millisecond a timedelta rounds to
#: nothing (a half-life of zero divides by zero), and a century is past any schedule, expiry or
#: age that means something, while far short of where date arithmetic overflows.
MIN_DURATION = timedelta(milliseconds=1)
MAX_DURATION = timedelta(days=36525)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | float | timedelta) -> timedelta:
    """'90s', '5m', '1h30m', '2d' or a number of seconds, from a millisecond to a century.
    Raises ValueError with the reason."""
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    elif isinstance(text, str):
        seconds = _duration_seconds(text.strip())
    else:
        raise ValueError(f"not a duration: {text!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    if seconds < MIN_DURATION.total_seconds():
        raise ValueError(f"duration shorter than a millisecond: {text!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration longer than 100 years: {text!r}")
    return timedelta(seconds=seconds)


def _duration_seconds(text: str) -> float:
    if len(text) > 64:
        raise ValueError(f"not a duration: {text[:20]!r}... ({len(text)} characters)")
    try:
        return float(text)
    except ValueError:
        pass
    compact = text.replace(" ", "").lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. '30s', '5m', '1h30m', '2d')")
    return sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)


def format_duration(value: timedelta) -> str:
    total = value.total_seconds()
    if total < 1:
        return f"{round(total * 1000)}ms"
    rest = round(total)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out) or "0s"
