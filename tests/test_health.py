from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobs.base import HealthConfig, JobContext, ScheduledJobView
from jobs.checks import HealthStatus
from jobs.health import check, freshness_check, overdue_jobs
from stores.runlog import JobState, RunLog

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=2)


def _view(
    interval: timedelta | None = timedelta(hours=1),
    *,
    paused: bool = False,
    next_run_at: datetime | None = None,
) -> ScheduledJobView:
    return ScheduledJobView("summarize", True, paused, interval, next_run_at)


def test_a_recent_success_is_fresh() -> None:
    state = JobState("summarize", last_success_at=NOW - timedelta(minutes=90))
    assert freshness_check(_view(), state, STARTED, NOW).status is HealthStatus.OK


def test_no_success_within_two_intervals_is_degraded() -> None:
    state = JobState("summarize", last_success_at=NOW - timedelta(hours=2, seconds=1))
    result = freshness_check(_view(), state, STARTED, NOW)
    assert result.status is HealthStatus.DEGRADED
    assert "expected within 2:00:00" in result.detail


def test_a_fresh_start_gives_every_job_a_fair_window() -> None:
    never = JobState("summarize")
    just_started = NOW - timedelta(minutes=30)
    assert freshness_check(_view(), never, just_started, NOW).status is HealthStatus.OK
    assert freshness_check(_view(), never, STARTED, NOW).status is HealthStatus.DEGRADED


def test_failures_in_a_row_degrade_even_when_recent() -> None:
    state = JobState(
        "summarize", last_success_at=NOW - timedelta(minutes=5), consecutive_failures=2
    )
    result = freshness_check(_view(), state, STARTED, NOW)
    assert result.status is HealthStatus.DEGRADED
    assert "2 failure(s) in a row" in result.detail


def test_a_paused_job_is_not_stale() -> None:
    state = JobState("summarize", last_success_at=NOW - timedelta(days=9))
    assert freshness_check(_view(paused=True), state, STARTED, NOW).status is HealthStatus.OK


def test_overdue_means_due_and_not_picked_up() -> None:
    slack = timedelta(seconds=90)
    views = [
        _view(next_run_at=NOW - timedelta(minutes=5)),
        ScheduledJobView("sync", True, False, timedelta(days=1), NOW - timedelta(seconds=30)),
        ScheduledJobView("backup", True, True, timedelta(days=1), NOW - timedelta(hours=1)),
    ]
    assert overdue_jobs(views, NOW, slack) == ["summarize"]


class _Scheduler:
    def __init__(self, views: list[ScheduledJobView], running: bool = True) -> None:
        self.views = views
        self.running = running
        self.started_at = STARTED

    def is_running(self) -> bool:
        return self.running

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return self.views


def _context(
    tmp_path: Path, scheduler: _Scheduler, free: int = 0, probe_fails: bool = False
) -> JobContext:
    run_log = RunLog(tmp_path / "runs.sqlite")

    def probe(at: datetime) -> None:
        if probe_fails:
            raise OSError("disk I/O error")
        run_log.probe_writable(at)

    return JobContext(
        clock=lambda: NOW,
        tz=UTC,
        state_dir=tmp_path,
        run_log=run_log,
        scheduler=scheduler,
        health=HealthConfig(min_free_disk_bytes=free),
        write_probes={"runs": probe},
    )


async def test_report_is_ok_when_everything_is(tmp_path: Path) -> None:
    report = await check(_context(tmp_path, _Scheduler([])))
    assert report.status is HealthStatus.OK
    assert {c.name for c in report.checks} == {"scheduler", "db:runs", "disk"}


async def test_report_names_each_failing_component(tmp_path: Path) -> None:
    ctx = _context(
        tmp_path,
        _Scheduler([_view(next_run_at=NOW - timedelta(hours=1))]),
        free=2**62,
        probe_fails=True,
    )
    report = await check(ctx)
    by_name = {c.name: c for c in report.checks}
    assert report.status is HealthStatus.FAILED
    assert by_name["scheduler"].status is HealthStatus.FAILED
    assert "summarize" in by_name["scheduler"].detail
    assert by_name["db:runs"].status is HealthStatus.FAILED
    assert "disk I/O error" in by_name["db:runs"].detail
    assert by_name["disk"].status is HealthStatus.DEGRADED
    assert by_name["job:summarize"].status is HealthStatus.DEGRADED


async def test_a_stopped_scheduler_fails_health(tmp_path: Path) -> None:
    report = await check(_context(tmp_path, _Scheduler([], running=False)))
    assert report.status is HealthStatus.FAILED
