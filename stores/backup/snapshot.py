"""A consistent copy of what a backup saves, into a staging directory beside the archives.

Chroma's SQLite file and its HNSW segment files must match each other, and both must match
memory.sqlite (which rows have vectors): a live copy of them is not safe. So they are copied
while the memory store's writers are paused (``MemoryStore.writes_paused``): writers wait, they
do not fail, and the pause lasts as long as a local copy, not as long as compression. Every
SQLite database is copied with SQLite's online backup API (``Connection.backup``) from a
read-only connection, so a database in use (the run log, an OpenClaw database) is copied as
one consistent state without pausing anyone.

The archive is then built from the staging directory at leisure.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from stores.atomic import PRIVATE_DIR, PRIVATE_FILE
from stores.backup.manifest import FileEntry, MemoryCounts, Pause, Skipped
from stores.backup.select import Item, Selection

CHUNK = 1 << 20
Advance = Callable[[int], None]
PauseWriters = Callable[[], AbstractContextManager[None]]

NOT_OPEN = "the memory store is not open, so no writer could run: copied without a pause"
#: How SQLite reports a write the disk refused: SQLITE_FULL for a full disk, an I/O error for a
#: quota or a file size limit (EDQUOT, EFBIG); both mean the copy did not fit.
DISK_REFUSED = frozenset(
    {"SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE"}
)


@dataclass
class Snapshot:
    entries: list[FileEntry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pause: Pause = field(default_factory=lambda: Pause(paused=False))
    schema: dict[str, int] = field(default_factory=dict)
    memory: MemoryCounts | None = None
    #: sha256 and size of the files hashed while they were copied.
    digests: dict[str, tuple[str, int]] = field(default_factory=dict)


def take_snapshot(
    selection: Selection,
    staging: Path,
    pause_writers: PauseWriters | None,
    advance: Advance = lambda n: None,
) -> Snapshot:
    """Copy every selected file into ``staging`` (which must not exist yet)."""
    staging.mkdir(mode=PRIVATE_DIR)
    snapshot = Snapshot()
    together = [i for i in selection.items if i.paused]
    alone = [i for i in selection.items if not i.paused]
    copied: list[Item] = []
    if pause_writers is None:
        copied += _copy_all(together, staging, snapshot, advance, hashing=True)
        snapshot.pause = Pause(paused=False, note=NOT_OPEN if together else "")
    else:
        asked = time.perf_counter()
        with pause_writers():
            held = time.perf_counter()
            copied += _copy_all(together, staging, snapshot, advance, hashing=False)
            released = time.perf_counter()
        snapshot.pause = Pause(
            paused=True,
            waited_ms=round((held - asked) * 1000, 2),
            held_ms=round((released - held) * 1000, 2),
        )
    copied += _copy_all(alone, staging, snapshot, advance, hashing=True)
    for item in sorted(copied, key=lambda i: i.arcname):
        snapshot.entries.append(_entry(item, staging, snapshot.digests))
    _read_sqlite_facts(staging, snapshot)
    return snapshot


def _copy_all(
    items: list[Item], staging: Path, snapshot: Snapshot, advance: Advance, *, hashing: bool
) -> list[Item]:
    """Copy ``items``; plain files are hashed on the way when ``hashing`` (not while writers
    wait: the copy is then as short as the kernel makes it, and hashed afterwards)."""
    done = []
    for item in items:
        target = staging / item.arcname
        target.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        try:
            if item.kind == "sqlite":
                copy_sqlite(item.source, target)
            elif hashing:
                snapshot.digests[item.arcname] = _copy_hashing(item.source, target)
            else:
                _copy_file(item.source, target)
        except FileNotFoundError:
            if item.arcname.startswith("state/"):
                raise
            snapshot.skipped.append(Skipped(path=item.arcname, reason="vanished while copying"))
            continue
        except PermissionError as exc:
            snapshot.skipped.append(Skipped(path=item.arcname, reason=f"unreadable: {exc}"))
            continue
        advance(item.size)
        done.append(item)
    return done


def copy_sqlite(source: Path, target: Path) -> None:
    """One consistent state of a database, even one being written, through a read-only
    connection; the copy is left in rollback-journal mode, self-contained (no -wal)."""
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    try:
        with (
            contextlib.closing(read_only(source, timeout=30.0)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", None) in DISK_REFUSED:
            # An OSError like any other full-disk write, so the backup reports it as one.
            raise OSError(errno.ENOSPC, f"SQLite: {exc}", str(target)) from exc
        raise


def read_only(path: Path, *, timeout: float = 5.0, immutable: bool = False) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(path)
    flags = "mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(f"file:{quote(str(path))}?{flags}", uri=True, timeout=timeout)


def _copy_file(source: Path, target: Path) -> None:
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    with open(fd, "wb") as out, source.open("rb") as src:
        shutil.copyfileobj(src, out, CHUNK)


def _copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    with open(fd, "wb") as out, source.open("rb") as src:
        while block := src.read(CHUNK):
            out.write(block)
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _entry(item: Item, staging: Path, known: dict[str, tuple[str, int]]) -> FileEntry:
    digest, size = known.get(item.arcname) or file_sha256(staging / item.arcname)
    return FileEntry(path=item.arcname, size=size, sha256=digest, kind=item.kind)


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _read_sqlite_facts(staging: Path, snapshot: Snapshot) -> None:
    """Schema versions of every copy, and what the memory.sqlite copy holds."""
    for entry in snapshot.entries:
        if entry.kind == "sqlite":
            with contextlib.closing(read_only(staging / entry.path)) as conn:
                snapshot.schema[entry.path] = int(conn.execute("PRAGMA user_version").fetchone()[0])
    memory = staging / "state" / "memory.sqlite"
    if memory.is_file() and snapshot.schema.get("state/memory.sqlite", 0) > 0:
        snapshot.memory = memory_counts(memory)


def memory_counts(path: Path) -> MemoryCounts:
    with contextlib.closing(read_only(path)) as conn:

        def count(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        return MemoryCounts(
            chunks=count("SELECT COUNT(*) FROM chunks"),
            embedded=count("SELECT COUNT(*) FROM chunks WHERE embedded = 1"),
            turns=count("SELECT COUNT(*) FROM turns"),
            vector_deletes=count("SELECT COUNT(*) FROM vector_deletes"),
        )
