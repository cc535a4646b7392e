"""A turn: one thing said worth remembering, with exactly where it was said.

Both layouts' readers collect turns the same way (``TurnCollector``): an entry becomes a turn,
or a count under the reason it was left out, or a problem with its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stores.openclaw.entries import BadEntry, EntryInterpreter, Role
from stores.openclaw.problems import Problem, ProblemKind, Skipped, SkipReason


@dataclass(frozen=True)
class JsonlSource:
    path: Path
    offset: int
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class SqliteSource:
    db_path: Path
    session_id: str
    seq: int

    def __str__(self) -> str:
        return f"{self.db_path}#{self.session_id}:{self.seq}"


@dataclass(frozen=True)
class Turn:
    """One thing said that is worth remembering, and exactly where it was said."""

    agent_id: str
    session_key: str | None
    session_id: str
    entry_id: str
    parent_id: str | None
    timestamp: datetime
    role: Role
    speaker: str | None
    text: str
    source: JsonlSource | SqliteSource

    @property
    def where(self) -> str:
        return str(self.source)


class TurnCollector:
    """What a read found: turns, skip counts and problems, shared by both layouts' readers."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.turns: list[Turn] = []
        self.problems: list[Problem] = []
        self.skipped = Skipped()
        self._unknown_types: set[str] = set()

    def add(
        self,
        entry: Mapping[str, Any],
        interpreter: EntryInterpreter,
        session: tuple[str | None, str],
        source: JsonlSource | SqliteSource,
    ) -> None:
        """Interpret one entry of the session ``(key, id)`` and keep it or count why not."""
        try:
            result = interpreter.interpret(entry)
        except BadEntry as exc:
            self.skip(source, SkipReason.MALFORMED, ProblemKind.BAD_ENTRY, str(exc))
            return
        except Exception as exc:  # a shape nobody foresaw: it costs one entry, not the read
            detail = f"unreadable entry ({type(exc).__name__}: {str(exc)[:200]})"
            self.skip(source, SkipReason.MALFORMED, ProblemKind.BAD_ENTRY, detail)
            return
        if isinstance(result, SkipReason):
            self.skipped[result] += 1
            kind = str(entry.get("type"))
            if result is SkipReason.UNKNOWN_TYPE and kind not in self._unknown_types:
                # Reported once per read: a newer OpenClaw, worth knowing, not worth a flood.
                self._unknown_types.add(kind)
                detail = f"entry type {kind!r} not known; skipped"
                self.problems.append(Problem(str(source), ProblemKind.UNKNOWN_TYPE, detail))
            return
        key, session_id = session
        if result.cut:
            detail = (
                f"a turn of {len(result.text) + result.cut:,} characters; kept its head and tail"
            )
            self.problems.append(Problem(str(source), ProblemKind.LONG_TURN, detail))
        self.turns.append(
            Turn(
                self.agent_id,
                key,
                session_id,
                result.entry_id,
                result.parent_id,
                result.timestamp,
                result.role,
                result.speaker,
                result.text,
                source,
            )
        )

    def skip(
        self,
        source: JsonlSource | SqliteSource,
        reason: SkipReason,
        kind: ProblemKind,
        detail: str,
    ) -> None:
        self.skipped[reason] += 1
        self.problems.append(Problem(str(source), kind, detail))
