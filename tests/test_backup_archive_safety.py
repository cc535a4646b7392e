"""Backups made by hand to be hostile or broken: members that try to leave the target (``..``,
absolute paths, symlinks, hardlinks), members whose paths collide, a beside manifest naming a
file outside the backup directory, a damaged wrapped key, a missing key file, and files in the
backup directory that are not ours. No memory store is needed: each backup is a few bytes.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyrage  # type: ignore[import-untyped]  # no stubs; its API is four calls
import pytest
import zstandard

from jobs.base import Progress
from stores.backup.config import Retention
from stores.backup.crypto import Keys, new_identity_file
from stores.backup.errors import KeyProblem
from stores.backup.manifest import (
    Beside,
    FileEntry,
    Manifest,
    Pause,
    Sources,
    Versions,
    archive_name,
    sha256_hex,
)
from stores.backup.repo import BackupDir
from stores.backup.restore import restore_into
from stores.backup.verify import verify

NAME = "openclaw-infra-20260310T100000Z"
AT = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"  # a test passphrase


@dataclass(frozen=True)
class Member:
    """One tar member as a forger writes it."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""

    def info(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type = self.kind
        info.linkname = self.link
        info.size = len(self.data) if self.kind == tarfile.REGTYPE else 0
        info.mode = 0o600
        return info


def craft(
    backups: Path,
    members: Sequence[Member],
    *,
    listed: Sequence[Member] | None = None,
    keys: Keys | None = None,
    archive: str | None = None,
    name: str = NAME,
) -> Path:
    """A backup in ``backups`` whose manifests agree with its archive, both listing ``listed``
    (default: the regular members), the archive holding ``members`` after manifest.json.
    ``archive``: what the beside manifest names as its archive. Returns the archive file."""
    listed = [m for m in members if m.kind == tarfile.REGTYPE] if listed is None else listed
    manifest = Manifest(
        name=name,
        created_at=AT,
        compression="zstd",
        versions=Versions(openclaw_infra="test", chromadb=None, python="3", sqlite="3"),
        sources=Sources(state_dir="/nowhere"),
        files=[FileEntry(path=m.name, size=len(m.data), sha256=sha256_hex(m.data)) for m in listed],
        pause=Pause(paused=False),
    )
    encoded = manifest.encoded()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(Member("manifest.json", encoded).info(), io.BytesIO(encoded))
        for m in members:
            tar.addfile(m.info(), io.BytesIO(m.data) if m.kind == tarfile.REGTYPE else None)
    data = zstandard.ZstdCompressor().compress(out.getvalue())
    encryption = None
    if keys is not None:
        recipients, encryption = keys.seal()
        data = pyrage.encrypt(data, recipients)
    backups.mkdir(parents=True, exist_ok=True)
    path = backups / archive_name(name, "zstd", keys is not None)
    path.write_bytes(data)
    beside = Beside(
        name=name,
        created_at=AT,
        archive=archive or path.name,
        archive_size=len(data),
        archive_sha256=sha256_hex(data),
        compression="zstd",
        encryption=encryption,
        files=len(listed),
        data_bytes=manifest.total_bytes,
        manifest_sha256=sha256_hex(encoded),
        manifest=None if encryption else manifest,
    )
    (backups / f"{name}.manifest.json").write_bytes(beside.encoded())
    return path


def check(repo: BackupDir, keys: Keys | None = None) -> list[str]:
    return verify(repo, repo.get(NAME), keys or Keys(), AT, Progress(), probe=False).problems


# --- members that try to leave the target ---------------------------------------------------------


def test_members_that_would_leave_the_target_are_refused_by_verify_and_restore(root: Path) -> None:
    outside = root / "outside"
    outside.mkdir()
    hostile = [
        Member("state/ok.txt", b"fine"),
        Member("../escape.txt", b"climbed out"),
        Member("state/../../escape2.txt", b"climbed out"),
        Member(str(outside / "absolute.txt"), b"absolute"),
        Member("state/link", kind=tarfile.SYMTYPE, link=str(outside)),
        Member("state/up", kind=tarfile.SYMTYPE, link="../../outside"),
        Member("state/hard", kind=tarfile.LNKTYPE, link="state/ok.txt"),
        Member("state/etc", kind=tarfile.LNKTYPE, link="/etc/passwd"),
        Member("state/link/through.txt", b"through the symlink"),
    ]
    listed = [hostile[0], hostile[-1]]
    repo = BackupDir(root / "backups")
    craft(repo.path, hostile, listed=listed)

    problems = check(repo)
    for name in ("../escape.txt", "state/../../escape2.txt", str(outside / "absolute.txt")):
        assert f"{name}: unsafe path in the archive; not extracted" in problems, name
    for name in ("state/link", "state/up", "state/hard", "state/etc"):
        assert f"{name}: not a regular file; not extracted" in problems, name
    assert len(problems) == 7, problems
    assert repo.get(NAME).verified is False

    target = root / "restored"
    restored = restore_into(repo.get(NAME), Keys(), target, Progress(), probe=False)
    assert not restored.check.ok
    assert restored.check.problems == problems
    assert list(outside.iterdir()) == []
    assert not (root / "escape.txt").exists()
    assert not (root / "escape2.txt").exists()
    # A restore that does not check out leaves nothing: no target, no staging beside it.
    assert not target.exists()
    assert sorted(p.name for p in root.iterdir()) == ["backups", "outside"]


def test_a_file_and_a_directory_of_the_same_name_are_a_problem_naming_the_file(
    root: Path,
) -> None:
    repo = BackupDir(root / "backups")
    craft(repo.path, [Member("state/a", b"a file"), Member("state/a/b", b"under a file")])
    problems = check(repo)
    assert len(problems) == 1
    assert problems[0].startswith("state/a/b: clashes with another member of the archive (")
    assert problems[0].endswith("); not extracted")

    craft(
        root / "other",
        [Member("state/d/x", b"in a directory"), Member("state/d", b"over the directory")],
    )
    (problem,) = check(BackupDir(root / "other"))
    assert problem.startswith("state/d: clashes with another member of the archive")


# --- a beside manifest naming another file --------------------------------------------------------


def test_a_beside_manifest_naming_a_file_outside_is_a_problem_never_read_or_removed(
    root: Path,
) -> None:
    repo = BackupDir(root / "backups")
    made = craft(repo.path, [Member("state/ok.txt", b"fine")], archive="../victim.tar.zst")
    victim = root / "victim.tar.zst"
    made.rename(victim)  # a valid archive: were it read, the backup would verify

    (listed,) = repo.backups()
    assert listed.archive == made
    assert listed.problem == (
        f"{NAME}.manifest.json: names the archive '../victim.tar.zst', not {made.name};"
        " damaged or tampered, that file is never read or removed"
    )
    assert listed.verified is False
    report = verify(repo, listed, Keys(), AT, Progress(), probe=False)
    assert not report.ok
    assert report.problems[0] == listed.problem
    assert f"{made.name}: missing" in report.problems

    decided = repo.prune(Retention(0, 0, 0, 0), AT)
    assert decided.remove == (NAME,)
    assert repo.backups() == []
    assert victim.is_file()


# --- leftovers: only ours -------------------------------------------------------------------------


def test_only_our_own_leftovers_are_removed(root: Path) -> None:
    repo = BackupDir(root / "backups").ensure()
    killed = "openclaw-infra-20260310T103000Z"
    ours = [
        f".{killed}.tar.zst.partial",
        f".{killed}.manifest.json.k2_j8xq1.tmp",
        f".{killed}.verified.json.abc.tmp",
        f"{killed}.tar.gz.age",
        f"{killed}.verified.json",
    ]
    theirs = [
        "notes.tmp",
        ".editor.swp.tmp",
        "download.partial",
        ".download.partial",
        f"{killed}.notes.txt",
        f".{killed}.tar.zst.partial.bak",
        "README",
    ]
    for name in ours + theirs:
        (repo.path / name).write_bytes(b"x")
    (repo.path / f".staging-{killed}").mkdir()
    (repo.path / ".staging-photos").mkdir()
    with repo.locked():
        removed = repo.clean_leftovers()
    assert sorted(removed) == sorted([*ours, f".staging-{killed}"])
    assert sorted(p.name for p in repo.path.iterdir()) == sorted(
        [*theirs, ".staging-photos", ".lock"]
    )


# --- keys -----------------------------------------------------------------------------------------


def test_a_passphrase_opens_the_backup_when_the_key_file_is_missing(root: Path) -> None:
    key = root / "backup.key"
    new_identity_file(key)
    repo = BackupDir(root / "backups")
    craft(repo.path, [Member("state/ok.txt", b"fine")], keys=Keys(PASSPHRASE, key))
    key.unlink()

    assert check(repo, Keys(PASSPHRASE, key)) == []
    with pytest.raises(KeyProblem) as refused:
        check(repo, Keys(None, key))
    assert str(refused.value) == (
        f"backup {NAME} is encrypted and the key file {key}: No such file or directory"
        " (or set OPENCLAW_INFRA_BACKUP__PASSPHRASE)"
    )
    with pytest.raises(KeyProblem) as wrong:
        check(repo, Keys("Tr0ub4dor&3", key))
    assert str(wrong.value) == (
        f"wrong passphrase for backup {NAME}: OPENCLAW_INFRA_BACKUP__PASSPHRASE does not open it;"
        f" and the key file {key}: No such file or directory"
    )


def damage_wrapped_key(beside_path: Path, change: bytes | str) -> None:
    beside = json.loads(beside_path.read_text())
    wrapped = beside["encryption"]["wrapped_identity"]
    if isinstance(change, str):
        beside["encryption"]["wrapped_identity"] = change
    else:
        sealed = bytearray(base64.b64decode(wrapped))
        sealed[: len(change)] = change
        beside["encryption"]["wrapped_identity"] = base64.b64encode(sealed).decode()
    beside_path.write_text(json.dumps(beside))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("not base64 at all!", "is not base64: damaged or tampered"),
        (b"age-encryption.org/v2", "does not decrypt (Unknown age format.): damaged or tampered"),
        (b"AGE", "does not decrypt (Header is invalid): damaged or tampered"),
    ],
    ids=["not-base64", "unknown-format", "bad-header"],
)
def test_a_damaged_wrapped_key_is_a_problem_of_the_backup_not_a_wrong_passphrase(
    root: Path, change: bytes | str, why: str
) -> None:
    repo = BackupDir(root / "backups")
    craft(repo.path, [Member("state/ok.txt", b"fine")], keys=Keys(PASSPHRASE))
    damage_wrapped_key(repo.path / f"{NAME}.manifest.json", change)
    assert check(repo, Keys(PASSPHRASE)) == [
        f"the passphrase-wrapped key in {NAME}.manifest.json {why}"
    ]
    assert repo.get(NAME).verified is False  # recorded: retention knows
