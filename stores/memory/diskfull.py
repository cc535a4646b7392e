"""A write that failed because the state directory's disk is full, said as such.

A full disk surfaces as whatever the writer says: SQLite's "database or disk is full", an
``OSError`` with ENOSPC, or, from Chroma, "Error in compaction: Failed to apply logs to the
metadata segment", which names neither the disk nor the directory. The store runs its writes
under :func:`full_disk_named`: a failure that is ENOSPC, or any write failure while the disk
has almost nothing left, becomes one :class:`DiskFull` that names the directory and the bytes
free, so a person knows what to do.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

#: Below this, a write failure of any wording is taken for a full disk: Chroma and SQLite need
#: room for their logs and journals well before the last byte goes.
LOW_FREE_BYTES = 64 * 2**20
_SQLITE_FULL = 13


class DiskFull(Exception):
    """The state directory's disk is full; the message is one line and says what to do."""

    def __init__(self, state_dir: Path, free: int | None, cause: BaseException) -> None:
        room = f"{free:,} bytes free" if free is not None else "free space unknown"
        detail = str(cause).splitlines()[0][:160] if str(cause) else type(cause).__name__
        super().__init__(
            f"the disk holding the state directory {state_dir} is full ({room}): the memory"
            f" could not be written ({detail}); free some space there, what was stored before"
            " is kept"
        )
        self.state_dir = state_dir
        self.free = free


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def says_disk_full(exc: BaseException) -> bool:
    """The error itself says the disk is full, whatever the free space now (a big write may
    have failed where a small one would fit)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text


def as_disk_full(exc: BaseException, state_dir: Path) -> DiskFull | None:
    if isinstance(exc, DiskFull):
        return exc
    free = free_bytes(state_dir)
    if says_disk_full(exc) or (free is not None and free < LOW_FREE_BYTES):
        return DiskFull(state_dir, free, exc)
    return None


@contextlib.contextmanager
def full_disk_named(state_dir: Path) -> Iterator[None]:
    """Run a write; a failure from a full disk comes out as :class:`DiskFull`."""
    try:
        yield
    except Exception as exc:
        full = as_disk_full(exc, state_dir)
        if full is None or full is exc:
            raise
        raise full from exc
