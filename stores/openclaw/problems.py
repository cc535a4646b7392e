"""What reading OpenClaw's files reports besides what it read.

OpenClaw's files are written by another program, may be half-written, damaged or of a newer
format. A reader never raises on them: it returns what it could read, a ``Problem`` for each
place it could not, and counts of what it left out on purpose (``SkipReason``), so that a run
can say "read 812 turns, skipped 40 tool calls, 1 malformed line at sessions/x.jsonl:17".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum


class ProblemKind(StrEnum):
    BAD_CONFIG = "bad_config"
    BAD_AGENT_ID = "bad_agent_id"
    UNREADABLE = "unreadable"
    BAD_INDEX = "bad_index"
    MALFORMED_LINE = "malformed_line"
    INVALID_UTF8 = "invalid_utf8"
    OVERSIZED_LINE = "oversized_line"
    UNKNOWN_TYPE = "unknown_type"
    BAD_ENTRY = "bad_entry"
    FILE_REPLACED = "file_replaced"
    CORRUPT_DATABASE = "corrupt_database"
    OLD_SCHEMA = "old_schema"
    BAD_ROW = "bad_row"
    DATABASE_BUSY = "database_busy"
    #: Reading one source failed in a way no rule above foresaw; the others were read.
    SOURCE_FAILED = "source_failed"


@dataclass(frozen=True)
class Problem:
    """``where`` is ``path:line`` for files, ``db#session:seq`` for a database row."""

    where: str
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.detail}"


class SkipReason(StrEnum):
    """Why a transcript entry became no turn. Every entry read is either a turn or one of these."""

    METADATA = "metadata"  # session header, model change, label, custom state ...
    TOOL = "tool"
    THINKING = "thinking"
    IMAGE = "image"
    HEARTBEAT = "heartbeat"
    NO_REPLY = "no_reply"
    MEMORY_FLUSH = "memory_flush"
    ERROR = "error"
    EMPTY = "empty"
    UNKNOWN_TYPE = "unknown_type"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    DUPLICATE = "duplicate"


Skipped = Counter[SkipReason]
