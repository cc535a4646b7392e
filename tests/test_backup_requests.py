"""Backups a person asked for, and what they are told about them: kept by a rule they can read,
verified when and by what, restored whole or not at all, never over another daemon's state
without a word, and a full disk said as such."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.api.backup import _call
from daemon.cli.backup import _verdict
from daemon.errors import JobFailed
from jobs.base import Progress
from stores.backup import extract as backup_extract
from stores.backup.config import Retention
from stores.backup.crypto import Keys
from stores.backup.errors import DiskFull, RestoreRefused
from stores.backup.restore import restore_in_place, restore_into
from stores.backup.retention import Point, plan
from stores.backup.verify import verify
from tests.memory_fixtures import hashed_words_are_not_rebuilt
from tests.test_backup_store import START, Setup, make_setup

pytestmark = hashed_words_are_not_rebuilt

T = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


@pytest.fixture
def setup(root: Path) -> Iterator[Setup]:
    made = make_setup(root)
    yield made
    made.harness.close()


# --- retention: a backup asked for stays until a rule says otherwise ------------------------------


def test_two_backups_asked_for_a_minute_apart_are_both_kept() -> None:
    points = [
        Point("a", T, verified=True, manual=True),
        Point("b", T + timedelta(minutes=1), verified=True, manual=True),
    ]
    decided = plan(points, Retention(), T + timedelta(minutes=2))
    assert decided.remove == ()
    assert decided.keep["a"] == ("manual 2 of 10",)
    assert "manual 1 of 10" in decided.keep["b"]


def test_scheduled_backups_of_one_hour_keep_only_the_newest() -> None:
    points = [Point("a", T, verified=True), Point("b", T + timedelta(minutes=1), verified=True)]
    assert plan(points, Retention(), T + timedelta(minutes=2)).remove == ("a",)


def test_the_manual_rule_keeps_the_newest_n_of_them() -> None:
    points = [
        Point(f"m{i}", T + timedelta(minutes=i), verified=True, manual=True) for i in range(4)
    ]
    decided = plan(points, Retention(manual=2), T + timedelta(hours=1))
    assert decided.remove == ("m1", "m0")
    assert decided.keep["m2"] == ("manual 2 of 2",)


def test_backup_now_marks_its_backup_and_list_says_why_each_is_kept(setup: Setup) -> None:
    first = setup.backup(manual=True)
    second = setup.backup(manual=True)
    assert first.backup.beside is not None
    assert first.backup.beside.manual
    reasons = setup.repo.plan(setup.config.retention, START + timedelta(hours=2)).keep
    assert "manual 2 of 10" in reasons[first.backup.name]
    assert "manual 1 of 10" in reasons[second.backup.name]


# --- when, and by what, a backup was last verified -----------------------------------------------


def test_each_verdict_says_when_and_by_what(setup: Setup) -> None:
    created = setup.backup()
    listed = setup.repo.get(created.backup.name).to_dict()
    assert (listed["verified"], listed["verified_by"]) == (True, "backup")
    verify(setup.repo, setup.repo.get(created.backup.name), Keys(), T, Progress(), probe=False)
    listed = setup.repo.get(created.backup.name).to_dict()
    assert (listed["verified_by"], listed["verified_at"]) == ("verify", T.isoformat())
    drilled = setup.repo.get(created.backup.name)
    verify(setup.repo, drilled, Keys(), T, Progress(), probe=False, by="restore drill")
    assert setup.repo.get(created.backup.name).to_dict()["verified_by"] == "restore drill"


def test_an_archive_damaged_since_its_verification_is_not_listed_as_simply_verified(
    setup: Setup,
) -> None:
    created = setup.backup()
    with created.backup.archive.open("ab") as archive:
        archive.write(b"appended by something else")
    listed = setup.repo.get(created.backup.name).to_dict()
    assert listed["archive_changed"] is True
    verdict = _verdict(listed)
    assert verdict.startswith("yes, ")
    assert " by backup; the archive changed since: `infractl backup verify` it" in verdict


def test_a_verdict_shows_its_age_and_checker() -> None:
    at = (datetime.now(UTC) - timedelta(hours=3, minutes=5)).isoformat()
    row: dict[str, Any] = {"verified": True, "verified_at": at, "verified_by": "restore drill"}
    assert _verdict(row) == "yes, 3h05m ago by restore drill"
    assert _verdict({"verified": None}) == "never"


# --- restore: whole or not at all -----------------------------------------------------------------


def _damage(setup: Setup) -> Any:
    created = setup.backup()
    archive = created.backup.archive
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    return setup.repo.get(created.backup.name)


def test_a_restore_that_fails_its_check_leaves_nothing(setup: Setup) -> None:
    damaged = _damage(setup)
    target = setup.root / "restored"
    before = sorted(p.name for p in setup.root.iterdir())
    restored = restore_into(damaged, Keys(), target, Progress(), probe=False)
    assert not restored.check.ok
    assert not restored.placed
    assert not target.exists()
    assert sorted(p.name for p in setup.root.iterdir()) == before, "no staging folder left"


def test_an_empty_target_stays_empty_when_the_restore_fails(setup: Setup) -> None:
    damaged = _damage(setup)
    target = setup.root / "restored"
    target.mkdir()
    restore_into(damaged, Keys(), target, Progress(), probe=False)
    assert list(target.iterdir()) == []


def test_restored_folders_are_private_parents_included(setup: Setup) -> None:
    created = setup.backup()
    target = setup.root / "new" / "parents" / "restored"
    restored = restore_into(created.backup, Keys(), target, Progress(), probe=False)
    assert restored.check.ok
    made = [setup.root / "new", setup.root / "new" / "parents", target]
    made += [p for p in target.rglob("*") if p.is_dir()]
    modes = {str(p.relative_to(setup.root)): oct(p.stat().st_mode & 0o777) for p in made}
    assert set(modes.values()) == {"0o700"}, modes


def test_a_full_disk_during_a_restore_leaves_nothing(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = setup.backup()
    _full_disk_after(monkeypatch, 3)
    target = setup.root / "restored"
    with pytest.raises(OSError, match="No space left") as failed:
        restore_into(created.backup, Keys(), target, Progress(), probe=False)
    assert failed.value.errno == errno.ENOSPC
    assert not target.exists()
    assert not [p for p in setup.root.iterdir() if p.name.startswith(".restored")]


# --- in place: only over the state it was made of ---------------------------------------


def test_a_backup_of_another_state_directory_is_refused_in_place(setup: Setup) -> None:
    created = setup.backup()
    other = setup.root / "other-state"
    other.mkdir()
    (other / "runs.sqlite").write_text("another daemon's")
    with pytest.raises(RestoreRefused, match=re.escape(f"made of {setup.state}, not of {other}")):
        restore_in_place(
            created.backup, Keys(), other, setup.config.dir, Progress(), now=T, probe=False
        )
    assert (other / "runs.sqlite").read_text() == "another daemon's"
    assert sorted(p.name for p in setup.root.iterdir() if "restore" in p.name) == []
    done = restore_in_place(
        created.backup,
        Keys(),
        other,
        setup.config.dir,
        Progress(),
        now=T,
        probe=False,
        other_origin=True,
    )
    assert done.check.ok
    assert done.aside is not None
    assert (done.aside / "runs.sqlite").read_text() == "another daemon's"


def test_nothing_to_keep_aside_makes_no_before_restore_folder(setup: Setup) -> None:
    """A new machine: the state directory holds only the backups copied over."""
    created = setup.backup()
    setup.harness.close()
    for entry in setup.state.iterdir():
        if entry.name != "backups":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    done = restore_in_place(
        created.backup, Keys(), setup.state, setup.config.dir, Progress(), now=T, probe=False
    )
    assert done.check.ok
    assert done.aside is None
    assert not [p for p in setup.root.iterdir() if ".before-restore-" in p.name]
    assert (setup.state / "memory.sqlite").exists()


# --- a full disk while verifying -----------------------------------------------------------------


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, files: int) -> None:
    """The disk fills while the ``files``-th file of a backup is written back: the write
    call itself fails as a full disk makes it fail (ENOSPC), with the file's name."""
    real = backup_extract._write_new
    written = [0]

    def write(path: Path, data: Any, advance: Any) -> tuple[int, str]:
        written[0] += 1
        if written[0] >= files:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, advance)

    monkeypatch.setattr(backup_extract, "_write_new", write)


