from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.errors import Busy, UnknownJob
from stores.redaction import Redactor
from stores.runlog import RunStatus, RunTrigger
from tests.inprocess import build_table, job_settings, settle


async def test_a_run_records_success_and_the_job_result(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings()})
    entry = await table.runner.start("alpha", RunTrigger.MANUAL)
    assert table.run_log.run(entry.run_id).status is RunStatus.RUNNING
    table.gates["alpha"].release.set()
    run = await entry.task
    assert run.status is RunStatus.SUCCESS
    assert run.trigger is RunTrigger.MANUAL
    assert run.stats == {"summary": "done", "starts": 1}
    assert table.runner.running() == {}


async def test_an_overlapping_start_is_refused_busy(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings()})
    entry = await table.runner.start("alpha", RunTrigger.MANUAL)
    with pytest.raises(Busy, match=f"already running \\(run {entry.run_id}\\)"):
        await table.runner.start("alpha", RunTrigger.MANUAL)
    table.gates["alpha"].release.set()
    await entry.task
    assert table.gates["alpha"].starts == 1


async def test_two_simultaneous_starts_give_one_run(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings()})
    results = await asyncio.gather(
        table.runner.start("alpha", RunTrigger.MANUAL),
        table.runner.start("alpha", RunTrigger.SCHEDULE),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Busy) for r in results) == 1
    table.gates["alpha"].release.set()
    await settle(lambda: not table.runner.running())
    assert len(table.run_log.runs("alpha")) == 1


async def test_a_run_over_its_timeout_is_cancelled_and_recorded(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings(timeout="50ms")})
    entry = await table.runner.start("alpha", RunTrigger.MANUAL)
    run = await entry.task  # the gate is never opened: only the timeout ends it
    assert run.status is RunStatus.TIMEOUT
    assert "still running after" in (run.error_message or "")
    assert table.run_log.state("alpha").consecutive_failures == 1


async def test_a_failure_is_recorded_with_secrets_redacted(tmp_path: Path) -> None:
    key = "sk-ant-api03-" + "x" * 40
    table = build_table(tmp_path, {"alpha": job_settings()}, redactor=Redactor(["hunter2-secret"]))
    table.gates["alpha"].error = RuntimeError(f"upstream said no to {key} and hunter2-secret")
    table.gates["alpha"].release.set()
    run = await (await table.runner.start("alpha", RunTrigger.MANUAL)).task
    assert run.status is RunStatus.FAILED
    assert run.error_type == "RuntimeError"
    assert run.error_message is not None
    assert key not in run.error_message
    assert "hunter2-secret" not in run.error_message
    assert "[REDACTED]" in run.error_message


async def test_drain_lets_a_finishing_run_finish(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings()})
    entry = await table.runner.start("alpha", RunTrigger.MANUAL)
    drained = asyncio.create_task(table.runner.drain(timedelta(seconds=30)))
    await settle(lambda: table.runner.closing)
    with pytest.raises(Busy, match="stopping"):
        await table.runner.start("alpha", RunTrigger.MANUAL)
    table.gates["alpha"].release.set()
    runs = await drained
    assert [r.status for r in runs] == [RunStatus.SUCCESS]
    assert table.run_log.run(entry.run_id).status is RunStatus.SUCCESS


async def test_drain_cancels_what_outlives_the_grace_period(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings(), "beta": job_settings()})
    first = await table.runner.start("alpha", RunTrigger.MANUAL)
    second = await table.runner.start("beta", RunTrigger.SCHEDULE)
    runs = await table.runner.drain(timedelta(milliseconds=20))
    assert {r.status for r in runs} == {RunStatus.CANCELLED}
    for entry in (first, second):
        recorded = table.run_log.run(entry.run_id)
        assert recorded.status is RunStatus.CANCELLED
        assert "did not finish within" in (recorded.error_message or "")


async def test_an_unknown_job_is_refused(tmp_path: Path) -> None:
    table = build_table(tmp_path, {"alpha": job_settings()})
    with pytest.raises(UnknownJob, match="known: alpha"):
        await table.runner.start("omega", RunTrigger.MANUAL)
