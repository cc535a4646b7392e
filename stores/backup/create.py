"""Making one backup: snapshot -> archive -> verify -> commit -> prune.

1. Under the backup directory's lock, remove what a killed backup left (staging, partial archive).
2. Copy what is saved into ``.staging-<name>/`` (``backup_snapshot``: the memory store's files
   while its writers wait, every SQLite database through the online backup API).
3. Write the archive to ``.<archive>.partial``, fsync it; remove the staging directory.
4. Read it back into scratch space and check it as ``verify`` does; a backup that does not
   verify is not kept.
5. Rename the archive, record the verification, write the beside manifest: now it is listed.
6. Apply retention.

Any failure up to and including 5 removes everything this run wrote (a full disk included) and
says why; the earlier backups are never touched before 6, and 6 never removes the newest
verified backup.

A run is cancelled through ``stop`` (a ``threading.Event``; the job sets it when its await is
cancelled, since asyncio cannot stop the thread itself): the progress callback checks it between
files and chunks and raises ``BackupCancelled``, which removes what was written like any other
failure, releases the writers and the directory's lock, and never reaches 5 or 6.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import shutil
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stores.backup.archive import (
    Advance,
    Meter,
    OpenOutput,
    Written,
    begin,
    open_new,
    stop_point,
    write_archive,
)
from stores.backup.checks import vector_problems
from stores.backup.config import BackupConfig
from stores.backup.crypto import Keys
from stores.backup.errors import BackupError, DiskFull, no_room
from stores.backup.manifest import (
    BESIDE_SUFFIX,
    Beside,
    Manifest,
    Verification,
    Versions,
    archive_name,
    sha256_hex,
)
from stores.backup.repo import BackupDir, BackupInfo
from stores.backup.retention import Plan
from stores.backup.select import Selection, Workspace, select
from stores.backup.snapshot import PauseWriters, Snapshot, take_snapshot
from stores.backup.verify import CopyReport, restore_and_check

#: A prune holds the directory's lock for moments; a backup waits that long for it at most.
LOCK_WAIT_S = 60.0
#: Copies taken before a backup whose vectors do not agree with its rows gives up.
SNAPSHOT_ATTEMPTS = 3


@dataclass(frozen=True)
class Sources:
    """Where the saved files are, as the daemon knows it."""

    state_dir: Path
    openclaw_home: Path | None = None
    workspaces: Sequence[Workspace] = ()
    databases: Mapping[str, Path] = field(default_factory=dict)
    notes: Sequence[str] = ()


@dataclass
class Created:
    backup: BackupInfo
    manifest: Manifest
    check: CopyReport
    archive_size: int
    leftovers: list[str]
    pruned: Plan | None
    timings_ms: dict[str, float]


def create_backup(
    config: BackupConfig,
    sources: Sources,
    *,
    pause_writers: PauseWriters | None,
    now: datetime,
    meter: Meter,
    open_output: OpenOutput = open_new,
    probe: bool = True,
    prune: bool = True,
    stop: threading.Event | None = None,
    manual: bool = False,
) -> Created:
    """``manual``: a person asked for it; the retention rule for those keeps it."""
    repo = BackupDir(config.dir).ensure()
    keys = Keys(config.passphrase, config.key_file)
    with repo.locked(timeout=LOCK_WAIT_S):
        leftovers = repo.clean_leftovers()
        name = repo.new_name(now)
        run = _Run(config, repo, keys, name, now, stop=stop, manual=manual)
        try:
            created = run.make(sources, pause_writers, meter, open_output, probe)
        except OSError as exc:
            run.discard()
            raise _failure(exc, repo, name, run.remains()) from exc
        except BaseException:
            run.discard()
            raise
        created.leftovers = leftovers
        if prune and not (stop is not None and stop.is_set()):
            meter.phase = "prune"
            created.pruned = repo.prune(config.retention, now)
    return created


class _Run:
    def __init__(
        self,
        config: BackupConfig,
        repo: BackupDir,
        keys: Keys,
        name: str,
        now: datetime,
        *,
        stop: threading.Event | None = None,
        manual: bool = False,
    ) -> None:
        self.config = config
        self.stop = stop
        self.manual = manual
        self.repo = repo
        self.keys = keys
        self.name = name
        self.now = now.astimezone(UTC)
        self.archive = archive_name(name, config.compression, keys.encrypting)
        self.staging = repo.path / f".staging-{name}"
        self.partial = repo.path / f".{self.archive}.partial"

    def make(
        self,
        sources: Sources,
        pause_writers: PauseWriters | None,
        meter: Meter,
        open_output: OpenOutput,
        probe: bool,
    ) -> Created:
        timings: dict[str, float] = {}
        began = time.perf_counter()
        selection = select(
            sources.state_dir,
            self.repo.path,
            openclaw_home=sources.openclaw_home,
            workspaces=sources.workspaces,
            databases=sources.databases,
            include=self.config.include,
            exclude=self.config.exclude,
        )
        notes = list(sources.notes)
        snapshot = self._snapshot(selection, pause_writers, meter, probe, notes)
        manifest = self._manifest(selection, snapshot, notes)
        timings["snapshot_ms"] = _since(began)
        written, beside = self._archive(manifest, meter, open_output)
        timings["archive_ms"] = _since(began) - timings["snapshot_ms"]
        shutil.rmtree(self.staging)
        check = self._check(beside, meter, probe)
        timings["verify_ms"] = _since(began) - timings["snapshot_ms"] - timings["archive_ms"]
        stop_point(self.stop)  # the last moment a cancelled run can leave no backup behind
        verified = Verification(ok=True, at=self.now, by="backup")
        backup = self.repo.commit(self.partial, beside, verified)
        return Created(backup, manifest, check, written.size, [], None, timings)

    def _snapshot(
        self,
        selection: Selection,
        pause_writers: PauseWriters | None,
        meter: Meter,
        probe: bool,
        notes: list[str],
    ) -> Snapshot:
        """A copy whose vectors agree with its rows. Chroma finishes applying a write after the
        write returns, so a copy taken between two embedding batches can catch its files
        halfway; such a copy is taken again, while nothing has been archived yet."""
        for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
            snapshot = take_snapshot(
                selection,
                self.staging,
                pause_writers,
                self._begin(meter, "snapshot", selection.total_bytes),
            )
            problems = self._copied_vectors() if probe else []
            if not problems:
                return snapshot
            shutil.rmtree(self.staging)
            if attempt == SNAPSHOT_ATTEMPTS:
                break
            notes.append(f"the vectors were copied mid-write ({problems[0]}); copied again")
        raise BackupError(
            f"backup {self.name}: the vector store could not be copied whole in"
            f" {SNAPSHOT_ATTEMPTS} tries ({problems[0]}); nothing was kept"
        )

    def _copied_vectors(self) -> list[str]:
        """The staged vectors checked on a copy of their own: opening Chroma writes to it, and
        the staged files are already hashed for the manifest."""
        state = self.staging / "state"
        if not (state / "chroma").is_dir() or not (state / "memory.sqlite").is_file():
            return []
        with self.repo.scratch(".vectors-") as scratch:
            shutil.copytree(state / "chroma", scratch / "chroma")
            shutil.copy2(state / "memory.sqlite", scratch / "memory.sqlite")
            return vector_problems(scratch)

    def _manifest(self, selection: Selection, snapshot: Snapshot, notes: list[str]) -> Manifest:
        if snapshot.pause.note:
            notes.append(snapshot.pause.note)
        return Manifest(
            name=self.name,
            created_at=self.now,
            compression="gzip" if self.config.compression == "gzip" else "zstd",
            versions=Versions(
                openclaw_infra=_version("openclaw-infra"),
                chromadb=_version("chromadb"),
                python=platform.python_version(),
                sqlite=sqlite3.sqlite_version,
                schema_versions=snapshot.schema,
            ),
            sources=selection.sources,
            files=snapshot.entries,
            skipped=selection.skipped + snapshot.skipped,
            pause=snapshot.pause,
            memory=snapshot.memory,
            notes=selection.notes + notes,
        )

    def _archive(
        self, manifest: Manifest, meter: Meter, open_output: OpenOutput
    ) -> tuple[Written, Beside]:
        recipients, encryption = self.keys.seal() if self.keys.encrypting else ([], None)
        encoded = manifest.encoded()
        written = write_archive(
            self.partial,
            self.staging,
            encoded,
            manifest.files,
            compression=manifest.compression,
            recipients=recipients,
            advance=self._begin(meter, "archive", manifest.total_bytes),
            open_output=open_output,
        )
        beside = Beside(
            name=self.name,
            created_at=self.now,
            archive=self.archive,
            archive_size=written.size,
            archive_sha256=written.sha256,
            compression=manifest.compression,
            encryption=encryption,
            files=len(manifest.files),
            data_bytes=manifest.total_bytes,
            manifest_sha256=sha256_hex(encoded),
            manifest=None if encryption else manifest,
            manual=self.manual,
        )
        return written, beside

    def _check(self, beside: Beside, meter: Meter, probe: bool) -> CopyReport:
        """The archive as written, read back like a restore would, before it is kept."""
        candidate = BackupInfo(
            self.name,
            self.now,
            self.repo.path / (self.name + BESIDE_SUFFIX),
            self.partial,
            beside,
        )
        advance = self._begin(meter, "verify", beside.data_bytes)
        with self.repo.scratch(".verify-") as scratch:
            check = restore_and_check(candidate, self.keys, scratch, advance, probe=probe)
        if not check.ok:
            raise BackupError(
                f"backup {self.name} did not verify and was not kept: "
                + "; ".join(check.problems[:3])
            )
        return check

    def _begin(self, meter: Meter, phase: str, total: int | None) -> Advance:
        return begin(meter, phase, total, self.stop)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.partial.unlink(missing_ok=True)

    def remains(self) -> list[str]:
        """What this run wrote that is still there after ``discard`` (a failed removal)."""
        paths = (self.staging, self.partial, self.repo.path / self.archive)
        return [p.name for p in paths if p.exists()]


def _failure(exc: OSError, repo: BackupDir, name: str, remains: list[str]) -> BackupError:
    where = f" ({exc.filename})" if exc.filename else ""
    kept = (
        f"what it wrote ({', '.join(remains)}) could not be removed; the next backup removes it"
        if remains
        else "nothing of it was kept"
    )
    if no_room(exc):
        return DiskFull.of(
            exc, f"backup {name}", repo.path, f"{kept}, earlier backups are untouched"
        )
    reason = exc.strerror or str(exc)
    return BackupError(f"backup {name} failed: {reason}{where}; {kept}")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _since(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)
