"""Mistakes found in an agent's raw transcripts, in a window of time.

The turn readers leave out error turns and tool results on purpose (they carry no memory), so
this reads the raw entries of both layouts, the way ``stores.openclaw.usage`` does, and keeps
three kinds of entry:

* an assistant message that ended with ``stopReason: "error"``
  (reason ``assistant turn ended in error: <errorMessage>``);
* a tool result with ``isError: true`` (reason ``tool <name> failed``);
* a user message right after an assistant message that starts with a correction
  (``correction_rule``; reason names the pattern).

The correction rule is deliberately narrow: a few openings, matched on the person's own words
(the channel's envelope stripped), case-insensitive. Near misses it leaves alone, by design:
"no problem", "No, thanks" / "no, that's fine" (a polite no), "I said thanks" (a pleasantry),
"wrong number? no, it's fine" ("wrong" followed by a word, not a verdict), and any "no, ..."
that answers a question the assistant just asked (an answer, not a correction). A missed
correction costs less than a false one: the synthesis quotes what it finds to the person.

Each entry found is (agent, session, entry id) once, however often it is read; an entry just
before the window is read for context only, so a correction at the window's start still sees
the turn it answers.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import zstandard

from stores.coordination.mistakes import MistakeEntry, MistakeRule, MistakeStore, clip, detected_id
from stores.openclaw.database import connect_read_only, row_data
from stores.openclaw.entries import parse_timestamp
from stores.openclaw.home import Agent
from stores.openclaw.jsonl import MAX_LINE_BYTES, SessionFile, list_session_files
from stores.openclaw.problems import Problem, ProblemKind
from stores.openclaw.wrappers import clean_assistant_text, clean_user_text

#: Entry times and file times / ``created_at`` differ a little (stamped, then written).
SLACK = timedelta(minutes=10)
#: How far back the first scan of an agent reaches: the week a synthesis looks at, and a day.
FIRST_SCAN = timedelta(days=8)
#: Database rows read before a session's first row in the window, for context.
LOOKBACK_ROWS = 20
_MESSAGE = b'"message"'

#: Quotes and emphasis a person may open a message with; phones type a curly apostrophe.
_OPENERS = "\"'\u201c\u2018*_> "
_CURLY_APOSTROPHE = "\u2019"
_POLITE_NO = (
    r"(?!\s*(?:thanks|thank you|thx|ty|no worries|worries|problem|need|rush|hurry|all good"
    r"|(?:that'?s|that is|it'?s|it is) (?:fine|ok|okay|alright|all right|good|great)\b))"
)
_PLEASANTRY = (
    r"(?!\s*(?:thanks|thank you|thx|hi|hello|hey|bye|goodbye|good (?:morning|night|evening)"
    r"|please|yes|ok|okay)\b)"
)
#: (label, pattern): the label is what the reason names; patterns match the start of the text.
CORRECTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("no,", re.compile(rf"^(?:no|nope|nah)\s*,{_POLITE_NO}")),
    (
        "that's wrong",
        re.compile(
            r"^(?:that'?s|that is|this is|it'?s|it is|you'?re|you are)\s+"
            r"(?:wrong|incorrect|not (?:right|correct|true))\b"
        ),
    ),
    ("wrong", re.compile(r"^wrong\s*(?:[.!,;:]|again\b|$)")),
    ("I said", re.compile(rf"^i said\b{_PLEASANTRY}")),
    ("I told you", re.compile(r"^i told you\b")),
    (
        "not what I asked",
        re.compile(r"^(?:(?:that'?s|that is|this is|it'?s)\s+)?not what i (?:asked|said|meant)\b"),
    ),
)


def correction_rule(text: str, answered: str = "") -> str | None:
    """The label of the correction ``text`` opens with, or None. ``answered`` is the assistant
    turn it follows: a "no, ..." to a question is an answer and does not count."""
    words = text.strip().lstrip(_OPENERS).replace(_CURLY_APOSTROPHE, "'").lower()
    for label, pattern in CORRECTIONS:
        if pattern.match(words):
            if label == "no," and answered.rstrip(" *_)\"'”").endswith("?"):
                return None
            return label
    return None


@dataclass(frozen=True)
class MistakeScan:
    found: tuple[MistakeEntry, ...] = ()
    #: Messages read inside the window.
    messages: int = 0
    malformed: int = 0
    problems: tuple[Problem, ...] = ()


def scan_new(
    store: MistakeStore, agent: Agent, now: datetime, first: timedelta = FIRST_SCAN
) -> tuple[int, MistakeScan]:
    """Blocking: scan ``agent``'s transcripts from where the last scan stopped (the first
    time: ``first`` back) to ``now`` into ``store``; returns how many mistakes were new."""
    through = store.scanned_through(agent.id)
    start = through - SLACK if through is not None else now - first
    found = scan_mistakes(agent, start, now)
    return store.record_scan(agent.id, found.found, now, now), found


def scan_mistakes(agent: Agent, start: datetime, end: datetime) -> MistakeScan:
    """The mistakes among ``agent``'s transcript entries stamped in ``[start, end)``."""
    scanner = _Scanner(agent.id, start, end)
    files, problems = list_session_files(agent.sessions_dir)
    scanner.problems.extend(problems)
    for session in files:
        _scan_file(session, scanner)
    if agent.database.exists():
        _scan_database(agent.database, scanner)
    return scanner.result()


