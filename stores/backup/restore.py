"""Restoring a backup: into a directory of its own, or in place of the daemon's state.

Into a target (the default): the target must be new or empty; it receives the archive's layout,
``state/`` (a state directory: start ``infrad`` with ``OPENCLAW_INFRA_STATE_DIR=<target>/state``),
``workspaces/<agent>/`` and, if saved, ``openclaw/<agent>/``, every directory 0700. The backup is
written into a staging directory beside the target and checked like ``verify`` checks one; only
a copy that checks out is renamed to the target. A restore that fails (the check, a full disk,
a cancel) leaves nothing behind.

In place (``--force``): only while no ``infrad`` holds the state directory's lock, which the
restore then holds itself so none can start meanwhile. The backup is restored and checked beside
the state directory first; only a copy that checks out replaces it. What it replaces is moved,
not deleted, to ``<state_dir>.before-restore-<time>`` (not made when there is nothing to move).
The backup directory, the lock and the socket stay where they are. A backup made of another
state directory is refused unless the caller says it means it (``other_origin``): restoring
one daemon's state over another's is never done without a word.

Workspaces go back into the agents' workspaces only when asked (``--force-workspaces``): the
caller then passes where OpenClaw's configuration puts them now (``configured_workspaces``); see
``backup_writeback``.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

from stores.atomic import ensure_private_dir, fsync_dir
from stores.backup.archive import Meter, begin
from stores.backup.crypto import Keys
from stores.backup.errors import BackupError, DaemonRunning, RestoreRefused
from stores.backup.manifest import Manifest
from stores.backup.repo import BackupInfo
from stores.backup.verify import CopyReport, restore_and_check
from stores.backup.writeback import WriteBack, write_back

LOCK_NAME = "infrad.lock"


@dataclass
class Restored:
    check: CopyReport
    target: Path
    state_dir: Path
    aside: Path | None = None
    workspaces: WriteBack | None = None
    #: False when the check failed and nothing was written to the target.
    placed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.check.to_dict(),
            "target": str(self.target),
            "state_dir": str(self.state_dir),
            "replaced_kept_in": str(self.aside) if self.aside else None,
            "placed": self.placed,
            "workspaces": self.workspaces.to_dict() if self.workspaces else None,
        }


def restore_into(
    backup: BackupInfo,
    keys: Keys,
    target: Path,
    meter: Meter,
    *,
    workspaces: Mapping[str, Path] | None = None,
    probe: bool = True,
) -> Restored:
    """``workspaces`` (agent id -> its workspace now): given, the backup's workspace files are
    written back there too, once the copy checks out."""
    target = target.expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RestoreRefused(f"{target} is not an empty directory; restore into a new one")
    _make_missing(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
    try:
        total = backup.beside.data_bytes if backup.beside else None
        advance = begin(meter, "restore", total)
        check = restore_and_check(backup, keys, staging, advance, probe=probe)
        if not check.ok:
            shutil.rmtree(staging)
            return Restored(check, target, target / "state", placed=False)
        if target.exists():
            target.rmdir()  # empty, as checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(target.parent)
    restored = Restored(check, target, target / "state")
    if workspaces is not None and check.manifest is not None:
        meter.phase = "workspaces"
        restored.workspaces = write_back(target, check.manifest, target / "replaced", workspaces)
    return restored


def _make_missing(path: Path) -> None:
    """Make ``path`` and the parents it lacks, each 0700 (``mkdir(parents=True)`` would give
    the parents the umask's 0755); existing ones are left as they are."""
    if path.is_dir():
        return
    _make_missing(path.parent)
    path.mkdir(mode=0o700)


def refuse_other_origin(backup: BackupInfo, manifest: Manifest | None, state_dir: Path) -> None:
    """A backup of another state directory does not replace this one without a word."""
    origin = manifest.sources.state_dir if manifest is not None else None
    if origin is None or Path(origin) == state_dir:
        return
    raise RestoreRefused(
        f"backup {backup.name} was made of {origin}, not of {state_dir}: restoring it in place"
        " would put another daemon's state here; pass --other-origin if that is what you mean,"
        " or restore it into a new directory with --target"
    )


def restore_in_place(
    backup: BackupInfo,
    keys: Keys,
    state_dir: Path,
    backup_dir: Path,
    meter: Meter,
    *,
    now: datetime,
    workspaces: Mapping[str, Path] | None = None,
    probe: bool = True,
    other_origin: bool = False,
) -> Restored:
    state_dir = state_dir.expanduser().absolute()
    if not other_origin and backup.beside is not None:
        refuse_other_origin(backup, backup.beside.manifest, state_dir)  # before any work
    lock = filelock.FileLock(state_dir / LOCK_NAME, mode=0o600)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise DaemonRunning(
            f"infrad is running on {state_dir} (it holds {LOCK_NAME}); stop it before"
            " restoring in place, or restore into a new directory with --target"
        ) from None
    try:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        staged = state_dir.with_name(f"{state_dir.name}.restore-{stamp}")
        restored = restore_into(backup, keys, staged, meter, probe=probe)
        if not restored.check.ok:
            raise BackupError(
                f"backup {backup.name} did not check out ({restored.check.problems[0]});"
                f" {state_dir} was not changed and nothing of the restore was kept"
            )
        if not other_origin:
            try:
                refuse_other_origin(backup, restored.check.manifest, state_dir)
            except RestoreRefused:
                shutil.rmtree(staged, ignore_errors=True)
                raise
        aside = state_dir.with_name(f"{state_dir.name}.before-restore-{stamp}")
        _swap(state_dir, staged / "state", aside, backup_dir)
        result = Restored(restored.check, staged, state_dir, aside)
        if workspaces is not None and restored.check.manifest is not None:
            meter.phase = "workspaces"
            result.workspaces = write_back(staged, restored.check.manifest, aside, workspaces)
            if not result.workspaces.refused:  # all of them are back where they belong
                shutil.rmtree(staged / "workspaces", ignore_errors=True)
        _tidy(staged)
        if not any(aside.iterdir()):  # there was nothing to keep: no empty folder
            aside.rmdir()
            result.aside = None
        return result
    finally:
        lock.release()


def _swap(state_dir: Path, restored: Path, aside: Path, backup_dir: Path) -> None:
    """Move the current state aside and the restored one in, entry by entry (renames within
    one file system: each is atomic, and nothing is copied)."""
    ensure_private_dir(aside)
    stays = _stays(state_dir, backup_dir)
    for entry in sorted(state_dir.iterdir()):
        if entry.name not in stays:
            entry.rename(aside / entry.name)
    for entry in sorted(restored.iterdir()):
        if entry.name in stays:
            continue  # the backup directory's name, say: never part of a backup anyway
        entry.rename(state_dir / entry.name)
    fsync_dir(aside)
    fsync_dir(state_dir)


def _stays(state_dir: Path, backup_dir: Path) -> set[str]:
    """The lock, the socket, and whatever holds the backup directory."""
    stays = {LOCK_NAME}
    resolved = backup_dir.expanduser().absolute().resolve()
    for entry in state_dir.iterdir():
        inside = resolved == entry.resolve() or resolved.is_relative_to(entry.resolve())
        if inside or stat.S_ISSOCK(entry.lstat().st_mode):
            stays.add(entry.name)
    return stays


def _tidy(staged: Path) -> None:
    """Drop the emptied ``state/`` of the staged copy; keep it if workspaces are left there."""
    shutil.rmtree(staged / "state", ignore_errors=True)
    if not any(staged.iterdir()):
        staged.rmdir()
