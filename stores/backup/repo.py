"""The backup directory: which backups exist, leftovers of unfinished ones, retention.

A backup exists once its beside manifest (``<name>.manifest.json``) is in place; it is written
last, after the archive has been fsynced and renamed. Everything in progress has a name starting
with a dot (``.staging-<name>/``, ``.<archive>.partial``, ``.verify-*/``), which ``list`` never
shows. Whatever a killed backup left is removed by the next one, under the directory's lock.
Scratch directories of a verify or restore drill carry their own lock while in use, so only
those whose owner is gone are removed; a file whose name is not one of ours is never touched.

The beside manifest is data read from disk, not trusted to name paths: its ``archive`` must be
the name this backup's archive has (``archive_name``), or the backup is listed with a problem and
only paths inside the directory derived from its own name are ever read or removed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
from pydantic import ValidationError

from stores.atomic import atomic_write_bytes, ensure_private_dir, fsync_dir
from stores.backup.config import Retention
from stores.backup.errors import BackupBusy, BackupNotFound
from stores.backup.manifest import (
    BESIDE_SUFFIX,
    NAME,
    PREFIX,
    VERIFIED_SUFFIX,
    Beside,
    Verification,
    archive_name,
)
from stores.backup.retention import Plan, Point, plan

LOCK = ".lock"
SCRATCH_LOCK = ".owner.lock"
ARCHIVE_SUFFIXES = (".tar.zst", ".tar.gz", ".tar.zst.age", ".tar.gz.age")

_STEM = NAME.pattern.removeprefix("^").removesuffix("$")
_ARCHIVE = "|".join(re.escape(s) for s in ARCHIVE_SUFFIXES)
_OWN = "|".join(re.escape(s) for s in (BESIDE_SUFFIX, VERIFIED_SUFFIX))
#: What a backup, verify or drill writes here while at work (``atomic_write_bytes`` names its
#: temporary files ``.<target>.<random>.tmp``; ``tempfile.mkdtemp`` adds random letters).
IN_PROGRESS = re.compile(
    rf"^(?:\.staging-{_STEM}|\.(?:verify|drill)-[a-z0-9_]+"
    rf"|\.{_STEM}(?:{_ARCHIVE})\.partial|\.{_STEM}(?:{_OWN})\.[a-z0-9_]+\.tmp)$"
)
#: A backup's files other than its beside manifest: leftovers when that manifest is missing.
BACKUP_FILE = re.compile(rf"^(?P<name>{_STEM})(?:{_ARCHIVE}|{re.escape(VERIFIED_SUFFIX)})$")


@dataclass(frozen=True)
class BackupInfo:
    name: str
    created_at: datetime
    beside_path: Path
    archive: Path
    beside: Beside | None = None
    verification: Verification | None = None
    #: Why this backup cannot be trusted as listed (unreadable manifest, missing archive).
    problem: str | None = None

    @property
    def verified(self) -> bool | None:
        if self.problem is not None:
            return False
        return self.verification.ok if self.verification else None

    def archive_changed(self) -> bool:
        """The archive is not the size it was written at: damaged, truncated or replaced since
        (a stat, not a verify: a change that keeps the size shows only to ``backup verify``)."""
        if self.beside is None or self.problem is not None:
            return False
        try:
            return self.archive.stat().st_size != self.beside.archive_size
        except OSError:
            return True

    def to_dict(self) -> dict[str, Any]:
        beside = self.beside
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "archive": str(self.archive),
            "size": beside.archive_size if beside else None,
            "files": beside.files if beside else None,
            "bytes": beside.data_bytes if beside else None,
            "compression": beside.compression if beside else None,
            "encrypted": bool(beside and beside.encryption),
            "pause_ms": beside.manifest.pause.held_ms if beside and beside.manifest else None,
            "verified": self.verified,
            "verified_at": self.verification.at.isoformat() if self.verification else None,
            "verified_by": self.verification.by if self.verification else None,
            "manual": bool(beside and beside.manual),
            "archive_changed": self.archive_changed(),
            "verify_problems": self.verification.problems if self.verification else [],
            "problem": self.problem,
        }


class BackupDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"BackupDir({str(self.path)!r})"

    def ensure(self) -> BackupDir:
        ensure_private_dir(self.path)
        return self

    # --- what exists -----------------------------------------------------------------------

    def backups(self) -> list[BackupInfo]:
        """Complete backups, newest first."""
        if not self.path.is_dir():
            return []
        found = [
            self._info(p.name.removesuffix(BESIDE_SUFFIX), p)
            for p in self.path.glob(PREFIX + "*" + BESIDE_SUFFIX)
            if NAME.match(p.name.removesuffix(BESIDE_SUFFIX))
        ]
        return sorted(found, key=lambda b: (b.created_at, b.name), reverse=True)

    def get(self, name: str | None = None) -> BackupInfo:
        """A backup by name; None: the newest."""
        backups = self.backups()
        if name is None:
            if not backups:
                raise BackupNotFound(
                    f"no backups in {self.path}; make one with `infractl backup now`"
                )
            return backups[0]
        for backup in backups:
            if backup.name == name:
                return backup
        raise BackupNotFound(f"no backup named {name} in {self.path}")

    def _info(self, name: str, beside_path: Path) -> BackupInfo:
        stamped = _time_of(name)
        try:
            beside = Beside.model_validate_json(beside_path.read_bytes())
        except (OSError, ValidationError, ValueError) as exc:
            return BackupInfo(
                name,
                stamped,
                beside_path,
                self._archive_guess(name),
                problem=f"{beside_path.name}: unreadable ({_first_line(exc)})",
            )
        archive, problem = self._archive_of(name, beside)
        if problem is None and not archive.is_file():
            problem = f"{archive.name}: missing"
        if beside.name != name:
            problem = f"{beside_path.name}: names another backup ({beside.name})"
        return BackupInfo(
            name,
            beside.created_at,
            beside_path,
            archive,
            beside,
            self._verification(name),
            problem,
        )

    def _archive_of(self, name: str, beside: Beside) -> tuple[Path, str | None]:
        """The archive's path, always the expected name in this directory: a beside manifest
        naming another (``../victim.txt``) would have prune delete, and verify read, that."""
        expected = archive_name(name, beside.compression, beside.encryption is not None)
        if beside.archive == expected:
            return self.path / expected, None
        return self.path / expected, (
            f"{name}{BESIDE_SUFFIX}: names the archive {beside.archive!r}, not {expected};"
            " damaged or tampered, that file is never read or removed"
        )

    def _archive_guess(self, name: str) -> Path:
        for suffix in ARCHIVE_SUFFIXES:
            if (self.path / (name + suffix)).exists():
                return self.path / (name + suffix)
        return self.path / (name + ARCHIVE_SUFFIXES[0])

    def _verification(self, name: str) -> Verification | None:
        try:
            return Verification.model_validate_json(
                (self.path / (name + VERIFIED_SUFFIX)).read_bytes()
            )
        except (OSError, ValidationError, ValueError):
            return None

    def new_name(self, now: datetime) -> str:
        stem = PREFIX + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        taken = {
            p.name.lstrip(".").removeprefix("staging-").split(".")[0] for p in self.path.iterdir()
        }
        name, n = stem, 1
        while name in taken:
            name, n = f"{stem}-{n}", n + 1
        return name

    # --- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, timeout: float = 0) -> Iterator[None]:
        lock = filelock.FileLock(self.path / LOCK, mode=0o600)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise BackupBusy(
                f"another backup or prune is using {self.path} (it holds {LOCK}); try again later"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def commit(self, temp_archive: Path, beside: Beside, verification: Verification) -> BackupInfo:
        """Make a written and checked archive a backup: rename it, record its verification,
        then write the beside manifest, the step after which it is listed. All or nothing: if a
        step after the rename fails (a full disk), what it made is removed again, so that the
        error can truthfully say that nothing of the backup was kept."""
        archive = self.path / beside.archive
        temp_archive.rename(archive)
        try:
            self.record(beside.name, verification)
            atomic_write_bytes(self.path / (beside.name + BESIDE_SUFFIX), beside.encoded())
            fsync_dir(self.path)
            return self.get(beside.name)
        except BaseException:
            self.forget(beside.name, archive)
            raise

    def forget(self, name: str, archive: Path) -> None:
        """Remove a backup that is not complete: the manifest first, so it is never listed
        without its archive. Best effort: what stays is removed as a leftover next time."""
        for path in (
            self.path / (name + BESIDE_SUFFIX),
            archive,
            self.path / (name + VERIFIED_SUFFIX),
        ):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fsync_dir(self.path)

    def record(self, name: str, verification: Verification) -> None:
        atomic_write_bytes(
            self.path / (name + VERIFIED_SUFFIX), verification.model_dump_json().encode()
        )

    def remove(self, backup: BackupInfo) -> None:
        """The manifest first: a backup half removed is no longer listed, and is cleaned up."""
        for path in (
            backup.beside_path,
            backup.archive,
            self.path / (backup.name + VERIFIED_SUFFIX),
        ):
            path.unlink(missing_ok=True)
        fsync_dir(self.path)

    def plan(self, retention: Retention, now: datetime) -> Plan:
        """What a prune now would keep (and why) and remove; nothing is touched."""
        return plan(_points(self.backups()), retention, now)

    def prune(self, retention: Retention, now: datetime, *, dry_run: bool = False) -> Plan:
        backups = self.backups()
        decided = plan(_points(backups), retention, now)
        if not dry_run:
            doomed = set(decided.remove)
            for backup in backups:
                if backup.name in doomed:
                    self.remove(backup)
        return decided

    # --- leftovers and scratch space -------------------------------------------------------

    def clean_leftovers(self) -> list[str]:
        """Remove what unfinished backups left; call with the lock held."""
        listed = {p.name.removesuffix(BESIDE_SUFFIX) for p in self.path.glob("*" + BESIDE_SUFFIX)}
        removed = []
        for path in sorted(self.path.iterdir()):
            if _is_leftover(path, listed) and _remove_if_unowned(path):
                removed.append(path.name)
        return removed

    @contextlib.contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A private directory for a verify or a drill, removed afterwards; it carries a lock
        while in use, so that a concurrent clean-up leaves it alone."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))
        lock = filelock.FileLock(path / SCRATCH_LOCK, mode=0o600)
        lock.acquire()
        try:
            yield path
        finally:
            lock.release()
            shutil.rmtree(path, ignore_errors=True)


def _is_leftover(path: Path, listed: set[str]) -> bool:
    """Only names this module's writers give: the directory may hold files of others."""
    if IN_PROGRESS.match(path.name):
        return True
    ours = BACKUP_FILE.match(path.name)
    return ours is not None and ours["name"] not in listed


def _remove_if_unowned(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():
        lock = filelock.FileLock(path / SCRATCH_LOCK, mode=0o600)
        if (path / SCRATCH_LOCK).exists():
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                return False  # a verify or drill is using it
            lock.release()
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return True


def _points(backups: list[BackupInfo]) -> list[Point]:
    return [
        Point(
            b.name,
            b.created_at,
            b.verified,
            readable=b.problem is None,
            manual=bool(b.beside and b.beside.manual),
        )
        for b in backups
    ]


def _time_of(name: str) -> datetime:
    stamp = name.removeprefix(PREFIX)[:16]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
