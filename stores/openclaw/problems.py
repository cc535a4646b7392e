"""What reading OpenClaw's files reports besides what it read.

OpenClaw's files are written by another program, may be half-written, damaged or of a newer
format. A reader never raises on them: it returns what it could read, a ``Problem`` for each
place it could not, and counts of what it left out on purpose (``SkipReason``), so that a run
can say "read 812 turns, skipped 40 tool calls, 1 malformed line at sessions/x.jsonl:17".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ProblemKind(StrEnum):
    BAD_CONFIG = "bad_config"
    BAD_AGENT_ID = "bad_agent_id"
    UNREADABLE = "unreadable"
    BAD_INDEX = "bad_index"
    MALFORMED_LINE = "malformed_line"
    INVALID_UTF8 = "invalid_utf8"
    OVERSIZED_LINE = "oversized_line"
    #: A turn longer than a memory should hold: its head and tail are kept, the cut marked.
    LONG_TURN = "long_turn"
    #: A note that is not text (a binary file named .md); not indexed.
    NOT_TEXT = "not_text"
    UNKNOWN_TYPE = "unknown_type"
    BAD_ENTRY = "bad_entry"
    FILE_REPLACED = "file_replaced"
    CORRUPT_DATABASE = "corrupt_database"
    OLD_SCHEMA = "old_schema"
    BAD_ROW = "bad_row"
    DATABASE_BUSY = "database_busy"
    #: Reading one source failed in a way no rule above foresaw; the others were read.
    SOURCE_FAILED = "source_failed"


#: What a person can do about each kind of problem.
HINTS = {
    ProblemKind.BAD_CONFIG: "fix openclaw.json (`openclaw doctor` checks it); agents are"
    " still found from their folders",
    ProblemKind.BAD_AGENT_ID: "not a folder OpenClaw writes; move it out of agents/ if it"
    " is not an agent",
    ProblemKind.UNREADABLE: "the daemon cannot read it: check that it exists and that the"
    " user running infrad may read it",
    ProblemKind.BAD_INDEX: "sessions.json is damaged: session keys are unknown until"
    " OpenClaw writes it again; the transcripts are still read",
    ProblemKind.MALFORMED_LINE: "a line that is not JSON (often a crash mid-write); that line"
    " is skipped, the rest is read",
    ProblemKind.INVALID_UTF8: "bytes that are not UTF-8; they are read as U+FFFD",
    ProblemKind.OVERSIZED_LINE: "too large to be one entry; skipped",
    ProblemKind.LONG_TURN: "a very long message; its start and end are kept in memory",
    ProblemKind.NOT_TEXT: "not a text file; rename it if it is not a note",
    ProblemKind.UNKNOWN_TYPE: "written by a newer OpenClaw than this daemon knows; upgrade"
    " openclaw-infra",
    ProblemKind.BAD_ENTRY: "an entry without an id or a time; skipped",
    ProblemKind.FILE_REPLACED: "the file was replaced or cut shorter; it was read again from"
    " its start, and nothing was stored twice",
    ProblemKind.CORRUPT_DATABASE: "OpenClaw's database is damaged: run `openclaw doctor`;"
    " the daemon reads it again on every run",
    ProblemKind.OLD_SCHEMA: "a database layout this daemon does not know; upgrade openclaw-infra",
    ProblemKind.BAD_ROW: "a row that does not decode; skipped, the rest is read",
    ProblemKind.DATABASE_BUSY: "OpenClaw held a lock too long; read again on the next run",
    ProblemKind.SOURCE_FAILED: "reading it failed unexpectedly; the other sources were read."
    " Please report it with `infractl runs --job ingest --json`",
}


@dataclass(frozen=True)
class Problem:
    """``where`` is ``path:line`` for files, ``db#session:seq`` for a database row."""

    where: str
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.detail}"

    @property
    def source(self) -> str:
        """The file or database the problem is in, without the line or row."""
        where = self.where.split("#", 1)[0]
        head, _, tail = where.rpartition(":")
        return head if head and tail.isdigit() else where


def by_source(problems: Iterable[Problem], limit: int = 50) -> list[dict[str, Any]]:
    """One line per source and kind: how many, an example, and what to do about it."""
    grouped: dict[tuple[str, ProblemKind], list[Problem]] = {}
    for problem in problems:
        grouped.setdefault((problem.source, problem.kind), []).append(problem)
    return [
        {
            "source": source,
            "kind": str(kind),
            "count": len(found),
            "example": f"{found[0].where}: {found[0].detail}",
            "hint": HINTS.get(kind, ""),
        }
        for (source, kind), found in list(grouped.items())[:limit]
    ]


class SkipReason(StrEnum):
    """Why a transcript entry became no turn. Every entry read is either a turn or one of these."""

    METADATA = "metadata"  # session header, model change, label, custom state ...
    TOOL = "tool"
    THINKING = "thinking"
    IMAGE = "image"
    HEARTBEAT = "heartbeat"
    #: OpenClaw's own prompts: a /new or /reset, a system event, a cron prompt, another session.
    SYSTEM = "system"
    #: A turn OpenClaw ran to recall memories (its memory_search or memory_get).
    RECALLED = "recalled"
    #: OpenClaw's copy of a reply it delivered (``delivery-mirror``, ``gateway-injected``).
    MIRROR = "mirror"
    NO_REPLY = "no_reply"
    MEMORY_FLUSH = "memory_flush"
    ERROR = "error"
    EMPTY = "empty"
    UNKNOWN_TYPE = "unknown_type"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    DUPLICATE = "duplicate"


Skipped = Counter[SkipReason]
