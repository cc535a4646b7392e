"""Reading a backup back: every file out of the archive into a directory, each checked against
the manifest on the way (size and sha256), the manifests against each other, and the archive
file against the sha256 its beside manifest recorded. Every mismatch is a problem that names the
file; nothing is trusted that was not checked.

Members are written only as regular files at normalised relative paths under the target
(``state/``, ``workspaces/``, ``openclaw/``), created new (0600, directories 0700), never through
a symlink: a crafted archive cannot write outside the target. Members whose paths collide
(``state/a``, then ``state/a/b``) are a problem naming the one not written, not a crash.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from pydantic import ValidationError

from stores.atomic import PRIVATE_DIR, PRIVATE_FILE
from stores.backup.archive import CHUNK, Advance, read_archive
from stores.backup.crypto import Keys
from stores.backup.errors import BackupCancelled, BackupError, KeyDamaged
from stores.backup.manifest import INSIDE, Beside, FileEntry, Manifest, sha256_hex
from stores.backup.repo import BackupInfo

ROOTS = frozenset({"state", "workspaces", "openclaw"})
#: What writing a member raises when the archive's own paths collide (``state/a`` is a file and
#: ``state/a/b`` follows): a fault of the archive, recorded against that file. Other OSErrors (a
#: full disk while restoring) say nothing of the backup and stop the restore as they are.
CLASHES = (FileExistsError, NotADirectoryError, IsADirectoryError)
#: The inside manifest is read whole; a larger one is not ours.
MANIFEST_LIMIT = 256 * 2**20


@dataclass
class Extracted:
    manifest: Manifest | None = None
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def extract(
    backup: BackupInfo, keys: Keys, target: Path, advance: Advance = lambda n: None
) -> Extracted:
    """Write the backup's files under ``target`` and check each; raises ``KeyProblem`` when it
    cannot be decrypted, and reports every other fault as a problem."""
    result = Extracted()
    beside = backup.beside
    if beside is None or backup.problem is not None:
        result.problems.append(backup.problem or f"{backup.beside_path.name}: unreadable")
        if beside is None:
            return result
    try:
        identities = keys.open(beside.encryption, backup.name) if beside.encryption else None
    except KeyDamaged as exc:
        result.problems.append(str(exc))
        return result
    reader = _Reader(backup, beside, target, result, advance)
    try:
        read = read_archive(
            backup.archive,
            compression=beside.compression,
            identities=identities,
            visit=reader.visit,
        )
    except BackupCancelled:
        raise
    except BackupError as exc:
        result.problems.append(str(exc))
        return result
    except FileNotFoundError:
        result.problems.append(f"{backup.archive.name}: missing")
        return result
    if result.manifest is not None:
        for path in sorted(set(reader.expected) - reader.seen):
            result.problems.append(f"{path}: missing from the archive")
    if (read.size, read.sha256) != (beside.archive_size, beside.archive_sha256):
        result.problems.append(
            f"{backup.archive.name}: sha256 differs from {backup.beside_path.name}"
            " (damaged or tampered)"
        )
    return result


class _Reader:
    def __init__(
        self, backup: BackupInfo, beside: Beside, target: Path, result: Extracted, advance: Advance
    ) -> None:
        self.backup = backup
        self.beside = beside
        self.target = target
        self.result = result
        self.advance = advance
        self.expected: dict[str, FileEntry] = {}
        self.seen: set[str] = set()

    def visit(self, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        if self.result.manifest is None and not self.seen:
            self.seen.add(INSIDE)
            self._manifest(member, data)
            return
        problem = _unsafe(member)
        if problem is not None:
            self.result.problems.append(problem)
            return
        entry = self.expected.get(member.name)
        if entry is None or member.name in self.seen:
            self.result.problems.append(f"{member.name}: in the archive but not in its manifest")
            return
        assert data is not None
        self.seen.add(member.name)
        try:
            size, digest = _write_new(self.target / member.name, data, self.advance)
        except CLASHES as exc:
            self.result.problems.append(
                f"{member.name}: clashes with another member of the archive"
                f" ({exc.strerror or type(exc).__name__}); not extracted"
            )
            return
        self.result.files += 1
        self.result.bytes += size
        if (size, digest) != (entry.size, entry.sha256):
            self.result.problems.append(
                f"{member.name}: sha256 differs from the manifest (damaged or tampered)"
            )

    def _manifest(self, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        archive = self.backup.archive.name
        if member.name != INSIDE or data is None or member.size > MANIFEST_LIMIT:
            raise BackupError(f"{archive}: does not begin with {INSIDE}; not one of our backups")
        raw = data.read()
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise BackupError(
                f"{archive}: {INSIDE} is unreadable ({exc.error_count()} errors)"
            ) from None
        self.result.manifest = manifest
        self.expected = {f.path: f for f in manifest.files}
        if sha256_hex(raw) != self.beside.manifest_sha256:
            self.result.problems.append(
                f"{INSIDE} in {archive}: differs from {self.backup.beside_path.name}"
                " (damaged or tampered)"
            )
        if self.beside.manifest is not None and self.beside.manifest != manifest:
            self.result.problems.extend(_differences(self.beside.manifest, manifest, self.backup))


def _differences(beside: Manifest, inside: Manifest, backup: BackupInfo) -> list[str]:
    where = backup.beside_path.name
    theirs = {f.path: f for f in beside.files}
    ours = {f.path: f for f in inside.files}
    named = [
        f"{where}: entry for {path} differs from {INSIDE} in the archive"
        for path in sorted(theirs.keys() | ours.keys())
        if theirs.get(path) != ours.get(path)
    ]
    return named or [f"{where}: differs from {INSIDE} in the archive"]


def _unsafe(member: tarfile.TarInfo) -> str | None:
    path = PurePosixPath(member.name)
    parts = path.parts
    if (
        path.is_absolute()
        or not parts
        or parts[0] not in ROOTS
        or any(p in ("", ".", "..") for p in parts)
        or member.name != str(path)
    ):
        return f"{member.name}: unsafe path in the archive; not extracted"
    if not member.isfile():
        return f"{member.name}: not a regular file; not extracted"
    return None


def _write_new(path: Path, data: IO[bytes], advance: Advance) -> tuple[int, str]:
    _make_dirs(path.parent)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    digest = hashlib.sha256()
    size = 0
    with open(os.open(path, flags, PRIVATE_FILE), "wb") as out:
        while block := data.read(CHUNK):
            out.write(block)
            digest.update(block)
            size += len(block)
            advance(len(block))
    return size, digest.hexdigest()


def _make_dirs(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        return
    _make_dirs(path.parent)
    path.mkdir(mode=PRIVATE_DIR)
