"""What an agent's transcripts say about tools and spending in a window of time.

The turn readers drop tool calls and usage on purpose (they carry no memory), so the hourly
summary gets them here, from the raw entries: every assistant message in the window adds its
``toolCall`` block names and its ``usage`` (input, output, cacheRead, cacheWrite, totalTokens,
cost.total). Both layouts are scanned, and an entry seen twice (a retried line, a session
migrated into the database) counts once. Only what the window needs is read: a session file not
modified since before the window is not opened, database rows are chosen by ``created_at``.
Nothing raises on a bad line or row: it is counted, and an unreadable file is a ``Problem``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import zstandard

from stores.hours import HourWindow
from stores.openclaw.database import connect_read_only, row_data
from stores.openclaw.entries import parse_timestamp
from stores.openclaw.home import Agent
from stores.openclaw.jsonl import MAX_LINE_BYTES, SessionFile, list_session_files
from stores.openclaw.problems import Problem, ProblemKind

#: Entry timestamps and file times / ``created_at`` come from different clocks and moments (an
#: entry is stamped, then written): this much either side is read and then filtered exactly.
SLACK = timedelta(minutes=10)
TOOL_BLOCKS = frozenset({"toolCall", "toolUse", "tool_use"})
#: Assistant lines are what this reads; other lines (tool results, often huge) are not parsed.
_ASSISTANT = b'"assistant"'
_ASSISTANT_TEXT = _ASSISTANT.decode()


@dataclass(frozen=True)
class TranscriptUsage:
    tools: Mapping[str, int] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    assistant_messages: int = 0
    #: Sessions with an assistant message in the window, first seen first.
    sessions: tuple[str, ...] = ()
    #: Assistant lines or rows that could not be read (not JSON, no usable timestamp).
    malformed: int = 0
    problems: tuple[Problem, ...] = ()


def scan_usage(agent: Agent, window: HourWindow) -> TranscriptUsage:
    """Tools used, tokens and cost of ``agent``'s assistant messages inside ``window``."""
    tally = _Tally(window)
    files, problems = list_session_files(agent.sessions_dir)
    tally.problems.extend(problems)
    for session in files:
        _scan_file(session, tally)
    if agent.database.exists():
        _scan_database(agent.database, tally)
    return tally.result()


class _Tally:
    def __init__(self, window: HourWindow) -> None:
        self.window = window
        self.tools: Counter[str] = Counter()
        self.numbers: Counter[str] = Counter()
        self.cost = 0.0
        self.messages = 0
        self.sessions: dict[str, None] = {}
        self.malformed = 0
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str]] = set()

    def result(self) -> TranscriptUsage:
        n = self.numbers
        return TranscriptUsage(
            tools=dict(sorted(self.tools.items(), key=lambda kv: (-kv[1], kv[0]))),
            tokens_in=n["input"],
            tokens_out=n["output"],
            cache_read=n["cacheRead"],
            cache_write=n["cacheWrite"],
            total_tokens=n["totalTokens"],
            cost=round(self.cost, 6),
            assistant_messages=self.messages,
            sessions=tuple(self.sessions),
            malformed=self.malformed,
            problems=tuple(self.problems),
        )

    def raw(self, session_id: str, data: bytes | str) -> None:
        try:
            entry = json.loads(data)
        except (ValueError, RecursionError):
            self.malformed += 1
            return
        if not isinstance(entry, dict):
            self.malformed += 1
            return
        self.entry(session_id, entry)

    def entry(self, session_id: str, entry: Mapping[str, Any]) -> None:
        message = entry.get("message")
        if entry.get("type") != "message" or not isinstance(message, dict):
            return
        if message.get("role") != "assistant":
            return
        when = parse_timestamp(entry.get("timestamp")) or parse_timestamp(message.get("timestamp"))
        if when is None:
            self.malformed += 1
            return
        if not self.window.contains(when) or self._already_seen(session_id, entry.get("id")):
            return
        self.messages += 1
        self.sessions.setdefault(session_id)
        self._tools(message.get("content"))
        self._usage(message.get("usage"))

    def _already_seen(self, session_id: str, entry_id: Any) -> bool:
        if not isinstance(entry_id, str):
            return False
        key = (session_id, entry_id)
        if key in self._seen:
            return True
        self._seen.add(key)
        return False

    def _tools(self, content: Any) -> None:
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") in TOOL_BLOCKS:
                name = block.get("name")
                if isinstance(name, str) and name.strip():
                    self.tools[name.strip()] += 1

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for key in ("input", "output", "cacheRead", "cacheWrite", "totalTokens"):
            self.numbers[key] += int(_amount(usage.get(key)))
        cost = usage.get("cost")
        self.cost += _amount(cost.get("total") if isinstance(cost, dict) else cost)


def _amount(value: Any) -> float:
    """A count or a price as given, 0 for anything else (a string, a bool, NaN, negative)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


def _scan_file(session: SessionFile, tally: _Tally) -> None:
    try:
        with session.path.open("rb") as handle:
            modified = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)
            if modified < tally.window.start - SLACK:
                return  # nothing written since before the window started
            for line in _lines(handle, final=session.final):
                if line is None:
                    tally.malformed += 1
                elif _ASSISTANT in line:
                    tally.raw(session.session_id, line)
    except OSError as exc:
        tally.problems.append(Problem(str(session.path), ProblemKind.UNREADABLE, str(exc)))


def _lines(handle: IO[bytes], *, final: bool) -> Iterator[bytes | None]:
    """Complete lines (None for one too long to be an entry); a live file's unfinished last line
    is still being written and is left out."""
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
        elif raw.endswith(b"\n") or final:
            yield raw


def _scan_database(db_path: Path, tally: _Tally) -> None:
    start_ms = int((tally.window.start - SLACK).timestamp() * 1000)
    end_ms = int((tally.window.end + SLACK).timestamp() * 1000)
    try:
        conn = connect_read_only(db_path)
    except sqlite3.Error as exc:
        tally.problems.append(Problem(str(db_path), ProblemKind.UNREADABLE, str(exc)))
        return
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(transcript_events)")}
        blob = "event_zstd" if "event_zstd" in columns else "NULL"
        rows = conn.execute(
            f"SELECT session_id, event_json, {blob} FROM transcript_events"  # noqa: S608 - a fixed column name
            " WHERE created_at >= ? AND created_at < ? ORDER BY session_id, seq",
            (start_ms, end_ms),
        )
        decompressor = zstandard.ZstdDecompressor()
        for session_id, text, compressed in rows:
            data = row_data(text, compressed, decompressor)
            if data is None:
                tally.malformed += 1
            elif _ASSISTANT in data if isinstance(data, bytes) else _ASSISTANT_TEXT in data:
                tally.raw(str(session_id), data)
    except sqlite3.Error as exc:
        tally.problems.append(Problem(str(db_path), ProblemKind.UNREADABLE, str(exc)))
    finally:
        conn.close()
