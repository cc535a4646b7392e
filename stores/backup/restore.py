"""Restoring a backup: into a directory of its own, or in place of the daemon's state.

Into a target (the default): the target must be new or empty; it receives the archive's layout,
``state/`` (a state directory: start ``infrad`` with ``OPENCLAW_INFRA_STATE_DIR=<target>/state``),
``workspaces/<agent>/`` and, if saved, ``openclaw/<agent>/``. Then the copy is checked like
``verify`` checks one.

In place (``--force``): only while no ``infrad`` holds the state directory's lock, which the
restore then holds itself so none can start meanwhile. The backup is restored and checked beside
the state directory first; only a copy that checks out replaces it. What it replaces is moved,
not deleted, to ``<state_dir>.before-restore-<time>``. The backup directory, the lock and the
socket stay where they are.

Workspaces go back into the agents' workspaces only when asked (``--force-workspaces``): the
caller then passes where OpenClaw's configuration puts them now (``configured_workspaces``); see
``backup_writeback``.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

from stores.atomic import ensure_private_dir, fsync_dir
from stores.backup.archive import Meter, begin
from stores.backup.crypto import Keys
from stores.backup.errors import BackupError, RestoreRefused
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

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.check.to_dict(),
            "target": str(self.target),
            "state_dir": str(self.state_dir),
            "replaced_kept_in": str(self.aside) if self.aside else None,
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
    ensure_private_dir(target)
    total = backup.beside.data_bytes if backup.beside else None
    check = restore_and_check(backup, keys, target, begin(meter, "restore", total), probe=probe)
    restored = Restored(check, target, target / "state")
    if workspaces is not None and check.ok and check.manifest is not None:
        meter.phase = "workspaces"
        restored.workspaces = write_back(target, check.manifest, target / "replaced", workspaces)
    return restored


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
) -> Restored:
    state_dir = state_dir.expanduser().absolute()
    lock = filelock.FileLock(state_dir / LOCK_NAME, mode=0o600)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RestoreRefused(
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
                f" {state_dir} was not changed; the restored copy is in {staged}"
            )
        aside = state_dir.with_name(f"{state_dir.name}.before-restore-{stamp}")
        _swap(state_dir, staged / "state", aside, backup_dir)
        result = Restored(restored.check, staged, state_dir, aside)
        if workspaces is not None and restored.check.manifest is not None:
            meter.phase = "workspaces"
            result.workspaces = write_back(staged, restored.check.manifest, aside, workspaces)
            if not result.workspaces.refused:  # all of them are back where they belong
                shutil.rmtree(staged / "workspaces", ignore_errors=True)
        _tidy(staged)
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
