"""What a backup needs to know, from the settings: where, what, how many, how protected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Retention:
    hourly: int = 24
    daily: int = 7
    weekly: int = 4
    monthly: int = 6
    #: The newest N backups made by hand (``infractl backup now``), whatever the other rules.
    manual: int = 10


@dataclass(frozen=True)
class BackupConfig:
    dir: Path
    compression: str = "zstd"
    retention: Retention = Retention()
    include_openclaw_databases: bool = False
    include: tuple[str, ...] = ("*.md", "memory/**")
    exclude: tuple[str, ...] = ()
    passphrase: str | None = None
    key_file: Path | None = None

    def __repr__(self) -> str:  # the passphrase stays out of every repr
        return f"BackupConfig(dir={str(self.dir)!r}, compression={self.compression!r})"


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class BackupSettingsLike(Protocol):
    """The fields of ``daemon.config.sections.BackupSettings`` (stores do not import daemon)."""

    @property
    def dir(self) -> Path | None: ...
    @property
    def compression(self) -> str: ...
    @property
    def keep_hourly(self) -> int: ...
    @property
    def keep_daily(self) -> int: ...
    @property
    def keep_weekly(self) -> int: ...
    @property
    def keep_monthly(self) -> int: ...
    @property
    def keep_manual(self) -> int: ...
    @property
    def include_openclaw_databases(self) -> bool: ...
    @property
    def include(self) -> list[str]: ...
    @property
    def exclude(self) -> list[str]: ...
    @property
    def passphrase(self) -> _Secret | None: ...
    @property
    def key_file(self) -> Path | None: ...


def config_from_settings(backup: BackupSettingsLike, state_dir: Path) -> BackupConfig:
    """From the settings' ``backup`` section; shared by the supervisor and by ``infractl backup
    restore``, which must not import the supervisor (and with it chromadb)."""
    return BackupConfig(
        dir=(backup.dir or state_dir / "backups").expanduser().absolute(),
        compression=backup.compression,
        retention=Retention(
            backup.keep_hourly,
            backup.keep_daily,
            backup.keep_weekly,
            backup.keep_monthly,
            backup.keep_manual,
        ),
        include_openclaw_databases=backup.include_openclaw_databases,
        include=tuple(backup.include),
        exclude=tuple(backup.exclude),
        passphrase=backup.passphrase.get_secret_value() if backup.passphrase else None,
        key_file=backup.key_file,
    )
