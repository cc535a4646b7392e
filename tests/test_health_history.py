"""The health history in the run log's database: one row per health run, newest first, pruned
to the retention setting, and a database of the previous schema upgraded in place."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs.base import HealthConfig, JobContext, ScheduledJobView
from jobs.health import run
from stores.runlog import RunLog, RunStatus, RunTrigger

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CHECKS = [{"name": "disk", "status": "ok", "detail": "plenty"}]


@pytest.fixture
def log(tmp_path: Path) -> RunLog:
    return RunLog(tmp_path / "runs.sqlite")


def test_reports_come_back_newest_first_with_their_checks(log: RunLog) -> None:
    for minutes, status in ((0, "ok"), (5, "degraded"), (10, "ok")):
        log.record_health(T0 + timedelta(minutes=minutes), status, CHECKS)
    history = log.health_history()
    assert [r.status for r in history] == ["ok", "degraded", "ok"]
    assert [r.checked_at for r in history] == [T0 + timedelta(minutes=m) for m in (10, 5, 0)]
    assert history[0].checks == CHECKS
    assert [r.status for r in log.health_history(limit=1)] == ["ok"]


def test_since_and_prune_compare_times_not_their_spelling(log: RunLog) -> None:
    """A report stamped in another zone sorts by the moment it names."""
    plus_two = timezone(timedelta(hours=2))
    log.record_health(T0, "ok", CHECKS)  # 09:00 UTC
    log.record_health(datetime(2026, 11, 24, 10, 30, tzinfo=plus_two), "failed", CHECKS)  # 08:30Z
    assert [r.status for r in log.health_history()] == ["ok", "failed"]
    assert [r.status for r in log.health_history(since=T0 - timedelta(minutes=10))] == ["ok"]
    assert log.prune_health(T0) == 1
    assert [r.status for r in log.health_history()] == ["ok"]


def test_prune_leaves_the_runs_alone(log: RunLog) -> None:
    run_id = log.start_run("health", RunTrigger.SCHEDULE, T0, None)
    log.finish_run(run_id, RunStatus.SUCCESS, T0)
    log.record_health(T0, "ok", CHECKS)
    assert log.prune_health(T0 + timedelta(days=1)) == 1
    assert log.health_history() == []
    assert [r.run_id for r in log.runs("health")] == [run_id]


def test_a_run_log_of_the_previous_schema_gains_the_history(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE job_runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL,"
            " trigger TEXT NOT NULL, status TEXT NOT NULL, scheduled_for TEXT, started_at TEXT,"
            " finished_at TEXT, duration_ms REAL, error_type TEXT, error_message TEXT,"
            " stats TEXT NOT NULL DEFAULT '{}');"
            "INSERT INTO job_runs (job, trigger, status) VALUES ('backup', 'manual', 'success');"
            "PRAGMA user_version = 1;"
        )
    conn.close()
    log = RunLog(path)
    assert [r.job for r in log.runs()] == ["backup"]
    log.record_health(T0, "ok", CHECKS)
    assert [r.status for r in log.health_history()] == ["ok"]


class _Scheduler:
    started_at = T0 - timedelta(days=1)

    def is_running(self) -> bool:
        return True

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return []


async def test_each_health_run_adds_a_row_and_prunes_past_the_retention(log: RunLog) -> None:
    log.record_health(T0 - timedelta(days=31), "failed", CHECKS)
    log.record_health(T0 - timedelta(days=29), "degraded", CHECKS)
    ctx = JobContext(
        clock=lambda: T0,
        tz=UTC,
        state_dir=log.path.parent,
        run_log=log,
        scheduler=_Scheduler(),
        health=HealthConfig(min_free_disk_bytes=0, keep_history=timedelta(days=30)),
    )
    result = await run(ctx)
    history = log.health_history()
    assert [(r.checked_at, r.status) for r in history] == [
        (T0, "ok"),
        (T0 - timedelta(days=29), "degraded"),
    ]
    assert history[0].checks == result.stats["checks"]
    await run(replace(ctx, health=replace(ctx.health, keep_history=timedelta(hours=1))))
    assert [r.checked_at for r in log.health_history()] == [T0, T0]
