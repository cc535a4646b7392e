"""Transcripts in OpenClaw's current layout: ``agents/<id>/agent/openclaw-agent.sqlite``.

The database belongs to a running OpenClaw, so it is opened read-only (``mode=ro``, and
``query_only`` besides) and read inside one transaction, which gives a consistent snapshot
while OpenClaw keeps writing through its WAL. Each session's rows come in ``seq`` order after
the last ``seq`` read before; ``session_windows`` gives a session its key and the session before
it. A row may be stored compressed (``event_zstd``) by later versions. A damaged file, an old
schema or a busy lock is a reported problem, never an exception.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import zstandard

from stores.openclaw.entries import EntryInterpreter, Names
from stores.openclaw.problems import Problem, ProblemKind, Skipped, SkipReason
from stores.openclaw.turns import SqliteSource, Turn, TurnCollector
from stores.sqlite import is_corruption

MIN_SCHEMA = 4
#: A decompressed row larger than this is not a transcript entry.
MAX_ROW_BYTES = 32 * 1024 * 1024

_WINDOWS = (
    "SELECT session_id, session_key, previous_session_id, reason"
    " FROM session_windows ORDER BY created_at, session_id"
)
_AFTER = " FROM transcript_events WHERE session_id = ? AND seq > ? ORDER BY seq"
# As bytes: a row that is not UTF-8 is then one bad row for ``_decode`` to skip, instead of an
# error from the cursor that would end the read of the whole database at that row.
_EVENTS = "SELECT seq, CAST(event_json AS BLOB), NULL" + _AFTER
_EVENTS_ZSTD = "SELECT seq, CAST(event_json AS BLOB), event_zstd" + _AFTER


@dataclass(frozen=True)
class SessionWindow:
    session_id: str
    session_key: str | None
    previous_session_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SessionProgress:
    last_seq: int
    in_flush: bool = False


@dataclass(frozen=True)
class SqliteCheckpoint:
    sessions: Mapping[str, SessionProgress] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {sid: [p.last_seq, p.in_flush] for sid, p in self.sessions.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SqliteCheckpoint:
        return cls({sid: SessionProgress(int(v[0]), bool(v[1])) for sid, v in data.items()})


@dataclass(frozen=True)
class SqliteRead:
    turns: tuple[Turn, ...]
    checkpoint: SqliteCheckpoint
    #: Every session of the database, oldest first, with its place in the chain.
    sessions: tuple[SessionWindow, ...] = ()
    problems: tuple[Problem, ...] = ()
    skipped: Skipped = field(default_factory=Skipped)


def read_sqlite(
    db_path: Path, checkpoint: SqliteCheckpoint | None, *, agent_id: str, names: Names
) -> SqliteRead:
    """The turns added to the agent's database since ``checkpoint`` (all of them if None)."""
    reader = _SqliteReader(db_path, agent_id, names, checkpoint or SqliteCheckpoint())
    try:
        conn = connect_read_only(db_path)
    except sqlite3.Error as exc:
        reader.failed(exc)
        return reader.result()
    try:
        conn.execute("BEGIN")
        reader.read(conn)
    except sqlite3.Error as exc:
        reader.failed(exc)
    finally:
        conn.close()
    return reader.result()


def connect_read_only(db_path: Path) -> sqlite3.Connection:
    """Read-only. In a read-only directory a WAL database cannot get its ``-shm`` file; then,
    if there is no WAL content to miss, open it as immutable."""
    if not db_path.is_file():
        raise sqlite3.OperationalError(f"no database file at {db_path}")
    uri = f"file:{quote(str(db_path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        wal = Path(f"{db_path}-wal")
        if "unable to open" not in str(exc) or (wal.exists() and wal.stat().st_size > 0):
            raise
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only = 1")
    return conn