@dataclass
class _Last:
    role: str
    text: str


@dataclass(frozen=True)
class _Hit:
    rule: MistakeRule
    reason: str
    text: str
    quote: str | None
    context: str | None = None


@dataclass
class _Scanner:
    agent: str
    start: datetime
    end: datetime
    found: dict[str, MistakeEntry] = field(default_factory=dict)
    messages: int = 0
    malformed: int = 0
    problems: list[Problem] = field(default_factory=list)
    _last: dict[str, _Last] = field(default_factory=dict)
    _tools: dict[tuple[str, str], str] = field(default_factory=dict)

    def result(self) -> MistakeScan:
        found = sorted(self.found.values(), key=lambda m: (m.at, m.id))
        return MistakeScan(tuple(found), self.messages, self.malformed, tuple(self.problems))

    def raw(self, session_id: str, data: bytes | str, where: str) -> None:
        try:
            entry = json.loads(data)
        except (ValueError, RecursionError):
            self.malformed += 1
            return
        if isinstance(entry, dict):
            self.entry(session_id, entry, where)
        else:
            self.malformed += 1

    def entry(self, session_id: str, entry: Mapping[str, Any], where: str) -> None:
        message = entry.get("message")
        if entry.get("type") != "message" or not isinstance(message, dict):
            return
        when = parse_timestamp(entry.get("timestamp")) or parse_timestamp(message.get("timestamp"))
        entry_id = entry.get("id")
        if when is None or not isinstance(entry_id, str):
            self.malformed += 1
            return
        role = str(message.get("role"))
        text = _text(message.get("content"))
        if self.start <= when < self.end:
            self.messages += 1
            hit = self._detect(session_id, role, message, text)
            if hit is not None:
                self._keep(session_id, entry_id, when, where, hit)
        if role == "assistant":
            self._remember_tools(session_id, message.get("content"))
            text = clean_assistant_text(text)
        self._last[session_id] = _Last(role, text)

    def _detect(
        self, session_id: str, role: str, message: Mapping[str, Any], text: str
    ) -> _Hit | None:
        if role == "assistant" and message.get("stopReason") == "error":
            error = message.get("errorMessage")
            said = clip(error, 300) if isinstance(error, str) and error.strip() else ""
            reason = "assistant turn ended in error" + (f": {said}" if said else "")
            return _Hit(MistakeRule.ASSISTANT_ERROR, reason, reason, said or None)
        if role == "toolResult" and message.get("isError") is True:
            reason = f"tool {self._tool_name(session_id, message)} failed"
            what = f"{reason}: {clip(text, 300)}" if text.strip() else reason
            return _Hit(MistakeRule.TOOL_ERROR, reason, what, clip(text) or None)
        last = self._last.get(session_id)
        if role != "user" or last is None or last.role != "assistant":
            return None
        said = clean_user_text(text)[1]
        label = correction_rule(said, last.text)
        if label is None:
            return None
        reason = f'user correction right after an assistant turn: starts with "{label}"'
        return _Hit(
            MistakeRule.USER_CORRECTION, reason, clip(said, 300), clip(said), clip(last.text, 300)
        )

    def _keep(self, session_id: str, entry_id: str, when: datetime, where: str, hit: _Hit) -> None:
        key = detected_id(self.agent, session_id, entry_id)
        self.found.setdefault(
            key,
            MistakeEntry(
                id=key,
                agent=self.agent,
                text=hit.text,
                rule=hit.rule,
                reason=hit.reason,
                at=when.astimezone(UTC),
                session_id=session_id,
                entry_id=entry_id,
                source=where,
                quote=hit.quote,
                context=hit.context or None,
            ),
        )

    def _remember_tools(self, session_id: str, content: Any) -> None:
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict) or block.get("type") not in ("toolCall", "toolUse"):
                continue
            call_id, name = block.get("id"), block.get("name")
            if isinstance(call_id, str) and isinstance(name, str):
                self._tools[(session_id, call_id)] = name

    def _tool_name(self, session_id: str, message: Mapping[str, Any]) -> str:
        name = message.get("toolName")
        if isinstance(name, str) and name.strip():
            return name.strip()
        call_id = message.get("toolCallId")
        return self._tools.get((session_id, str(call_id)), "(unnamed)")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    texts = [
        b["text"]
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    return "\n\n".join(t for t in texts if t.strip())


def _scan_file(session: SessionFile, scanner: _Scanner) -> None:
    try:
        with session.path.open("rb") as handle:
            modified = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)
            if modified < scanner.start - SLACK:
                return  # nothing written since before the window
            for line_no, line in _lines(handle, final=session.final):
                if line is None:
                    scanner.malformed += 1
                elif _MESSAGE in line:
                    scanner.raw(session.session_id, line, f"{session.path}:{line_no}")
    except OSError as exc:
        scanner.problems.append(Problem(str(session.path), ProblemKind.UNREADABLE, str(exc)))


