"""An agent's drop file of signals: ``memory/signals.jsonl`` in its workspace, read incrementally.

The agent appends one JSON object a line::

    {"to": "work", "kind": "request", "text": "Draft the Q3 summary", "priority": "high"}

``to`` is an agent id, a list of them, or ``"all"``; ``kind`` is fact, decision, request or
warning; optional are ``priority`` (low, normal, high, urgent), ``expires`` (``3d``, an ISO
date or time, ``never``), ``created`` (ISO time) and ``id`` (any string the agent chooses). The
sender is always the workspace's agent: a ``from`` naming another agent is refused.

Each line is validated on its own: a bad one is reported as ``path:line`` and skipped, the
rest are kept. A last line without its newline is still being written and waits for the next
read. Where the read stopped (byte offset, line number, which file it was) is kept with the
signals, so a line is read once; a file truncated or replaced is read again from the start, and
the stable ids keep what was already stored from being stored twice.

A line's id is the agent's own ``id``, or else its words and which occurrence of those words in
the file it is: the same warning appended again a week later is a new signal (the first may be
closed by then), while a file rewritten with the same lines gives the same ids.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stores.coordination.signals import (
    ALL,
    DEFAULT_TTL,
    MAX_TEXT,
    CrossAgentSignal,
    SignalKind,
    SignalPriority,
    SignalStore,
    new_signal,
    parse_expiry,
    signal_id,
)
from stores.openclaw.home import Agent, is_agent_id
from stores.openclaw.problems import Problem, ProblemKind

DROP_FILE = Path("memory") / "signals.jsonl"
MAX_LINE_BYTES = 64 * 1024
HEAD_BYTES = 256


class DropLine(BaseModel):
    """One line of a drop file, as the agent may write it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str | list[str] = Field(description="an agent id, a list of them, or 'all'")
    kind: SignalKind
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    priority: SignalPriority = SignalPriority.NORMAL
    expires: str | None = None
    created: datetime | None = None
    id: str | None = Field(None, min_length=1, max_length=200)
    from_: str | None = Field(None, alias="from")

    @field_validator("to")
    @classmethod
    def _targets(cls, value: str | list[str]) -> list[str]:
        targets = [value] if isinstance(value, str) else value
        if not targets:
            raise ValueError("names no agent")
        for target in targets:
            if target != ALL and not is_agent_id(target):
                raise ValueError(f"not an agent id: {target!r}")
        return targets

    @field_validator("text")
    @classmethod
    def _words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank")
        return value


@dataclass(frozen=True)
class Collected:
    added: int = 0
    lines: int = 0
    problems: tuple[Problem, ...] = ()


def collect(
    store: SignalStore,
    agents: Sequence[Agent],
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    zone: tzinfo = UTC,
) -> Collected:
    """Blocking: what every agent's drop file gained since the last read, into ``store``."""
    known = [a.id for a in agents]
    added = lines = 0
    problems: list[Problem] = []
    for agent in agents:
        state = store.drop_state(agent.id)
        read = read_drop_file(
            agent.workspace, agent.id, state, known_agents=known, now=now, ttl=ttl, zone=zone
        )
        added += store.add_from_drop(agent.id, read.signals, read.state, now)
        lines += read.lines
        problems += read.problems
    return Collected(added, lines, tuple(problems))


@dataclass(frozen=True)
class DropRead:
    signals: tuple[CrossAgentSignal, ...] = ()
    #: Where the next read starts; None if the file is absent or could not be read.
    state: dict[str, Any] | None = None
    problems: tuple[Problem, ...] = ()
    lines: int = 0


