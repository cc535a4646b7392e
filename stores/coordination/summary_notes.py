"""The hourly summary note of an agent's day: ``memory/YYYY-MM-DD-hourly.md`` in its workspace.

OpenClaw indexes ``memory/*.md`` for the agent's own memory search, so the daemon hands its
summaries back this way. One section per hour, between two HTML comments that carry the hour's
UTC start (invisible when rendered, exact to parse); the heading shows the local time and
offset, so the two 02:00 hours of a "fall back" night stay distinct. Rewriting an hour replaces
its section in place and never adds a second one; sections stay in time order. An hour belongs to
the file of the local date it starts on (23:00-00:00 goes to the earlier day). Everything outside
the marked sections (the title, anything the agent or the person wrote) is kept byte for byte.

Each change is read-modify-write under a lock file in ``memory/`` (so two writers never lose
each other's sections) and lands with ``atomic_write_bytes``: a crash leaves the old file or the
new one, never half of one. A new note is created 0600: it summarises private conversations and
OpenClaw runs as the same user, so it can still read it; an existing note keeps its mode, which
its owner may have chosen. ``MEMORY.md`` is never written: only ``*-hourly.md`` names are built.

At the end of a day ``roll_up`` adds the day summary and, with ``compact``, drops hourly sections
once they are older than ``CompactionConfig.keep_hourly_for``, but only hours the day summary
already covered: its marker records the last hour it was written from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from filelock import FileLock

from stores.atomic import PRIVATE_DIR, PRIVATE_FILE, atomic_write_bytes
from stores.hours import HOUR, HourWindow

LOCK_NAME = ".openclaw-infra-notes.lock"
LOCK_TIMEOUT = 30.0
DAY_HEADING = "## Day summary"
_MARKER = re.compile(
    r"<!-- openclaw-infra (?P<end>end )?(?P<kind>hour|day) (?P<key>[0-9TZ:-]+)"
    r"(?: through (?P<through>[0-9TZ:-]+))? -->"
)
_ORIGIN = re.compile(r"^_Summary: .*_$")
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Kind = Literal["hour", "day"]


class SummaryKind(StrEnum):
    THREE_PASS = "three-pass"  # noqa: S105 - passes of prompting, not a password
    SINGLE_PASS = "single-pass"  # noqa: S105 - passes of prompting, not a password
    EXTRACTIVE = "extractive"


@dataclass(frozen=True)
class Origin:
    """Who wrote a summary: the LLM (and how), or the extractive fallback (and why)."""

    kind: SummaryKind
    #: ``no LLM configured``, ``LLM failed: timeout``, a model name: one short line.
    detail: str | None = None

    def line(self) -> str:
        what = "extractive" if self.kind is SummaryKind.EXTRACTIVE else f"LLM, {self.kind}"
        detail = " ".join((self.detail or "").split()).replace("_", " ")[:120]
        return f"_Summary: {what}{f' ({detail})' if detail else ''}_"


@dataclass(frozen=True)
class CompactionConfig:
    #: Hourly sections are folded into the day summary (and removed) once this old.
    keep_hourly_for: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.keep_hourly_for < timedelta(0):
            raise ValueError("keep_hourly_for must not be negative")


@dataclass(frozen=True)
class HourNote:
    """An hour's section as the file holds it."""

    start: datetime
    heading: str
    origin: str
    body: str


@dataclass(frozen=True)
class NoteWrite:
    path: Path
    #: The section existed and was replaced (else it was added).
    replaced: bool
    #: The file changed (rewriting an identical section does not touch it).
    changed: bool


@dataclass(frozen=True)
class Compaction:
    path: Path
    removed: int
    kept: int


@dataclass(frozen=True)
class _Section:
    kind: Kind
    key: str
    text: str
    through: str | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (0 if self.kind == "hour" else 1, self.key)


_Segment = _Section | str  # a str is text outside our sections, kept as it is


def note_path(workspace: Path, day: date) -> Path:
    return workspace / "memory" / f"{day.isoformat()}-hourly.md"


