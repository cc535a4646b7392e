"""Verify a backup: restore it into scratch space and check the copy, then record the verdict.

What is checked is what a restore would give: every file's sha256 against the manifest, the
archive's sha256, ``integrity_check`` on every SQLite copy, memory.sqlite's counts and turns, and
the Chroma copy opened in a subprocess (count, agreement with memory.sqlite, one search).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stores.backup.archive import Advance, Meter, begin, stop_point
from stores.backup.checks import check_restored
from stores.backup.crypto import Keys
from stores.backup.errors import DiskFull, no_room
from stores.backup.extract import extract
from stores.backup.manifest import Manifest, Verification
from stores.backup.repo import BackupDir, BackupInfo
from stores.counts import count


@dataclass
class CopyReport:
    name: str
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    sqlite: dict[str, str] = field(default_factory=dict)
    memory: dict[str, int] | None = None
    chroma: dict[str, Any] | None = None
    took_ms: float = 0.0
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.manifest is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "problems": self.problems,
            "files": self.files,
            "bytes": self.bytes,
            "sqlite": self.sqlite,
            "memory": self.memory,
            "chroma": self.chroma,
            "took_ms": self.took_ms,
            "skipped": len(self.manifest.skipped) if self.manifest else None,
        }

    def summary(self) -> str:
        if self.ok:
            vectors = f", {count(self.chroma['count'], 'vector')}" if self.chroma else ""
            return f"{self.name}: ok, {count(self.files, 'file')} ({_mib(self.bytes)}){vectors}"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.name}: FAILED: {self.problems[0] if self.problems else '?'}{more}"


def restore_and_check(
    backup: BackupInfo, keys: Keys, root: Path, advance: Advance, *, probe: bool = True
) -> CopyReport:
    """Extract ``backup`` under ``root`` (empty) and check the copy."""
    began = time.perf_counter()
    report = CopyReport(backup.name)
    extracted = extract(backup, keys, root, advance)
    report.problems.extend(extracted.problems)
    report.files, report.bytes, report.manifest = (
        extracted.files,
        extracted.bytes,
        extracted.manifest,
    )
    if extracted.manifest is not None:
        checked = check_restored(root, extracted.manifest, probe=probe)
        report.problems.extend(checked.problems)
        report.sqlite, report.memory, report.chroma = checked.sqlite, checked.memory, checked.chroma
    report.took_ms = round((time.perf_counter() - began) * 1000, 1)
    return report


def verify(
    repo: BackupDir,
    backup: BackupInfo,
    keys: Keys,
    now: datetime,
    meter: Meter,
    *,
    probe: bool = True,
    prefix: str = ".verify-",
    stop: threading.Event | None = None,
    by: str = "verify",
) -> CopyReport:
    """Check ``backup`` in scratch space of the backup directory and record the verdict (what
    retention trusts). A missing key raises ``KeyProblem``: that says nothing of the backup.
    Once ``stop`` is set (the run was cancelled) it raises ``BackupCancelled`` and records
    nothing."""
    total = backup.beside.data_bytes if backup.beside else None
    advance = begin(meter, "verify", total, stop)
    try:
        with repo.scratch(prefix) as scratch:
            report = restore_and_check(backup, keys, scratch, advance, probe=probe)
    except OSError as exc:
        if not no_room(exc):
            raise
        raise DiskFull.of(
            exc,
            f"{by} of {backup.name}",
            repo.path,
            "its scratch copy was removed, nothing was recorded, the backup is unchanged",
        ) from exc
    stop_point(stop)
    verdict = Verification(ok=report.ok, at=now, problems=report.problems[:20], by=by)
    repo.record(backup.name, verdict)
    return report


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
