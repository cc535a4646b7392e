"""Transcripts in OpenClaw's current layout: ``agents/<id>/agent/openclaw-agent.sqlite``.

The database belongs to a running OpenClaw, so it is opened read-only (``mode=ro``, and
``query_only`` besides) and read inside one transaction, which gives a consistent snapshot
while OpenClaw keeps writing through its WAL. Each session's rows come in ``seq`` order after
the last ``seq`` read before; ``session_windows`` (``session_entries`` before schema 14) gives
a session its key. A row may be stored compressed (``event_zstd``, schema 23). OpenClaw may
rewrite a session's rows in place (``openclaw doctor`` relabelling old text): a new generation
in ``transcript_rewrite_watermarks`` makes the session be read again, and entries already
stored are recognised by their ids. Deleted and cold-stored sessions are read from their
archives (``stores.openclaw.archives``), each once.

Releases before 2026.7.2 have the same file without transcripts (``user_version`` 1): that is
a home with its transcripts elsewhere, not a problem. A damaged file or a busy lock is a
reported problem, never an exception.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import zstandard

from stores.openclaw.archives import Archive, ArchiveError, cold_archives, deleted_archives
from stores.openclaw.entries import EntryInterpreter, Names
from stores.openclaw.problems import Problem, ProblemKind, Skipped, SkipReason
from stores.openclaw.turns import SqliteSource, Turn, TurnCollector
from stores.sqlite import is_corruption

#: Schema 4 (2026.7.2) moved the transcripts into the database.
MIN_SCHEMA = 4
#: A decompressed row larger than this is not a transcript entry.
MAX_ROW_BYTES = 32 * 1024 * 1024

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
    skipping: SkipReason | None = None
    #: ``transcript_rewrite_watermarks.generation`` when the session was read.
    generation: str | None = None


@dataclass(frozen=True)
class SqliteCheckpoint:
    sessions: Mapping[str, SessionProgress] = field(default_factory=dict)
    #: Archives read (by name): each is final, read once.
    archives: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": {
                sid: [p.last_seq, p.skipping, p.generation] for sid, p in self.sessions.items()
            },
            "archives": sorted(self.archives),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SqliteCheckpoint:
        sessions = data.get("sessions")
        if not isinstance(sessions, dict):  # written before archives were read
            sessions = {k: v for k, v in data.items() if isinstance(v, list)}
        return cls(
            {sid: _progress(v) for sid, v in sessions.items()},
            frozenset(data.get("archives") or ()),
        )


def _progress(value: list[Any]) -> SessionProgress:
    skipping = value[1] if len(value) > 1 else None
    if skipping is True:  # older checkpoints: the memory flush was the only skipped turn
        skipping = SkipReason.MEMORY_FLUSH
    elif not isinstance(skipping, str) or skipping not in SkipReason._value2member_map_:
        skipping = None
    generation = value[2] if len(value) > 2 and isinstance(value[2], str) else None
    return SessionProgress(int(value[0]), SkipReason(skipping) if skipping else None, generation)


@dataclass(frozen=True)
class SqliteRead:
    turns: tuple[Turn, ...]
    checkpoint: SqliteCheckpoint
    #: Every session of the database, oldest first, with its place in the chain.
    sessions: tuple[SessionWindow, ...] = ()
    problems: tuple[Problem, ...] = ()
    skipped: Skipped = field(default_factory=Skipped)
    #: The database holds transcripts (releases before 2026.7.2 keep them in JSONL files).
    has_transcripts: bool = True


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
        self.archives = set(checkpoint.archives)
        self.sessions: list[SessionWindow] = []
        self.found = TurnCollector(agent_id)
        self.has_transcripts = True
        self._decompressor = zstandard.ZstdDecompressor()

    def result(self) -> SqliteRead:
        found = self.found
        return SqliteRead(
            tuple(found.turns),
            SqliteCheckpoint(self.progress, frozenset(self.archives)),
            tuple(self.sessions),
            tuple(found.problems),
            found.skipped,
            self.has_transcripts,
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
        if "transcript_events" not in tables:
            self.has_transcripts = False
            if version >= MIN_SCHEMA:
                detail = f"schema version {version} but no transcript_events table; not read"
                problem = Problem(str(self.db_path), ProblemKind.OLD_SCHEMA, detail)
                self.found.problems.append(problem)
            return
        self.sessions = _sessions(conn, tables)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(transcript_events)")}
        query = _EVENTS_ZSTD if "event_zstd" in columns else _EVENTS
        generations = _generations(conn, tables)
        for window in self.sessions:
            self._session(conn, query, window, generations.get(window.session_id))
        if "session_transcript_archives" in tables:
            self._archives(deleted_archives(conn))
        if "session_transcript_cold_archives" in tables:
            self._archives(cold_archives(conn, self.db_path.parent.parent / "sessions"))

    def _session(
        self, conn: sqlite3.Connection, query: str, window: SessionWindow, generation: str | None
    ) -> None:
        before = self.progress.get(window.session_id, SessionProgress(-1))
        if before.generation != generation and before.last_seq >= 0:
            # Rewritten in place: read it again; entries already stored are known by id.
            before = SessionProgress(-1, None, generation)
        interpreter = EntryInterpreter(self.names, skipping=before.skipping)
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
            after = SessionProgress(last_seq, interpreter.skipping, generation)
            if after != before or window.session_id not in self.progress:
                self.progress[window.session_id] = after

    def _archives(self, archives: Iterable[Archive]) -> None:
        for archive in archives:
            key = f"{archive.name}#{archive.sha256}"
            if key in self.archives:
                continue
            before = self.progress.get(archive.session_id, SessionProgress(-1))
            if archive.last_seq is not None and archive.last_seq <= before.last_seq:
                self.archives.add(key)  # a cold copy of rows read while they were live
                continue
            interpreter = EntryInterpreter(self.names)
            session = (archive.session_key, archive.session_id)
            try:
                for position, (seq, entry) in enumerate(archive.events()):
                    source = SqliteSource(self.db_path, archive.session_id, seq or position)
                    if isinstance(entry, ArchiveError):
                        self.found.skip(
                            source, SkipReason.MALFORMED, ProblemKind.BAD_ROW, str(entry)
                        )
                    elif isinstance(entry, dict) and (seq is None or seq > before.last_seq):
                        self.found.add(entry, interpreter, session, source)
            except ArchiveError as exc:
                where = f"{self.db_path}#{archive.name}"
                self.found.problems.append(Problem(where, ProblemKind.UNREADABLE, str(exc)))
                continue
            self.archives.add(key)
            if archive.last_seq is not None:
                self.progress[archive.session_id] = replace(before, last_seq=archive.last_seq)

    def _decode(self, text: Any, blob: Any, source: SqliteSource) -> dict[str, Any] | None:
        try:
            if isinstance(blob, bytes) and blob:  # compressed: event_json is NULL beside it
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
    ``event_zstd`` decompressed when present, else ``event_json``; None when neither reads."""
    if not isinstance(compressed, bytes) or not compressed:
        return text if isinstance(text, str | bytes) else None
    try:
        with decompressor.stream_reader(compressed) as stream:
            data = stream.read(MAX_ROW_BYTES + 1)
    except zstandard.ZstdError:
        return None
    return data if len(data) <= MAX_ROW_BYTES else None