def write_hour(
    workspace: Path,
    window: HourWindow,
    body: str,
    origin: Origin,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> NoteWrite:
    """Add or replace ``window``'s section in the note of the local day it starts on."""
    key = _utc(window.utc_start)
    section = _Section("hour", key, _block("hour", key, f"## {window.label}", origin, body))
    path = note_path(workspace, window.day)
    outcome: list[bool] = []

    def change(segments: list[_Segment]) -> list[_Segment]:
        put, replaced = _put(segments, section)
        outcome.append(replaced)
        return put

    changed = _rewrite(path, window.day, change, lock_timeout)
    return NoteWrite(path, outcome[0], changed)


def roll_up(
    workspace: Path,
    day: date,
    daily_text: str,
    origin: Origin,
    *,
    keep_hours: timedelta,
    now: datetime,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Compaction:
    """Add or replace the day summary, then drop hourly sections older than ``keep_hours``.
    The summary is taken to cover every hour the file holds now."""
    path = note_path(workspace, day)
    counts: list[tuple[int, int]] = []

    def change(segments: list[_Segment]) -> list[_Segment]:
        hours = [s.key for s in segments if isinstance(s, _Section) and s.kind == "hour"]
        through = max([*hours, _through(segments) or ""]) or None
        text = _block("day", day.isoformat(), DAY_HEADING, origin, daily_text, through=through)
        section = _Section("day", day.isoformat(), text, through)
        kept = _expire(_put(segments, section)[0], keep_hours, now)
        counts.append((len(hours), _hour_count(kept)))
        return kept

    _rewrite(path, day, change, lock_timeout)
    return Compaction(path, counts[0][0] - counts[0][1], counts[0][1])


def compact(
    workspace: Path,
    day: date,
    keep_hours: timedelta,
    now: datetime,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Compaction:
    """Drop the hourly sections of ``day`` that are older than ``keep_hours`` and covered by its
    day summary; a note without one keeps all its hours. A missing note is left missing."""
    path = note_path(workspace, day)
    counts: list[tuple[int, int]] = []

    def change(segments: list[_Segment]) -> list[_Segment]:
        kept = _expire(segments, keep_hours, now)
        counts.append((_hour_count(segments), _hour_count(kept)))
        return kept

    if not path.exists():
        return Compaction(path, 0, 0)
    _rewrite(path, day, change, lock_timeout)
    return Compaction(path, counts[0][0] - counts[0][1], counts[0][1])


def read_hours(path: Path) -> list[HourNote]:
    """The hour sections of a note, in file order; [] if there is no note."""
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return []
    hours = [s for s in _parse(text) if isinstance(s, _Section) and s.kind == "hour"]
    return [HourNote(_parse_utc(s.key), *_parts(s)) for s in hours]


def read_day_summary(path: Path) -> str | None:
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    days = [s for s in _parse(text) if isinstance(s, _Section) and s.kind == "day"]
    return _parts(days[0])[2] if days else None


# --- the file ---------------------------------------------------------------------------


def _rewrite(
    path: Path,
    day: date,
    change: Callable[[list[_Segment]], list[_Segment]],
    lock_timeout: float,
) -> bool:
    """Apply ``change`` to the note's segments under the lock; write only if the text changed."""
    if not path.parent.exists():
        # The workspace must exist (it is OpenClaw's); its memory/ folder may not yet.
        path.parent.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    with FileLock(path.parent / LOCK_NAME, timeout=lock_timeout, mode=PRIVATE_FILE):
        try:
            before = path.read_bytes().decode("utf-8", "surrogateescape")
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            before, mode = f"# Hourly summaries {day.isoformat()}\n\n", PRIVATE_FILE
        after = "".join(s.text if isinstance(s, _Section) else s for s in change(_parse(before)))
        if after == before and path.exists():
            return False
        atomic_write_bytes(path, after.encode("utf-8", "surrogateescape"), mode=mode)
        return True


def _parse(text: str) -> list[_Segment]:
    """Sections where a start marker is followed by its own end marker before any other marker;
    a marker without its partner is text like any other (kept, never taken as a section)."""
    lines = text.splitlines(keepends=True)
    segments: list[_Segment] = []
    foreign: list[str] = []
    i = 0
    while i < len(lines):
        end = _section_end(lines, i)
        if end is None:
            foreign.append(lines[i])
            i += 1
            continue
        if end + 1 < len(lines) and not lines[end + 1].strip():
            end += 1  # the blank line after a section is the section's
        if foreign:
            segments.append("".join(foreign))
            foreign = []
        start = _MARKER.fullmatch(lines[i].strip())
        assert start is not None  # _section_end has matched it
        kind: Kind = "hour" if start["kind"] == "hour" else "day"
        segments.append(_Section(kind, start["key"], "".join(lines[i : end + 1]), start["through"]))
        i = end + 1
    if foreign:
        segments.append("".join(foreign))
    return segments


def _section_end(lines: list[str], i: int) -> int | None:
    start = _MARKER.fullmatch(lines[i].strip())
    if start is None or start["end"]:
        return None
    for j in range(i + 1, len(lines)):
        other = _MARKER.fullmatch(lines[j].strip())
        if other is None:
            continue
        same = (other["kind"], other["key"]) == (start["kind"], start["key"])
        return j if other["end"] and same and other["through"] is None else None
    return None


def _put(segments: list[_Segment], section: _Section) -> tuple[list[_Segment], bool]:
    """``segments`` with ``section`` replacing its namesake, else added: at the end of the file
    if it comes after all of ours (the note grows at the end, past anything written since),
    otherwise right after the last of ours before it, or before the first of ours."""
    ours = [(i, s) for i, s in enumerate(segments) if isinstance(s, _Section)]
    for i, s in ours:
        if (s.kind, s.key) == (section.kind, section.key):
            return [*segments[:i], section, *segments[i + 1 :]], True
    before = [i for i, s in ours if s.order < section.order]
    after = [i for i, s in ours if s.order > section.order]
    at = len(segments) if not after else before[-1] + 1 if before else after[0]
    head = list(segments[:at])
    if head and isinstance(head[-1], str) and not head[-1].endswith("\n\n"):
        # The text before needs a blank line to end its paragraph: only whitespace is added.
        head[-1] += "\n" if head[-1].endswith("\n") else "\n\n"
    return [*head, section, *segments[at:]], False


def _expire(segments: list[_Segment], keep: timedelta, now: datetime) -> list[_Segment]:
    through = _through(segments)
    if through is None:
        return segments
    cutoff = now.astimezone(UTC) - keep
    return [s for s in segments if not _expired(s, through, cutoff)]


def _expired(segment: _Segment, through: str, cutoff: datetime) -> bool:
    if not isinstance(segment, _Section) or segment.kind != "hour" or segment.key > through:
        return False
    return _parse_utc(segment.key) + HOUR <= cutoff


def _through(segments: list[_Segment]) -> str | None:
    days = [s for s in segments if isinstance(s, _Section) and s.kind == "day"]
    return days[0].through if days else None


def _hour_count(segments: list[_Segment]) -> int:
    return sum(1 for s in segments if isinstance(s, _Section) and s.kind == "hour")


# --- a section's text -------------------------------------------------------------------


def _block(
    kind: Kind, key: str, heading: str, origin: Origin, body: str, *, through: str | None = None
) -> str:
    opening = f"<!-- openclaw-infra {kind} {key}{f' through {through}' if through else ''} -->"
    lines = [opening, heading, "", origin.line(), ""]
    text = "\n".join(_defused(line) for line in body.strip().splitlines())
    if text:
        lines += [text, ""]
    lines += [f"<!-- openclaw-infra end {kind} {key} -->", "", ""]
    return "\n".join(lines)


def _defused(line: str) -> str:
    """A body line that looks like one of our markers (a model may echo one) is escaped, so it
    can never open or close a section."""
    return line.replace("<!--", "&lt;!--", 1) if _MARKER.search(line) else line


def _parts(section: _Section) -> tuple[str, str, str]:
    """The heading, the origin line and the body of a section."""
    lines = section.text.splitlines()
    end = max(i for i, line in enumerate(lines) if _MARKER.fullmatch(line.strip()))
    inner = lines[1:end]
    heading = inner[0] if inner else ""
    rest = inner[1:]
    origin = next((line for line in rest if _ORIGIN.match(line)), "")
    body_lines = rest[rest.index(origin) + 1 :] if origin else rest
    return heading, origin, "\n".join(body_lines).strip()


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_UTC_FORMAT)


def _parse_utc(text: str) -> datetime:
    return datetime.strptime(text, _UTC_FORMAT).replace(tzinfo=UTC)
