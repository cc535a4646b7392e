from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stores.runlog import RunStatus, RunTrigger
from tests.inprocess import build_table, job_settings, settle


def _now() -> datetime:
    return datetime.now(UTC)


async def test_first_start_sets_the_anchor_and_catches_nothing_up(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    assert await table.scheduler.start() == []
    try:
        assert table.run_log.state("alpha").schedule_anchor is not None
        assert table.run_log.runs() == []
        (view,) = table.scheduler.scheduled_jobs()
        assert view.next_run_at is not None
        assert view.next_run_at > _now()
    finally:
        await table.scheduler.shutdown()


async def test_a_run_missed_while_down_is_caught_up_once(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    table.run_log.set_anchor("alpha", _now() - timedelta(hours=3, minutes=10))
    await table.scheduler.start()
    try:
        await settle(table.gates["alpha"].started.is_set)
        table.gates["alpha"].release.set()
        await settle(lambda: not table.runner.running())
        (run,) = table.run_log.runs("alpha")
        assert run.trigger is RunTrigger.CATCHUP
        assert run.status is RunStatus.SUCCESS
        assert run.scheduled_for is not None
        assert _now() - run.scheduled_for < timedelta(hours=1)  # the latest fire time, once
    finally:
        await table.scheduler.shutdown()


async def test_a_run_missed_beyond_grace_is_recorded_not_run(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")}, grace=timedelta(minutes=5))
    table.run_log.set_anchor("alpha", _now() - timedelta(hours=3, minutes=10))
    missed = await table.scheduler.start()
    try:
        assert [r.status for r in missed] == [RunStatus.MISSED]
        assert missed[0].stats == {"missed_runs": 3}
        assert table.gates["alpha"].starts == 0
        anchor = table.run_log.state("alpha").schedule_anchor
        assert anchor == missed[0].scheduled_for
    finally:
        await table.scheduler.shutdown()


async def test_startup_jobs_run_once_at_start(tmp_path: Path) -> None:
    table = build_table(
        tmp_path, {"alpha": job_settings(), "beta": job_settings()}, startup=frozenset({"alpha"})
    )
    await table.scheduler.start()
    try:
        await settle(table.gates["alpha"].started.is_set)
        table.gates["alpha"].release.set()
        await settle(lambda: not table.runner.running())
        assert [(r.job, r.trigger) for r in table.run_log.runs()] == [("alpha", RunTrigger.STARTUP)]
    finally:
        await table.scheduler.shutdown()


async def test_a_due_run_fires_through_apscheduler(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    await table.scheduler.start()
    try:
        table.scheduler._scheduler.modify_job("alpha", next_run_time=_now())
        table.scheduler.kick()
        await settle(table.gates["alpha"].started.is_set)
        table.gates["alpha"].release.set()
        await settle(lambda: bool(table.run_log.runs("alpha", status=RunStatus.SUCCESS)))
        (run,) = table.run_log.runs("alpha")
        assert run.trigger is RunTrigger.SCHEDULE
        assert table.run_log.state("alpha").schedule_anchor == run.scheduled_for
    finally:
        await table.scheduler.shutdown()


async def test_an_overlapping_scheduled_run_is_recorded_skipped(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    await table.scheduler.start()
    try:
        running = await table.scheduler.trigger("alpha")
        table.scheduler._scheduler.modify_job("alpha", next_run_time=_now())
        table.scheduler.kick()
        await settle(lambda: bool(table.run_log.runs("alpha", status=RunStatus.SKIPPED)))
        (skipped,) = table.run_log.runs("alpha", status=RunStatus.SKIPPED)
        assert f"run {running.run_id}" in (skipped.error_message or "")
        assert table.gates["alpha"].starts == 1
        table.gates["alpha"].release.set()
        await running.task
    finally:
        await table.scheduler.shutdown()


async def test_a_scheduled_run_overlapping_a_scheduled_run_is_skipped(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    await table.scheduler.start()
    try:
        table.scheduler._scheduler.modify_job("alpha", next_run_time=_now())
        table.scheduler.kick()
        await settle(table.gates["alpha"].started.is_set)
        # APScheduler still counts the first run as an instance: max_instances=1 refuses this.
        table.scheduler._scheduler.modify_job("alpha", next_run_time=_now())
        table.scheduler.kick()
        await settle(lambda: bool(table.run_log.runs("alpha", status=RunStatus.SKIPPED)))
        table.gates["alpha"].release.set()
        await settle(lambda: bool(table.run_log.runs("alpha", status=RunStatus.SUCCESS)))
        assert table.gates["alpha"].starts == 1
    finally:
        await table.scheduler.shutdown()


async def test_pause_survives_a_restart_and_resume_forgives_the_gap(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    await table.scheduler.start()
    await table.scheduler.pause("alpha")
    assert table.scheduler.scheduled_jobs()[0].next_run_at is None
    await table.scheduler.shutdown()
    table.run_log.set_anchor("alpha", _now() - timedelta(hours=5))  # long paused

    again = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    assert await again.scheduler.start() == []
    try:
        (view,) = again.scheduler.scheduled_jobs()
        assert view.paused
        assert view.next_run_at is None
        await again.scheduler.resume("alpha")
        (view,) = again.scheduler.scheduled_jobs()
        assert view.next_run_at is not None
        assert again.run_log.runs() == []  # the paused hours are not owed
    finally:
        await again.scheduler.shutdown()
    third = build_table(tmp_path, {"alpha": job_settings("every 1h")})
    assert await third.scheduler.start() == []
    await third.scheduler.shutdown()
    assert third.gates["alpha"].starts == 0
    assert third.run_log.runs() == []


async def test_apply_reschedules_only_what_changed(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings("every 1h"), "beta": job_settings()})
    await table.scheduler.start()
    try:
        before = {v.name: v.next_run_at for v in table.scheduler.scheduled_jobs()}
        changes = table.scheduler.apply(
            {
                "alpha": job_settings("0 4 * * *"),
                "beta": job_settings().model_copy(update={"enabled": False}),
            }
        )
        assert changes == {"added": [], "removed": ["beta"], "rescheduled": ["alpha"]}
        after = {v.name: v for v in table.scheduler.scheduled_jobs()}
        assert after["alpha"].next_run_at != before["alpha"]
        assert after["alpha"].next_run_at is not None
        assert after["alpha"].next_run_at.hour == 4
        assert after["beta"].next_run_at is None
        assert table.scheduler.apply({"alpha": job_settings("0 4 * * *"), "beta": job_settings()})[
            "added"
        ] == ["beta"]
    finally:
        await table.scheduler.shutdown()