def _sessions(conn: sqlite3.Connection, tables: set[str]) -> list[SessionWindow]:
    """Sessions in chain order; sessions with events but no window row come last."""
    windows = list(_windows(conn, tables))
    known = {w.session_id for w in windows}
    current: dict[str, str] = {}
    if "session_nodes" in tables:
        current = dict(conn.execute("SELECT current_session_id, session_key FROM session_nodes"))
    elif "session_entries" in tables:  # schema 4 to 13
        current = dict(conn.execute("SELECT session_id, session_key FROM session_entries"))
    for (session_id,) in conn.execute("SELECT DISTINCT session_id FROM transcript_events"):
        if session_id not in known:
            windows.append(SessionWindow(session_id, current.get(session_id)))
            known.add(session_id)
    return windows


def _windows(conn: sqlite3.Connection, tables: set[str]) -> Iterator[SessionWindow]:
    if "session_windows" not in tables:
        return
    query = (
        "SELECT session_id, session_key, previous_session_id, reason"
        " FROM session_windows ORDER BY created_at, session_id"
    )
    for session_id, key, previous, reason in conn.execute(query):
        yield SessionWindow(session_id, key, previous, reason)


def _generations(conn: sqlite3.Connection, tables: set[str]) -> dict[str, str]:
    if "transcript_rewrite_watermarks" not in tables:
        return {}
    query = "SELECT session_id, generation FROM transcript_rewrite_watermarks"
    return {sid: str(gen) for sid, gen in conn.execute(query)}