class _SqliteReader:
    def __init__(
        self, db_path: Path, agent_id: str, names: Names, checkpoint: SqliteCheckpoint
    ) -> None:
        self.db_path = db_path
        self.names = names
        self.progress = dict(checkpoint.sessions)
        self.sessions: list[SessionWindow] = []
        self.found = TurnCollector(agent_id)
        self._decompressor = zstandard.ZstdDecompressor()

    def result(self) -> SqliteRead:
        found = self.found
        return SqliteRead(
            tuple(found.turns),
            SqliteCheckpoint(self.progress),
            tuple(self.sessions),
            tuple(found.problems),
            found.skipped,
        )

    def failed(self, exc: sqlite3.Error) -> None:
        if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
            kind = ProblemKind.CORRUPT_DATABASE
        elif "locked" in str(exc) or "busy" in str(exc):
            kind = ProblemKind.DATABASE_BUSY
        else:
            kind = ProblemKind.UNREADABLE
        self.found.problems.append(Problem(str(self.db_path), kind, str(exc)))

    def read(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version < MIN_SCHEMA or "transcript_events" not in tables:
            detail = f"schema version {version}, tables {sorted(tables)}: not OpenClaw's (>= 4)"
            self.found.problems.append(Problem(str(self.db_path), ProblemKind.OLD_SCHEMA, detail))
            return
        self.sessions = _sessions(conn, tables)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(transcript_events)")}
        query = _EVENTS_ZSTD if "event_zstd" in columns else _EVENTS
        for window in self.sessions:
            self._session(conn, query, window)

    def _session(self, conn: sqlite3.Connection, query: str, window: SessionWindow) -> None:
        before = self.progress.get(window.session_id, SessionProgress(-1))
        interpreter = EntryInterpreter(self.names, in_flush=before.in_flush)
        last_seq = before.last_seq
        session = (window.session_key, window.session_id)
        try:
            for seq, text, blob in conn.execute(query, (window.session_id, before.last_seq)):
                source = SqliteSource(self.db_path, window.session_id, seq)
                entry = self._decode(text, blob, source)
                if entry is not None:
                    self.found.add(entry, interpreter, session, source)
                last_seq = seq
        finally:
            if last_seq != before.last_seq:
                self.progress[window.session_id] = SessionProgress(last_seq, interpreter.in_flush)

    def _decode(self, text: Any, blob: Any, source: SqliteSource) -> dict[str, Any] | None:
        try:
            if isinstance(blob, bytes) and blob:  # compressed: event_json may be '' beside it
                with self._decompressor.stream_reader(blob) as stream:
                    data = stream.read(MAX_ROW_BYTES + 1)
                if len(data) > MAX_ROW_BYTES:
                    reason, kind = SkipReason.OVERSIZED, ProblemKind.OVERSIZED_LINE
                    self.found.skip(source, reason, kind, "decompressed row too large")
                    return None
                text = data
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            entry = json.loads(text) if isinstance(text, str) else None
        except (zstandard.ZstdError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            detail = str(exc)[:200]
            self.found.skip(source, SkipReason.MALFORMED, ProblemKind.BAD_ROW, detail)
            return None
        if not isinstance(entry, dict):
            detail = "neither event_json nor event_zstd holds a JSON object"
            self.found.skip(source, SkipReason.MALFORMED, ProblemKind.BAD_ROW, detail)
            return None
        return entry


def row_data(
    text: Any, compressed: Any, decompressor: zstandard.ZstdDecompressor
) -> str | bytes | None:
    """A row's event as stored, for the scanners that read rows themselves (mistakes, usage):
    ``event_json``, else ``event_zstd`` decompressed; None when neither is readable."""
    if isinstance(text, str | bytes):
        return text
    if not isinstance(compressed, bytes):
        return None
    try:
        with decompressor.stream_reader(compressed) as stream:
            data = stream.read(MAX_ROW_BYTES + 1)
    except zstandard.ZstdError:
        return None
    return data if len(data) <= MAX_ROW_BYTES else None


def _sessions(conn: sqlite3.Connection, tables: set[str]) -> list[SessionWindow]:
    """Sessions in chain order; sessions with events but no window row come last, keyless."""
    windows = list(_windows(conn)) if "session_windows" in tables else []
    known = {w.session_id for w in windows}
    current: dict[str, str] = {}
    if "session_nodes" in tables:
        current = dict(conn.execute("SELECT current_session_id, session_key FROM session_nodes"))
    for (session_id,) in conn.execute("SELECT DISTINCT session_id FROM transcript_events"):
        if session_id not in known:
            windows.append(SessionWindow(session_id, current.get(session_id)))
            known.add(session_id)
    return windows


def _windows(conn: sqlite3.Connection) -> Iterator[SessionWindow]:
    for session_id, key, previous, reason in conn.execute(_WINDOWS):
        yield SessionWindow(session_id, key, previous, reason)