def test_verify_on_a_full_disk_is_the_disk_full_error(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = setup.backup()
    verified_before = setup.repo.get(created.backup.name).verification
    _full_disk_after(monkeypatch, 2)
    with pytest.raises(DiskFull) as failed:
        verify(setup.repo, created.backup, Keys(), T, Progress(), probe=False)
    message = str(failed.value)
    assert message.startswith(f"verify of {created.backup.name} failed: no space left on the")
    assert str(setup.config.dir) in message
    assert message.endswith("nothing was recorded, the backup is unchanged")
    assert setup.repo.get(created.backup.name).verification == verified_before
    assert sorted(p.name for p in setup.config.dir.iterdir() if p.name.startswith(".")) == [".lock"]


async def test_the_socket_answers_a_full_disk_with_its_message_not_internal() -> None:
    def full() -> None:
        raise DiskFull("verify of x failed: no space left on the disk of /b (0 MiB free)")

    with pytest.raises(JobFailed, match=r"^verify of x failed: no space left"):
        await _call(full)


FILE_SIZE_LIMITED = """
import resource, signal, sys
from datetime import UTC, datetime
from pathlib import Path

from jobs.base import Progress
from stores.backup.crypto import Keys
from stores.backup.errors import DiskFull
from stores.backup.repo import BackupDir
from stores.backup.verify import verify

repo, limit = BackupDir(Path(sys.argv[1])), int(sys.argv[2])
backup = repo.get(None)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    verify(repo, backup, Keys(), datetime(2026, 3, 11, tzinfo=UTC), Progress(), probe=False)
except DiskFull as exc:
    print(exc)
    sys.exit(3)
"""


def test_verify_under_a_real_file_size_limit_is_the_disk_full_error(setup: Setup) -> None:
    """A limit the kernel enforces (RLIMIT_FSIZE, in a child process, no root needed): the
    write of the first file larger than it fails with EFBIG, as on a full disk."""
    largest = max(f.size for f in setup.backup().manifest.files)
    done = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED, str(setup.config.dir), str(largest // 2)],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert f"no space left on the disk of {setup.config.dir}" in done.stdout
    assert "nothing was recorded, the backup is unchanged" in done.stdout
