"""Why a backup operation stopped. Each message is one line a person can act on."""

from __future__ import annotations


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


class DiskFull(BackupError):
    pass


class KeyDamaged(BackupError):
    """The backup's passphrase-wrapped key does not decode: a fault of the backup (its beside
    manifest), not of the keys given, so verify records it as a problem."""


class BackupCancelled(BackupError):
    """The run was cancelled (its timeout, the daemon stopping): the work stopped between two
    files or chunks, removed what it had written and let the writers go."""
