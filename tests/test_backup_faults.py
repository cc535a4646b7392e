"""Backups under faults: a full disk, tampered archives and manifests, a backup taken while
ingest writes, leftovers of a killed run, a wrong passphrase. (``kill -9`` of the daemon in the
middle of a backup is in test_backup_daemon.)"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import filelock
import pytest
import zstandard

from daemon.sample.writer import OpenClawWriter
from jobs.base import Progress, in_thread
from jobs.ingest import Ingest as IngestRun
from stores.atomic import atomic_write_bytes
from stores.backup import repo as backup_repo
from stores.backup import snapshot as backup_snapshot
from stores.backup.archive import open_new
from stores.backup.config import BackupConfig
from stores.backup.crypto import Keys, new_identity_file
from stores.backup.errors import DiskFull
from stores.backup.manifest import sha256_hex
from stores.backup.restore import restore_into
from stores.backup.verify import verify
from stores.memory.records import SearchQuery
from stores.runlog import RunLog
from tests.memory_fixtures import (
    SAMPLE_TODAY,
    Harness,
    HashedWords,
    hashed_words_are_not_rebuilt,
    open_store,
)
from tests.test_backup_store import START, Setup, make_setup

pytestmark = hashed_words_are_not_rebuilt


@pytest.fixture
def setup(root: Path) -> Iterator[Setup]:
    made = make_setup(root)
    yield made
    made.harness.close()


def leftovers(setup: Setup) -> list[str]:
    return sorted(p.name for p in setup.config.dir.iterdir() if p.name.startswith("."))


# --- a full disk --------------------------------------------------------------------------------


class FillingDisk:
    """The archive's output, on a disk that is full after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.opened: list[Path] = []

    def __call__(self, path: Path) -> BinaryIO:
        self.opened.append(path)
        return cast(BinaryIO, _Full(open_new(path), self.room))


