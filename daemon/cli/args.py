"""What infractl checks before it asks the daemon: numbers in range, times, ids, names.

A bad value is a usage error (exit 2) that names the flag, said in one line, rather than the
daemon's refusal in protocol words (``memory.search: k: Input should be ...``, exit 10). The
bounds are the daemon's own (``tests/test_cli_args.py`` compares them), and the daemon still
checks everything: a script that talks to the socket directly gets its refusal there.
Stdlib only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any, NoReturn

from daemon.durations import parse_duration

AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
JOB_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SIGNAL_ID = re.compile(r"[0-9a-f]{12}")
BACKUP_NAME = re.compile(r"openclaw-infra-\d{8}T\d{6}Z(-\d{1,3})?")
RUN_STATUSES: tuple[str, ...] = (
    "running",
    "success",
    "failed",
    "timeout",
    "cancelled",
    "skipped",
    "missed",
    "abandoned",
)
#: Longest wait a client may ask of the daemon (the protocol's bound on ``trigger``'s timeout).
MAX_WAIT_S = 86400.0


class UsageError(Exception):
    """A bad invocation found after argparse: one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line that names the command and points at its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = "" if "see `" in message else f" (see `{self.prog} --help`)"
        self.exit(2, f"{self.prog}: {message}{hint}\n")


class bounded:
    """A whole number from ``low`` to ``high``, as the daemon takes it."""

    __name__ = "number"

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"must be from {self.low} to {self.high}, got {value}")
        return value


def seconds(text: str) -> float:
    """A wait in seconds: positive and at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_WAIT_S:.0f}")
    return value


def duration(text: str) -> str:
    """An age or half-life such as 30d; passed on as written."""
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def moment(text: str) -> str:
    """YYYY-MM-DD, an ISO date-time, or an age like 7d; passed on as written."""
    try:
        when(text, datetime.now().astimezone())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date, time or age: {text!r} (use 2026-11-01, 2026-11-01T09:00 or 7d)"
        ) from None
    return text


def expiry(text: str) -> str:
    """A signal's expiry: never, an age, a date or a time."""
    if text.strip().lower() == "never":
        return text
    return moment(text)


def when(text: str, now: datetime) -> datetime:
    """The moment a --since or --until names, in this machine's zone (the daemon reads it in
    its own zone; the order of two moments is the same in either)."""
    zone = now.tzinfo
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), time(), zone)
    if re.match(r"\d{4}-\d{2}-\d{2}[T ]", text):
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return now - parse_duration(text)


def pattern(regex: re.Pattern[str], words: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not regex.fullmatch(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {words}")
        return text

    parse.__name__ = words
    return parse


agent_id = pattern(AGENT_ID, "an agent id (lower-case letters, digits, '-', '_')")
job_name = pattern(JOB_NAME, "a job name (see `infractl jobs`)")
signal_id = pattern(SIGNAL_ID, "a signal id (12 hex digits, see `infractl signal list`)")
backup_name = pattern(
    BACKUP_NAME, "a backup name like openclaw-infra-20260310T033000Z (see `infractl backup list`)"
)


def text(limit: int, what: str = "text") -> Callable[[str], str]:
    """Free text the daemon takes up to ``limit`` characters of, and not blank."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"the {what} is blank")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(
                f"the {what} is {len(value)} characters, more than the {limit} allowed"
            )
        return value

    parse.__name__ = what
    return parse


def backup_ref(text: str) -> str:
    """A backup's name, or ``latest``."""
    return text if text == "latest" else backup_name(text)


def ordered(since: str | None, until: str | None, flags: tuple[str, str]) -> None:
    """Refuse a range that ends before it begins."""
    if since is None or until is None:
        return
    now = datetime.now().astimezone()
    if when(since, now) > when(until, now):
        first, second = flags
        raise UsageError(
            f"{first} {since} is after {second} {until}: nothing can match"
            f" (an age counts back from now: {first} 7d {second} 1d is the week up to a day ago)"
        )


def is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()