def _lines(handle: IO[bytes], *, final: bool) -> Iterator[tuple[int, bytes | None]]:
    """(line number, complete line or None when too long); a live file's unfinished last line
    is still being written and is left out."""
    line_no = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        line_no += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield line_no, None
        elif raw.endswith(b"\n") or final:
            yield line_no, raw


def _scan_database(db_path: Path, scanner: _Scanner) -> None:
    try:
        conn = connect_read_only(db_path)
    except sqlite3.Error as exc:
        scanner.problems.append(Problem(str(db_path), ProblemKind.UNREADABLE, str(exc)))
        return
    try:
        conn.execute("BEGIN")  # one snapshot while OpenClaw writes
        _read_rows(conn, db_path, scanner)
    except sqlite3.Error as exc:
        scanner.problems.append(Problem(str(db_path), ProblemKind.UNREADABLE, str(exc)))
    finally:
        conn.close()


def _read_rows(conn: sqlite3.Connection, db_path: Path, scanner: _Scanner) -> None:
    start_ms = int((scanner.start - SLACK).timestamp() * 1000)
    end_ms = int((scanner.end + SLACK).timestamp() * 1000)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(transcript_events)")}
    blob = "event_zstd" if "event_zstd" in columns else "NULL"
    firsts = conn.execute(
        "SELECT session_id, MIN(seq) FROM transcript_events"
        " WHERE created_at >= ? AND created_at < ? GROUP BY session_id ORDER BY session_id",
        (start_ms, end_ms),
    ).fetchall()
    decompressor = zstandard.ZstdDecompressor()
    for session_id, first in firsts:
        rows = conn.execute(
            f"SELECT seq, event_json, {blob} FROM transcript_events"  # noqa: S608 - a fixed column name
            " WHERE session_id = ? AND seq >= ? AND created_at < ? ORDER BY seq",
            (session_id, int(first) - LOOKBACK_ROWS, end_ms),
        )
        for seq, text, compressed in rows:
            data = row_data(text, compressed, decompressor)
            if data is None:
                scanner.malformed += 1
            else:
                scanner.raw(str(session_id), data, f"{db_path}#{session_id}:{seq}")