class _Full(io.RawIOBase):
    def __init__(self, raw: BinaryIO, room: int) -> None:
        self.raw = raw
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if len(data) > self.room:
            self.raw.write(bytes(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.raw.write(data)

    def fileno(self) -> int:
        return self.raw.fileno()

    def flush(self) -> None:
        if not self.raw.closed:
            self.raw.flush()

    def close(self) -> None:
        super().close()
        self.raw.close()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age-key-file"])
def test_a_full_disk_fails_cleanly_and_keeps_the_earlier_backups(
    root: Path, encrypted: bool
) -> None:
    key = root / "backup.key"
    new_identity_file(key)
    setup = make_setup(root, key_file=key if encrypted else None)
    try:
        first = setup.backup()
        disk = FillingDisk(room=2000)
        with pytest.raises(DiskFull) as failed:
            setup.backup(open_output=disk)
    finally:
        setup.harness.close()
    message = str(failed.value)
    assert "no space left on the disk of" in message
    assert str(setup.config.dir) in message
    assert "nothing of it was kept, earlier backups are untouched" in message
    (partial,) = disk.opened
    assert not partial.exists()
    assert leftovers(setup) == [".lock"]  # no staging, no partial archive, no scratch space
    assert [b.name for b in setup.repo.backups()] == [first.backup.name]
    assert verify(setup.repo, first.backup, setup.keys(), START, Progress(), probe=False).ok


class _Refusing:
    """A source connection whose online backup fails as SQLite does on a full disk."""

    def __init__(self, conn: sqlite3.Connection, error: sqlite3.OperationalError) -> None:
        self.conn = conn
        self.error = error

    def backup(self, target: sqlite3.Connection) -> None:
        raise self.error

    def close(self) -> None:
        self.conn.close()


@pytest.mark.parametrize(
    ("code", "message"),
    [("SQLITE_FULL", "database or disk is full"), ("SQLITE_IOERR_WRITE", "disk I/O error")],
)
def test_a_full_disk_during_the_sqlite_snapshot_is_a_clear_disk_full_error(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, code: str, message: str
) -> None:
    first = setup.backup()
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = code  # what sqlite3 sets on the errors it raises
    real = backup_snapshot.read_only
    monkeypatch.setattr(
        backup_snapshot, "read_only", lambda path, **kw: _Refusing(real(path, **kw), error)
    )
    with pytest.raises(DiskFull) as failed:
        setup.backup()
    message = str(failed.value)
    assert f"no space left on the disk of {setup.config.dir}" in message
    assert "/state/memory.sqlite)" in message  # the copy that did not fit
    assert message.endswith("nothing of it was kept, earlier backups are untouched")
    assert leftovers(setup) == [".lock"]
    assert [b.name for b in setup.repo.backups()] == [first.backup.name]


FILE_SIZE_LIMITED = """
import resource, signal, sys
from datetime import UTC, datetime
from pathlib import Path

from jobs.base import Progress, in_thread
from stores.backup.config import BackupConfig
from stores.backup.create import Sources, create_backup
from stores.backup.errors import DiskFull

state, backups, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    create_backup(
        BackupConfig(dir=backups), Sources(state), pause_writers=None,
        now=datetime(2026, 3, 10, tzinfo=UTC), meter=Progress(), probe=False,
    )
except DiskFull as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_file_size_limit_during_the_sqlite_snapshot_is_a_disk_full_error(root: Path) -> None:
    """A real limit (RLIMIT_FSIZE, in a child process): SQLite reports "disk I/O error"."""
    state, backups = root / "state", root / "backups"
    state.mkdir()
    with contextlib.closing(sqlite3.connect(state / "runs.sqlite")) as db:
        db.execute("CREATE TABLE t (x BLOB)")
        db.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,)] * 1000)
        db.commit()
    done = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED, str(state), str(backups), str(256 * 1024)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert f"no space left on the disk of {backups}" in done.stdout
    assert "runs.sqlite" in done.stdout
    assert "nothing of it was kept, earlier backups are untouched" in done.stdout
    assert sorted(p.name for p in backups.iterdir()) == [".lock"]


@pytest.mark.parametrize("failing", [".verified.json", ".manifest.json"])
def test_a_failure_after_the_rename_keeps_nothing_of_the_backup(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The archive is in place; recording its verification or writing its beside manifest
    fails: the archive goes too, so that "nothing of it was kept" is true."""
    first = setup.backup()
    files = sorted(setup.config.dir.iterdir())
    real = atomic_write_bytes

    def disk_full_for(path: Path, data: bytes, **kw: Any) -> None:
        if path.name.endswith(failing) and not path.name.startswith(first.backup.name):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data, **kw)

    monkeypatch.setattr(backup_repo, "atomic_write_bytes", disk_full_for)
    with pytest.raises(DiskFull, match="nothing of it was kept, earlier backups are untouched"):
        setup.backup()
    assert sorted(setup.config.dir.iterdir()) == files
    assert [b.name for b in setup.repo.backups()] == [first.backup.name]


# --- cancelled: the job's timeout or the daemon stopping ----------------------------------------


class Gate(Progress):
    """Progress whose first step in ``at`` takes as long as it takes the job to ask the backup
    to stop: an injected slow step, ended by the cancellation itself, never by a clock."""

    def __init__(self, at: str, stop: threading.Event, reached: threading.Event) -> None:
        self.at, self.stop, self.reached = at, stop, reached
        self.stopped_here = False
        super().__init__()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "done" and value and self.phase == self.at and not self.reached.is_set():
            self.reached.set()
            self.stopped_here = self.stop.wait(timeout=30)


@pytest.mark.parametrize("phase", ["snapshot", "archive", "verify"])
async def test_a_cancelled_backup_stops_its_thread_and_leaves_nothing(
    setup: Setup, phase: str
) -> None:
    first = setup.backup()
    reached, ended = threading.Event(), threading.Event()
    gates: list[Gate] = []

    def work(stop: threading.Event) -> Any:
        gates.append(Gate(phase, stop, reached))
        try:
            return setup.backup(gates[0], stop=stop)
        finally:
            ended.set()

    job = asyncio.create_task(in_thread(setup.harness.context(), work))
    assert await asyncio.to_thread(reached.wait, 30)
    wrote = threading.Event()

    def writer() -> None:  # waits while the backup holds the writers (the snapshot phase)
        with setup.harness.store.writes_paused():
            wrote.set()

    waiting = threading.Thread(target=writer)
    waiting.start()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert ended.is_set()  # the job ended after its thread, not before
    assert gates[0].stopped_here
    await asyncio.to_thread(waiting.join, 30)
    assert wrote.is_set()  # the writers were let go
    assert leftovers(setup) == [".lock"]  # no staging, no partial archive, no scratch space
    assert [b.name for b in setup.repo.backups()] == [first.backup.name]
    lock = filelock.FileLock(setup.config.dir / ".lock")
    lock.acquire(timeout=0)  # the backup directory's lock was released
    lock.release()


# --- tampering ----------------------------------------------------------------------------------


def rewrite(archive: Path, change: Callable[[str, bytes], bytes]) -> None:
    """The same archive with one member's bytes changed, compressed again (a careful forger)."""
    members: list[tuple[str, bytes]] = []
    with (
        archive.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as plain,
        tarfile.open(fileobj=plain, mode="r|") as tar,
    ):
        for m in tar:
            members.append((m.name, tar.extractfile(m).read()))  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            changed = change(name, data)
            info.size = len(changed)
            tar.addfile(info, io.BytesIO(changed))
    archive.write_bytes(zstandard.ZstdCompressor().compress(out.getvalue()))


def test_a_damaged_archive_fails_verify_and_names_the_archive(setup: Setup) -> None:
    backup = setup.backup().backup
    data = bytearray(backup.archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.archive.write_bytes(bytes(data))
    report = verify(setup.repo, backup, Keys(), START, Progress(), probe=False)
    assert not report.ok
    assert any(p.startswith(backup.archive.name) for p in report.problems), report.problems
    assert setup.repo.get(backup.name).verified is False  # and retention will know


def test_a_tampered_file_in_the_archive_is_named(setup: Setup) -> None:
    backup = setup.backup().backup

    def forge(name: str, data: bytes) -> bytes:
        return (
            data + b"\n- Dana owes me 1000 euros.\n"
            if name == "workspaces/main/MEMORY.md"
            else data
        )

    rewrite(backup.archive, forge)
    report = verify(setup.repo, backup, Keys(), START, Progress(), probe=False)
    assert "workspaces/main/MEMORY.md: sha256 differs from the manifest (damaged or tampered)" in (
        report.problems
    )
    assert (
        f"{backup.archive.name}: sha256 differs from {backup.name}.manifest.json"
        in (report.problems[-1])
    )
    assert len(report.problems) == 2


def test_a_tampered_manifest_inside_the_archive_is_named(setup: Setup) -> None:
    backup = setup.backup().backup
    target = "state/runs.sqlite"

    def forge(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        for entry in manifest["files"]:
            if entry["path"] == target:
                entry["sha256"] = sha256_hex(b"something else")
        return json.dumps(manifest).encode()

    rewrite(backup.archive, forge)
    problems = verify(setup.repo, backup, Keys(), START, Progress(), probe=False).problems
    assert (
        f"manifest.json in {backup.archive.name}: differs from {backup.name}.manifest.json"
        in (problems[0])
    )
    assert (
        f"{backup.name}.manifest.json: entry for {target} differs from manifest.json"
        in (problems[1])
    )
    assert f"{target}: sha256 differs from the manifest (damaged or tampered)" in problems


def test_a_tampered_beside_manifest_is_named(setup: Setup) -> None:
    backup = setup.backup().backup
    beside = json.loads(backup.beside_path.read_text())
    for entry in beside["manifest"]["files"]:
        if entry["path"] == "workspaces/work/MEMORY.md":
            entry["size"] += 1
    backup.beside_path.write_text(json.dumps(beside))
    report = verify(setup.repo, setup.repo.get(backup.name), Keys(), START, Progress(), probe=False)
    assert report.problems == [
        f"{backup.name}.manifest.json: entry for workspaces/work/MEMORY.md differs from"
        " manifest.json in the archive"
    ]
    backup.beside_path.write_text("{ not json")
    broken = setup.repo.get(backup.name)
    assert broken.verified is False
    assert broken.problem
    report = verify(setup.repo, broken, Keys(), START, Progress(), probe=False)
    assert report.problems[0].startswith(f"{backup.name}.manifest.json: unreadable")


# --- a backup while ingest writes ---------------------------------------------------------------


def test_a_backup_taken_while_ingest_writes_restores_a_consistent_store(root: Path) -> None:
    """Ingest of a big home runs in one thread; backups are taken in another while it reads
    transcripts and while it embeds. Writers wait for the copy and go on; each restored store
    has vectors for exactly its embedded rows, turns without gaps, and answers searches."""
    big_home(root / "home", sessions=120, turns=60)
    harness = Harness.open(root / "home", root / "state", HashedWords())
    setup = Setup(root, harness, BackupConfig(dir=root / "state" / "backups"))
    progress = Progress()
    ingest = Ingest(harness, progress)
    ingest.start()
    try:
        wait(lambda: progress.phase == "reading" and progress.done >= 10, ingest)
        during_reading = setup.backup(probe=True)
        wait(lambda: progress.phase == "embedding" and progress.done >= 1, ingest)
        during_embedding = setup.backup(probe=True)
    finally:
        ingest.join()
        harness.close()
    assert ingest.error is None
    assert ingest.report is not None
    assert not ingest.report.problems
    total_turns = ingest.report.turns
    for n, created in enumerate((during_reading, during_embedding)):
        counts = created.manifest.memory
        assert counts is not None
        assert created.manifest.pause.paused
        assert 0 < counts.turns <= total_turns
        chroma = created.check.chroma
        assert chroma
        assert (chroma["missing"], chroma["extra"]) == (0, 0)
        assert chroma["count"] == counts.embedded
        target = root / f"restored-{n}"
        assert restore_into(created.backup, Keys(), target, Progress(), probe=False).check.ok
        restored = Harness(
            root / "home",
            target / "state",
            open_store(target / "state", HashedWords()),
            RunLog(target / "state" / "runs.sqlite"),
        )
        try:
            restored.assert_consistent()
            assert len(restored.turns()) == counts.turns
            assert restored.store.search(SearchQuery("pears on list 3", k=3)).results
            restored.ingest()  # and the restored store carries on where the copy stopped
            restored.assert_consistent()
            assert len(restored.turns()) == total_turns
        finally:
            restored.close()
    assert during_embedding.manifest.memory
    assert during_reading.manifest.memory
    assert during_reading.manifest.memory.embedded == 0 < during_embedding.manifest.memory.turns


class Ingest(threading.Thread):
    def __init__(self, harness: Harness, progress: Progress) -> None:
        super().__init__(name="ingest")
        self.harness = harness
        self.progress = progress
        self.report: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            context = replace(self.harness.context(), progress=self.progress)
            self.report = IngestRun(context, self.harness.store).run()
        except BaseException as exc:
            self.error = exc


def wait(condition: Callable[[], bool], ingest: Ingest) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if not ingest.is_alive():
            raise AssertionError("ingest finished before the backup could be taken; make it bigger")
        assert time.monotonic() < deadline
        time.sleep(0.001)


def big_home(home: Path, *, sessions: int, turns: int) -> None:
    """Many sessions of short turns: each file is one ingest step, committed as it goes."""
    writer = OpenClawWriter(home)
    writer.add_agent("main", "Juniper", "Dana")
    made = []
    for s in range(sessions):
        session = writer.new_session("main", SAMPLE_TODAY - timedelta(hours=s + 1))
        for n in range(turns // 2):
            session.user(f"list {s}: add {n} pears")
            session.assistant(f"added {n} pears to list {s}")
        made.append(session)
    writer.write_legacy("main", "agent:main:telegram:direct:5550001", made[0], archived=made[1:])


# --- leftovers of a killed backup -----------------------------------------------------------------


def test_the_next_backup_removes_what_a_killed_one_left(setup: Setup) -> None:
    first = setup.backup()
    backups = setup.config.dir
    killed = "openclaw-infra-20260310T103000Z"
    (backups / f".staging-{killed}" / "state").mkdir(parents=True)
    (backups / f".staging-{killed}" / "state" / "runs.sqlite").write_bytes(b"x" * 100)
    (backups / f".{killed}.tar.zst.partial").write_bytes(b"half")
    (backups / f"{killed}.tar.zst").write_bytes(b"renamed, manifest never written")
    (backups / ".verify-abc").mkdir()
    assert [b.name for b in setup.repo.backups()] == [first.backup.name]  # none of it listed

    second = setup.backup()
    assert sorted(second.leftovers) == sorted(
        [f".staging-{killed}", f".{killed}.tar.zst.partial", f"{killed}.tar.zst", ".verify-abc"]
    )
    assert leftovers(setup) == [".lock"]
    assert [b.name for b in setup.repo.backups()] == [second.backup.name, first.backup.name]
