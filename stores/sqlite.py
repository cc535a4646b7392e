"""Opening the daemon's own SQLite databases the same way everywhere.

WAL so that readers never wait on the writer, a busy timeout so that two writers queue instead
of failing, files created 0600 before SQLite touches them, and a schema version checked on open.
A file that is not a database is never overwritten: it is moved aside and reported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stores.atomic import PRIVATE_FILE


class CorruptDatabase(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not a usable SQLite database ({reason})")
        self.path = path


class IncompatibleDatabase(Exception):
    """Written by a newer version: left alone, and the daemon refuses to start on it."""


#: Bytes a database's write-ahead log keeps on disk once checkpointed.
WAL_LIMIT = 1 << 20


def connect(path: Path, schema: str, version: int) -> sqlite3.Connection:
    """Open (creating if needed) a database and bring its schema to ``version``."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # After each checkpoint the WAL is cut back to this; else it keeps its largest size
        # (~4 MiB a store under a steady trickle of writes, for good).
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > version:
            raise IncompatibleDatabase(
                f"{path}: schema {current} is newer than this version ({version}) knows;"
                " upgrade openclaw-infra"
            )
        if current < version:
            # executescript commits whatever is open first, so the script is its own transaction.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{schema}\nPRAGMA user_version = {int(version)};\nCOMMIT;"
            )
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_corruption(exc):
            raise CorruptDatabase(path, str(exc)) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """The file is damaged or not a database; not a busy, full or unreadable disk."""
    name = getattr(exc, "sqlite_errorname", "")
    return (
        name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or type(exc) is sqlite3.DatabaseError
    )


_INCREMENTAL = 2  # PRAGMA auto_vacuum


@dataclass(frozen=True)
class Reclaimed:
    bytes_before: int
    bytes_after: int
    how: str

    def to_dict(self) -> dict[str, object]:
        return {"bytes_before": self.bytes_before, "bytes_after": self.bytes_after, "how": self.how}


class Database:
    """One of the daemon's databases: one connection, serialised by a lock, rows by name.
    A subclass names its ``SCHEMA`` and ``SCHEMA_VERSION``. ``probe_writable`` (a real write, so
    that a read-only or full disk shows up in health) needs the schema's ``probe`` table."""

    SCHEMA: str
    SCHEMA_VERSION: int

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, self.SCHEMA, self.SCHEMA_VERSION)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def file_bytes(self) -> int:
        """The database and its write-ahead log, as they lie on disk."""
        return sum(
            Path(f"{self.path}{suffix}").stat().st_size
            for suffix in ("", "-wal")
            if Path(f"{self.path}{suffix}").exists()
        )

    def reclaim(self, *, min_bytes: int = 1 << 20, min_share: float = 0.2) -> Reclaimed:
        """Give back the space of deleted rows when there is enough of it to matter: ``VACUUM``
        the first time (switching the file to incremental auto-vacuum), an incremental vacuum
        after that; then the write-ahead log is truncated. A full rewrite needs room for a
        copy; without it nothing is done and the result says so."""
        before = self.file_bytes()
        with self._lock:
            pages, free, size = (
                self._conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("page_count", "freelist_count", "page_size")
            )
            if free * size < min_bytes or free < min_share * pages:
                return Reclaimed(before, before, "not worth it")
            if self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
                # Stepped to the end by executescript; execute() frees one page per step.
                self._conn.executescript("PRAGMA incremental_vacuum;")
                how = "incremental vacuum"
            elif shutil.disk_usage(self.path.parent).free < 2 * pages * size:
                return Reclaimed(before, before, "no room on disk for a vacuum")
            else:
                self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._conn.execute("VACUUM")
                how = "vacuum"
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return Reclaimed(before, self.file_bytes(), how)

    def probe_writable(self, at: datetime) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)",
                (at.astimezone(UTC).isoformat(),),
            )


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def quarantine(path: Path, now: datetime | None = None) -> Path:
    """Move a broken database (and its WAL files) aside, keeping it for inspection."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            source.rename(Path(str(target) + suffix))
    return target
