from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.opening import open_run_log
from stores.runlog import RunLog, RunStatus, RunTrigger
from stores.sqlite import WAL_LIMIT, CorruptDatabase, IncompatibleDatabase

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> RunLog:
    return RunLog(tmp_path / "runs.sqlite")


def test_a_run_is_recorded_from_start_to_finish(log: RunLog) -> None:
    run_id = log.start_run("health", RunTrigger.SCHEDULE, T0, scheduled_for=T0)
    assert log.run(run_id).status is RunStatus.RUNNING
    run = log.finish_run(run_id, RunStatus.SUCCESS, T0 + timedelta(seconds=2), stats={"checks": 4})
    assert run.status is RunStatus.SUCCESS
    assert run.duration_ms == pytest.approx(2000)
    assert run.stats == {"checks": 4}
    state = log.state("health")
    assert state.last_success_at == T0 + timedelta(seconds=2)
    assert state.last_run_id == run_id


def test_consecutive_failures_count_and_reset(log: RunLog) -> None:
    for status in (RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.SKIPPED, RunStatus.FAILED):
        run_id = log.start_run("sync", RunTrigger.SCHEDULE, T0, None)
        log.finish_run(run_id, status, T0, error_type="X", error_message="boom")
    assert log.state("sync").consecutive_failures == 3  # a skip is not a failure
    run_id = log.start_run("sync", RunTrigger.MANUAL, T0, None)
    log.finish_run(run_id, RunStatus.SUCCESS, T0)
    assert log.state("sync").consecutive_failures == 0


def test_running_runs_become_abandoned(log: RunLog) -> None:
    first = log.start_run("health", RunTrigger.SCHEDULE, T0, None)
    finished = log.start_run("health", RunTrigger.MANUAL, T0, None)
    log.finish_run(finished, RunStatus.SUCCESS, T0)
    abandoned = log.abandon_running(T0 + timedelta(minutes=1))
    assert [r.run_id for r in abandoned] == [first]
    assert log.run(first).status is RunStatus.ABANDONED
    assert log.run(finished).status is RunStatus.SUCCESS
    assert log.abandon_running(T0) == []


def test_history_filters_and_orders_newest_first(log: RunLog) -> None:
    log.record("health", RunTrigger.SCHEDULE, RunStatus.SKIPPED, T0)
    log.record("sync", RunTrigger.CATCHUP, RunStatus.MISSED, T0, scheduled_for=T0)
    log.record("health", RunTrigger.SCHEDULE, RunStatus.MISSED, T0)
    assert [r.job for r in log.runs()] == ["health", "sync", "health"]
    assert [r.status for r in log.runs(job="health")] == [RunStatus.MISSED, RunStatus.SKIPPED]
    assert [r.job for r in log.runs(status=RunStatus.MISSED, limit=1)] == ["health"]


def test_anchor_and_pause_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    log = RunLog(path)
    log.set_anchor("health", T0)
    log.set_paused("health", True)
    log.close()
    reopened = RunLog(path)
    state = reopened.state("health")
    assert state.schedule_anchor == T0
    assert state.paused is True


def test_the_write_ahead_log_is_cut_back_after_checkpoints(log: RunLog, tmp_path: Path) -> None:
    """A steady trickle of runs (a watcher's ingest a second) writes far more than the WAL's
    checkpoint size; what stays on disk is bounded."""
    for i in range(1500):
        run_id = log.start_run("ingest", RunTrigger.CHANGE, T0, None)
        log.finish_run(run_id, RunStatus.FAILED, T0, error_type="X", error_message=f"{i} " * 500)
    wal = tmp_path / "runs.sqlite-wal"
    assert wal.stat().st_size <= WAL_LIMIT + 64 * 1024  # the limit, and the last transaction
    assert log.count_runs() == 1500


def test_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunLog(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_corrupt_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(CorruptDatabase, match="not a usable SQLite database"):
        RunLog(path)
    assert path.read_bytes() == garbage


def test_the_daemon_keeps_a_corrupt_history_aside_and_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    garbage = b"SQLite format 3\x00" + os.urandom(4096)
    path.write_bytes(garbage)
    log = open_run_log(path)
    assert log.runs() == []
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite.corrupt-")]
    assert len(kept) == 1
    assert kept[0].read_bytes() == garbage


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(IncompatibleDatabase, match="newer"):
        open_run_log(path)
    assert path.exists()