@dataclass
class _Reading:
    path: Path
    agent: str
    known: Collection[str]
    now: datetime
    ttl: timedelta
    zone: tzinfo = UTC
    signals: list[CrossAgentSignal] = field(default_factory=list)
    #: Lines without an id: how often each one's words were read in this file so far.
    seen: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, raw: bytes, line_no: int) -> None:
        where = f"{self.path}:{line_no}"
        if not raw.strip():
            return
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(where, ProblemKind.INVALID_UTF8, str(exc)))
            return
        except (ValueError, RecursionError) as exc:
            detail = f"not JSON: {str(exc)[:200]}"
            self.problems.append(Problem(where, ProblemKind.MALFORMED_LINE, detail))
            return
        try:
            self.signals.append(self._signal(DropLine.model_validate(data), data))
        except ValidationError as exc:
            self.problems.append(Problem(where, ProblemKind.BAD_ENTRY, _first_error(exc)))
        except ValueError as exc:
            self.problems.append(Problem(where, ProblemKind.BAD_ENTRY, str(exc)))

    def _signal(self, line: DropLine, data: Any) -> CrossAgentSignal:
        """Raises ``ValueError`` for what the line model cannot know: agents, dates."""
        if line.from_ is not None and line.from_ != self.agent:
            raise ValueError(f"'from' is {line.from_!r}, but this is {self.agent!r}'s workspace")
        targets = line.to if isinstance(line.to, list) else [line.to]
        unknown = sorted(t for t in targets if t != ALL and t not in self.known)
        if unknown:
            raise ValueError(f"no agent {', '.join(unknown)} (known: {', '.join(self.known)})")
        created = line.created or self.now
        if created.tzinfo is None:
            raise ValueError("'created' has no time zone")
        expires = _expiry(line.expires, created, self.zone) if line.expires else None
        return new_signal(
            source=self.agent,
            targets=targets,
            kind=line.kind,
            text=line.text,
            now=created,
            priority=line.priority,
            expires_at=expires,
            ttl=None if line.expires else self.ttl,
            origin=str(self.path),
            id=signal_id("drop", self.agent, line.id or self._occurrence(data)),
        )

    def _occurrence(self, data: Any) -> str:
        words = json.dumps(data, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(words.encode()).hexdigest()[:16]
        nth = self.seen.get(digest, 0)
        self.seen[digest] = nth + 1
        return f"{words}#{nth}" if nth else words


def read_drop_file(
    workspace: Path,
    agent: str,
    state: dict[str, Any] | None,
    *,
    known_agents: Collection[str],
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    zone: tzinfo = UTC,
) -> DropRead:
    """The signals added to ``agent``'s drop file since ``state`` (all of them if None).
    A date or a time without a zone in ``expires`` is read in ``zone``."""
    path = workspace / DROP_FILE
    reading = _Reading(path, agent, sorted(known_agents), now, ttl, zone)
    try:
        with path.open("rb") as handle:
            after, lines = _read(handle, state, reading)
    except FileNotFoundError:
        return DropRead()
    except OSError as exc:
        return DropRead(problems=(Problem(str(path), ProblemKind.UNREADABLE, str(exc)),))
    return DropRead(tuple(reading.signals), after, tuple(reading.problems), lines)


def _read(
    handle: IO[bytes], state: dict[str, Any] | None, reading: _Reading
) -> tuple[dict[str, Any], int]:
    info = os.fstat(handle.fileno())
    head = _head(handle, min(HEAD_BYTES, info.st_size))
    offset, line_no = _resume(state, info, head, handle, reading)
    handle.seek(offset)
    lines = 0
    while True:
        raw, size = _next_line(handle)
        if size == 0:
            break  # the end, or a line still being written: read whole next time
        line_no += 1
        lines += 1
        offset += size
        if raw is None:
            detail = f"longer than {MAX_LINE_BYTES} bytes"
            where = f"{reading.path}:{line_no}"
            reading.problems.append(Problem(where, ProblemKind.OVERSIZED_LINE, detail))
        else:
            reading.line(raw, line_no)
    after = {
        "device": info.st_dev,
        "inode": info.st_ino,
        "head": head,
        "head_size": min(HEAD_BYTES, info.st_size),
        "offset": offset,
        "line_no": line_no,
        "seen": reading.seen,
    }
    return after, lines


def _resume(
    state: dict[str, Any] | None,
    info: os.stat_result,
    head: str,
    handle: IO[bytes],
    reading: _Reading,
) -> tuple[int, int]:
    """Where to start: after the last line read, unless the file is not the one read before."""
    if not state:
        return 0, 0
    same = (state.get("device"), state.get("inode")) == (info.st_dev, info.st_ino)
    unchanged = same and info.st_size >= state["offset"]
    if unchanged and _head(handle, int(state.get("head_size", 0))) == state.get("head"):
        reading.seen = dict(state.get("seen", {}))
        return int(state["offset"]), int(state["line_no"])
    where = str(reading.path)
    detail = "truncated or replaced; read again from the start"
    reading.problems.append(Problem(where, ProblemKind.FILE_REPLACED, detail))
    return 0, 0


def _head(handle: IO[bytes], size: int) -> str:
    handle.seek(0)
    return hashlib.sha256(handle.read(size)).hexdigest()


def _next_line(handle: IO[bytes]) -> tuple[bytes | None, int]:
    """The next complete line (None if oversized) and its size; size 0 when there is none:
    the end of the file, or a last line without its newline yet."""
    start = handle.tell()
    raw = handle.readline(MAX_LINE_BYTES + 1)
    if raw.endswith(b"\n"):
        return raw, len(raw)
    if len(raw) <= MAX_LINE_BYTES:
        handle.seek(start)
        return None, 0
    size = len(raw)
    while chunk := handle.readline(1 << 20):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            return None, size
    handle.seek(start)
    return None, 0


def _expiry(value: str, created: datetime, zone: tzinfo) -> datetime | None:
    try:
        return parse_expiry(value, created, zone)
    except ValueError:
        raise ValueError(f"expires: not a duration, date or time: {value!r}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "line"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown field {where!r}"
    return f"{where}: {message}"
