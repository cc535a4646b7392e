"""The daily sync and weekly synthesis notes: ``memory/YYYY-MM-DD-sync.md`` and
``memory/YYYY-MM-DD-weekly.md`` in an agent's workspace.

Like the hourly notes (``stores.coordination.summary_notes``), and under the same lock file:
the daemon's text sits between two HTML comments that name it
(``<!-- openclaw-infra sync 2026-03-11 -->``), writing it again replaces that section in place
and never adds a second one, everything else
in the file (whatever the agent or the person wrote there) is kept byte for byte, and each
change lands atomically, so a crash leaves the old file or the new one. A new note is 0600; an
existing one keeps its mode. Only these two names are ever built: never ``MEMORY.md``.
OpenClaw indexes ``memory/*.md`` for the agent's own search; the daemon's ingest skips these
names (``stores.openclaw.notes.OWN_NOTE``) because the jobs add them to the memory store themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from filelock import FileLock

from stores.atomic import PRIVATE_DIR, PRIVATE_FILE, atomic_write_bytes
from stores.coordination.summary_notes import LOCK_NAME, LOCK_TIMEOUT

DigestKind = Literal["sync", "weekly"]
TITLES: dict[DigestKind, str] = {"sync": "Daily sync", "weekly": "Weekly synthesis"}
_ANY_MARKER = re.compile(r"<!-- openclaw-infra (?:end )?(?:sync|weekly) [0-9-]+ -->")


@dataclass(frozen=True)
class DigestWrite:
    path: Path
    #: The section existed and was replaced (else it was added).
    replaced: bool
    #: The file changed (writing the same text again does not touch it).
    changed: bool


def digest_path(workspace: Path, kind: DigestKind, day: date) -> Path:
    return workspace / "memory" / f"{day.isoformat()}-{kind}.md"


def write_digest(
    workspace: Path,
    kind: DigestKind,
    day: date,
    body: str,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> DigestWrite:
    """Add or replace the ``kind`` section of ``day``'s note in ``workspace``."""
    path = digest_path(workspace, kind, day)
    if not path.parent.exists():
        # The workspace must exist (it is OpenClaw's); its memory/ folder may not yet.
        path.parent.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    section = _section(kind, day, body)
    with FileLock(path.parent / LOCK_NAME, timeout=lock_timeout, mode=PRIVATE_FILE):
        try:
            before = path.read_bytes().decode("utf-8", "surrogateescape")
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            before, mode = f"# {TITLES[kind]} {day.isoformat()}\n\n", PRIVATE_FILE
        after, replaced = _put(before, kind, day, section)
        if after == before and path.exists():
            return DigestWrite(path, replaced, False)
        atomic_write_bytes(path, after.encode("utf-8", "surrogateescape"), mode=mode)
        return DigestWrite(path, replaced, True)


def read_digest(workspace: Path, kind: DigestKind, day: date) -> str | None:
    """The body of the daemon's section, or None if there is none."""
    try:
        text = digest_path(workspace, kind, day).read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    found = _find(text.splitlines(keepends=True), kind, day)
    if found is None:
        return None
    lines = text.splitlines(keepends=True)
    return "".join(lines[found[0] + 1 : found[1]]).strip()


def _markers(kind: DigestKind, day: date) -> tuple[str, str]:
    return (
        f"<!-- openclaw-infra {kind} {day.isoformat()} -->",
        f"<!-- openclaw-infra end {kind} {day.isoformat()} -->",
    )


def _section(kind: DigestKind, day: date, body: str) -> str:
    start, end = _markers(kind, day)
    text = "\n".join(_defused(line) for line in body.strip().splitlines())
    return f"{start}\n{text}\n{end}\n"


def _find(lines: list[str], kind: DigestKind, day: date) -> tuple[int, int] | None:
    """Line numbers of our start and end markers: a start followed by its own end before any
    other marker of ours. A lone marker is text like any other."""
    start, end = _markers(kind, day)
    for i, line in enumerate(lines):
        if line.strip() != start:
            continue
        for j in range(i + 1, len(lines)):
            if lines[j].strip() == end:
                return i, j
            if _ANY_MARKER.fullmatch(lines[j].strip()):
                break
    return None


def _put(text: str, kind: DigestKind, day: date, section: str) -> tuple[str, bool]:
    lines = text.splitlines(keepends=True)
    found = _find(lines, kind, day)
    if found is not None:
        i, j = found
        return "".join([*lines[:i], section, *lines[j + 1 :]]), True
    if text and not text.endswith("\n\n"):
        # The text before needs a blank line to end its paragraph: only whitespace is added.
        text += "\n" if text.endswith("\n") else "\n\n"
    return text + section, False


def _defused(line: str) -> str:
    """A body line that looks like one of our markers (a model may echo one) is escaped, so it
    can never open or close a section."""
    return line.replace("<!--", "&lt;!--", 1) if _ANY_MARKER.search(line) else line
