"""Backups end to end: the real daemon, ``infractl backup ...``, a daemon started on a restored
state directory, the restore drill as a job, and ``kill -9`` in the middle of a backup.

Run as ``python -m tests.test_backup_daemon``, this module is ``infrad`` whose backup job stops
for good in the middle of writing its archive once ``$BACKUP_GATE`` exists, so that a test kills
the daemon at a known point instead of guessing with sleeps.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import EXIT_STATUS, ErrorCode
from jobs import backup
from jobs.base import JobContext, JobResult, Progress
from stores.backup.repo import BackupDir
from tests.memory_fixtures import (
    HashedWords,
    hashed_words_are_not_rebuilt,
    open_store,
    write_sample,
)
from tests.support import DaemonProcess, base_environ, running_daemon, wait_for
from tests.test_backup_store import make_setup

QUESTIONS = [
    "Where does my sister Mira live?",
    "dentist appointment",
    "launch review Thursday",
    "tomatoes south fence",
    "quarterly report revenue",
]


def ctl(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``infractl`` with the settings of the daemon living in ``root``, run from ``root``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "XDG_"))}
    environ.update(base_environ(root))
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", *args],
        env=environ,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ingested(daemon: DaemonProcess, after: int = 0) -> dict[str, Any]:
    """The first successful ingest run with an id above ``after``."""

    def done() -> dict[str, Any] | None:
        runs = daemon.call("runs", {"job": "ingest"})["runs"]
        return next(
            (r for r in reversed(runs) if r["status"] == "success" and r["run_id"] > after), None
        )

    found: dict[str, Any] = wait_for(done, timeout=60, what="an ingest run to succeed")
    return found


def searches(daemon: DaemonProcess) -> list[list[tuple[str, str, Any]]]:
    return [
        [
            (r["id"], r["text"], r["source"])
            for r in daemon.call("memory.search", {"query": q, "k": 5})["results"]
        ]
        for q in QUESTIONS
    ]


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    root = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    write_sample(root / "openclaw")
    try:
        with running_daemon(root) as running:
            ingested(running)
            running.call("pause", {"job": "ingest"})
            yield running
            assert running.stop() == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_backup_now_follows_the_run_and_its_progress(daemon: DaemonProcess) -> None:
    doing = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daemon.cli.main",
            "--socket",
            str(daemon.socket),
            "backup",
            "now",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[dict[str, Any]] = []
    while doing.poll() is None:
        (job,) = [j for j in daemon.call("jobs")["jobs"] if j["name"] == "backup"]
        if job["progress"]:
            seen.append(job["progress"])
        time.sleep(0.01)
    out, err = doing.communicate()
    assert doing.returncode == 0, err
    run = json.loads(out)
    assert (run["job"], run["status"], run["trigger"]) == ("backup", "success", "manual")
    stats = run["stats"]
    assert stats["summary"].startswith(stats["name"])
    assert "verified" in stats["summary"]
    assert stats["pause"]["paused"]
    assert stats["pause"]["held_ms"] > 0
    assert stats["memory"] == {"chunks": 12, "embedded": 12, "turns": 12, "vector_deletes": 0}
    assert stats["verified"]["chroma"]["search"]["found"]
    # The run showed where it was: the verify phase (a Chroma subprocess) lasts long enough.
    verifying = [p for p in seen if p["phase"] == "verify"]
    assert verifying, seen
    assert all(p["total"] == stats["bytes"] and 0 <= p["done"] <= p["total"] for p in verifying)


def test_list_verify_and_prune_through_infractl(daemon: DaemonProcess) -> None:
    if not daemon.call("backup.list")["backups"]:
        daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
    listed = ctl(daemon.root, "backup", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["dir"] == str(daemon.root / "state" / "backups")
    newest = data["backups"][0]
    assert newest["verified"] is True
    assert newest["files"] > 5
    assert not newest["encrypted"]
    table = ctl(daemon.root, "backup", "list")
    assert newest["name"] in table.stdout
    assert "yes" in table.stdout

    verified = ctl(daemon.root, "backup", "verify", newest["name"], "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"]
    assert report["files"] == newest["files"]
    assert set(report["sqlite"].values()) == {"ok"}
    assert report["chroma"]["count"] == 12
    assert report["chroma"]["search"]["found"]
    human = ctl(daemon.root, "backup", "verify")
    assert human.returncode == 0
    assert ": ok:" in human.stdout

    pruned = ctl(daemon.root, "backup", "prune", "--dry-run", "--json")
    assert pruned.returncode == 0, pruned.stderr
    decided = json.loads(pruned.stdout)
    assert decided["dry_run"]
    assert newest["name"] in {k["name"] for k in decided["kept"]}


def test_a_daemon_on_the_restored_state_answers_the_same_searches(daemon: DaemonProcess) -> None:
    before = searches(daemon)
    stats = daemon.call("memory.stats")
    made = daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
    target = daemon.root / "restored"
    done = ctl(daemon.root, "backup", "restore", "latest", "--target", str(target), "--json")
    assert done.returncode == 0, done.stderr
    restored = json.loads(done.stdout)
    assert restored["ok"]
    assert restored["state_dir"] == str(target / "state")
    assert (target / "workspaces" / "main" / "MEMORY.md").exists()

    other = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    env = {
        "OPENCLAW_INFRA_STATE_DIR": str(target / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(daemon.root / "openclaw"),
    }
    try:
        with running_daemon(other, env) as second:
            # Its run log came back too: ingest is paused there as it was here. Run it once.
            run = second.call("trigger", {"job": "ingest", "wait": True, "timeout": 60})
            assert run["run_id"] > made["run_id"]
            assert run["status"] == "success"
            assert run["stats"]["turns"] == 0  # and its checkpoints: nothing new to read
            assert second.call("memory.stats") == {
                **stats,
                "store": str(target / "state" / "chroma"),
            }
            assert searches(second) == before
            assert second.stop() == 0
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_the_restore_drill_is_a_job_run(daemon: DaemonProcess) -> None:
    if not daemon.call("backup.list")["backups"]:
        daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
    run = daemon.call(
        "trigger", {"job": "restore_drill", "wait": True, "timeout": 120}, timeout=150
    )
    assert run["status"] == "success"
    stats = run["stats"]
    assert stats["ok"]
    assert stats["problems"] == []
    assert stats["files"] > 5
    assert stats["chroma"]["search"]["found"]
    assert set(stats["sqlite"].values()) == {"ok"}
    assert stats["summary"].startswith("restored and checked openclaw-infra-")
    (recorded,) = daemon.call("runs", {"job": "restore_drill"})["runs"]
    assert recorded["run_id"] == run["run_id"]
    backups = daemon.root / "state" / "backups"
    assert not [p for p in backups.iterdir() if p.name.startswith(".drill-")]


def test_restoring_in_place_is_refused_while_the_daemon_runs(daemon: DaemonProcess) -> None:
    if not daemon.call("backup.list")["backups"]:
        daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
    refused = ctl(daemon.root, "backup", "restore", "latest", "--force")
    assert refused.returncode == EXIT_STATUS[ErrorCode.BUSY]
    (line,) = refused.stderr.splitlines()
    assert line.startswith("infractl: infrad is running on")
    assert "stop it" in line
    into_state = ctl(
        daemon.root, "backup", "restore", "latest", "--target", str(daemon.root / "state")
    )
    assert into_state.returncode == EXIT_STATUS[ErrorCode.BAD_REQUEST]
    assert "use --force" in into_state.stderr


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("backup.verify", {"name": "../etc/passwd"}, ErrorCode.BAD_REQUEST),
        ("backup.verify", {"name": "openclaw-infra-20200101T000000Z"}, ErrorCode.NOT_FOUND),
        ("backup.list", {"all": True}, ErrorCode.BAD_REQUEST),
        ("backup.prune", {"dry_run": "maybe"}, ErrorCode.BAD_REQUEST),
    ],
)
def test_bad_backup_requests(
    daemon: DaemonProcess, method: str, params: dict[str, Any], code: ErrorCode
) -> None:
    assert daemon.error_of(method, params).code is code


def test_restore_takes_the_running_daemons_directories(daemon: DaemonProcess) -> None:
    """The shell's settings point at another state directory (no backups there): infractl
    asks the daemon it speaks to where its backups are, and restores from those."""
    if not daemon.call("backup.list")["backups"]:
        daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
    elsewhere = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    target = elsewhere / "restored"
    try:
        env = {"OPENCLAW_INFRA_STATE_DIR": str(elsewhere / "state")}
        done = ctl(
            daemon.root,
            "--socket",
            str(daemon.socket),
            "backup",
            "restore",
            "latest",
            "--target",
            str(target),
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert "no daemon answered" not in done.stdout
        assert (target / "state" / "memory.sqlite").exists()
        where = daemon.call("backup.where")
        assert where["backup_dir"] == str(daemon.root / "state" / "backups")
        assert set(where) == {"state_dir", "backup_dir", "key_file", "encrypted", "workspaces"}
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_backup_list_says_when_by_what_and_why_kept(daemon: DaemonProcess) -> None:
    daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
    done = ctl(daemon.root, "backup", "list")
    assert done.returncode == 0, done.stderr
    assert "KEPT BY" in done.stdout
    assert re.search(r"yes, \d+s ago by backup", done.stdout), done.stdout
    newest = daemon.call("backup.list")["backups"][0]
    assert "newest verified" in newest["kept"]
    assert newest["verified_by"] == "backup"


def test_a_name_that_is_no_backup_name_is_said_so(daemon: DaemonProcess) -> None:
    error = daemon.error_of("backup.verify", {"name": "nosuch"})
    assert error.message == (
        "backup.verify: name 'nosuch' is not a backup name like openclaw-infra-20260310T033000Z"
        " (see `infractl backup list`)"
    )


# --- restore with the daemon stopped -------------------------------------------------------------


@hashed_words_are_not_rebuilt
def test_infractl_restores_in_place_with_the_daemon_stopped(root: Path) -> None:
    setup = make_setup(root)
    try:
        created = setup.backup()
        stats = setup.harness.store.stats()
        setup.harness.store.reset()
    finally:
        setup.harness.close()
    done = ctl(root, "backup", "restore", created.backup.name, "--force", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"]
    assert result["state_dir"] == str(root / "state")
    aside = Path(result["replaced_kept_in"])
    assert aside.parent == root
    assert aside.name.startswith("state.before-restore-")
    assert (aside / "memory.sqlite").exists()
    assert (root / "state" / "backups").is_dir()
    store = open_store(root / "state", HashedWords())
    try:
        assert store.stats() == stats
    finally:
        store.close()


@hashed_words_are_not_rebuilt
def test_a_passphrase_backup_restores_with_it_and_a_wrong_one_says_so_in_one_line(
    root: Path,
) -> None:
    setup = make_setup(root, passphrase="correct horse battery staple")
    try:
        created = setup.backup()
    finally:
        setup.harness.close()
    name = created.backup.name
    beside = created.backup.beside_path.read_text()
    assert "MEMORY.md" not in beside
    assert '"wrapped_identity": "' in beside
    target = str(root / "restored")

    def restore(passphrase: str | None, *flags: str) -> subprocess.CompletedProcess[str]:
        env = {"OPENCLAW_INFRA_BACKUP__PASSPHRASE": passphrase} if passphrase else {}
        return ctl(root, "backup", "restore", "latest", "--target", target, *flags, env=env)

    wrong = restore("Tr0ub4dor&3")
    assert wrong.returncode == EXIT_STATUS[ErrorCode.FORBIDDEN]
    assert wrong.stderr.splitlines() == [
        f"infractl: wrong passphrase for backup {name}:"
        " OPENCLAW_INFRA_BACKUP__PASSPHRASE does not open it"
    ]
    assert not (root / "restored" / "state").exists()
    missing = restore(None)
    assert missing.returncode == EXIT_STATUS[ErrorCode.FORBIDDEN]
    assert "set OPENCLAW_INFRA_BACKUP__PASSPHRASE" in missing.stderr
    right = restore("correct horse battery staple", "--json")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["ok"]


# --- kill -9 in the middle of a backup --------------------------------------------------------


def test_kill_9_in_the_middle_of_a_backup(root: Path) -> None:
    write_sample(root / "openclaw")
    # Enough to fill the compressor's buffers, so that the archive has bytes on disk at the gate.
    # (Not a note: ingest leaves it alone; the backup's memory/** takes it.)
    attachment = root / "openclaw" / "workspace" / "memory" / "scan.pdf"
    attachment.write_bytes(base64.b64encode(os.urandom(18 * 2**20)))
    gate = root / "gate"
    backups = root / "state" / "backups"
    launcher = [sys.executable, "-m", "tests.test_backup_daemon"]
    with running_daemon(root, {"BACKUP_GATE": str(gate)}, launcher) as daemon:
        ingested(daemon)
        first = daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
        gate.touch()
        daemon.call("trigger", {"job": "backup"})
        wait_for((root / "gate.reached").exists, timeout=60, what="the archive to be half written")
        partial = [p.name for p in backups.glob(".*.partial")]
        staging = [p.name for p in backups.glob(".staging-*")]
        assert partial
        assert staging
        assert (backups / partial[0]).stat().st_size > 0
        daemon.signal(signal.SIGKILL)
        daemon.wait()

    name = first["stats"]["name"]
    assert [b.name for b in BackupDir(backups).backups()] == [name]  # the half one is not listed
    with running_daemon(root) as daemon:
        assert [b["name"] for b in daemon.call("backup.list")["backups"]] == [name]
        assert daemon.call("backup.verify", {"name": name})["ok"]  # the earlier one is intact
        again = daemon.call("trigger", {"job": "backup", "wait": True, "timeout": 120})
        assert again["status"] == "success"
        assert set(again["stats"]["leftovers_removed"]) >= {*partial, *staging}
        assert sorted(p.name for p in backups.iterdir() if p.name.startswith(".")) == [".lock"]
        (abandoned,) = daemon.call("runs", {"job": "backup", "status": "abandoned"})["runs"]
        assert abandoned["run_id"] > first["run_id"]
        # Both were asked for by hand: the manual rule keeps them, though they share an hour.
        assert again["stats"]["pruned"] == []
        kept = {b["name"]: b["kept"] for b in daemon.call("backup.list")["backups"]}
        assert list(kept) == [again["stats"]["name"], name]
        assert kept[name] == ["manual 2 of 10"]
        assert daemon.stop() == 0


class _Gate(Progress):
    """Progress that stops the backup for good once its archive has bytes on disk."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name != "done" or self.phase != "archive":
            return
        backups = Path(os.environ["OPENCLAW_INFRA_STATE_DIR"]) / "backups"
        if any(p.stat().st_size > 0 for p in backups.glob(".*.partial")):
            Path(os.environ["BACKUP_GATE"] + ".reached").touch()
            while True:  # the worker thread waits for the kill
                time.sleep(1)


async def gated_backup(ctx: JobContext) -> JobResult:
    if not Path(os.environ["BACKUP_GATE"]).exists():  # noqa: ASYNC240 - a test launcher
        return await backup.run(ctx)
    return await backup.run(replace(ctx, progress=_Gate()))


if __name__ == "__main__":
    from daemon.main import main
    from daemon.supervisor import default_job_settings
    from jobs.base import JobSpec
    from jobs.registry import JOBS

    spec = JobSpec("backup", gated_backup, JOBS["backup"].description)
    sys.exit(main(sys.argv[1:], job_table=({**JOBS, "backup": spec}, default_job_settings)))
