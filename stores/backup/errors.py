"""Why a backup operation stopped. Each message is one line a person can act on."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

#: What a write raises when the disk (or the quota, or the file size limit) has no room.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class BackupError(Exception):
    """A backup, verify or restore that cannot go on."""


class BackupNotFound(BackupError):
    pass


class KeyProblem(BackupError):
    """An encrypted backup and no key that opens it: wrong passphrase, other key file, none."""


class BackupBusy(BackupError):
    """Another operation holds the backup directory (a backup being written)."""


class RestoreRefused(BackupError):
    """The target is not empty, or the daemon runs on the state directory to be replaced."""


class DaemonRunning(RestoreRefused):
    """An in-place restore while infrad holds the state directory's lock: wait, or stop it."""


class DiskFull(BackupError):
    @classmethod
    def of(cls, exc: OSError, what: str, where: Path, kept: str) -> DiskFull:
        """``what`` failed for want of room on the disk of ``where``; ``kept`` says what
        became of the work (one line, as every BackupError)."""
        try:
            free = f" ({shutil.disk_usage(where).free / 2**20:.0f} MiB free)"
        except OSError:
            free = ""
        name = f" ({exc.filename})" if exc.filename else ""
        return cls(f"{what} failed: no space left on the disk of {where}{free}{name}; {kept}")


def no_room(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_ROOM


class KeyDamaged(BackupError):
    """The backup's passphrase-wrapped key does not decode: a fault of the backup (its beside
    manifest), not of the keys given, so verify records it as a problem."""


class BackupCancelled(BackupError):
    """The run was cancelled (its timeout, the daemon stopping): the work stopped between two
    files or chunks, removed what it had written and let the writers go."""
