"""Alert rules on a real run history: one alert per condition, a recovery, a rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.bot.alerts import AlertPolicy, Alerts
from stores.runlog import RunLog, RunStatus, RunTrigger

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LOST = "(and 1 earlier alert(s) that could not be sent)"


class Line:
    """The alert channel: records what was sent; can be down."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.up = True

    async def __call__(self, text: str) -> bool:
        if self.up:
            self.sent.append(text)
        return self.up


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def run_log(tmp_path: Path) -> Iterator[RunLog]:
    log = RunLog(tmp_path / "runs.sqlite")
    yield log
    log.close()


def _run(
    log: RunLog, job: str, status: RunStatus, at: datetime, stats: dict[str, Any] | None = None
) -> None:
    if status is RunStatus.MISSED:
        log.record(job, RunTrigger.SCHEDULE, status, at, scheduled_for=at)
        return
    run_id = log.start_run(job, RunTrigger.SCHEDULE, at, at)
    error = "boom <b>" if status in (RunStatus.FAILED, RunStatus.TIMEOUT) else None
    log.finish_run(run_id, status, at, error_message=error, stats=stats)


def _health(log: RunLog, at: datetime, **statuses: str) -> None:
    checks = [
        {"name": n.replace("_", ":"), "status": s, "detail": f"{n} is {s}"}
        for n, s in statuses.items()
    ]
    _run(log, "health", RunStatus.SUCCESS, at, {"status": "x", "checks": checks})


async def _alerts(run_log: RunLog, **policy: Any) -> tuple[Alerts, Line, Clock]:
    line, clock = Line(), Clock()
    alerts = Alerts(AlertPolicy(**policy), run_log, line, clock)
    await alerts.begin()
    return alerts, line, clock


async def test_n_failures_in_a_row_alert_once_and_recover_once(run_log: RunLog) -> None:
    _run(run_log, "sync", RunStatus.FAILED, T0)  # before the daemon watched: history
    alerts, line, _ = await _alerts(run_log, failures_in_a_row=3)
    _run(run_log, "sync", RunStatus.FAILED, T0)
    await alerts.check()
    assert line.sent == [], "two in a row, counting the one before we watched"
    for _ in range(5):
        _run(run_log, "sync", RunStatus.TIMEOUT, T0)
        await alerts.check()
    assert line.sent == ["❌ sync failed 3 times in a row: boom <b>"]
    _run(run_log, "sync", RunStatus.SUCCESS, T0)
    _run(run_log, "sync", RunStatus.SUCCESS, T0)
    await alerts.check()
    assert line.sent[1:] == ["✅ sync succeeded again"]
    assert alerts.active == {}


async def test_a_missed_run_alerts(run_log: RunLog) -> None:
    alerts, line, _ = await _alerts(run_log)
    _run(run_log, "backup", RunStatus.MISSED, T0)
    _run(run_log, "backup", RunStatus.MISSED, T0 + timedelta(days=1))
    await alerts.check()
    assert line.sent == ["⚠️ backup: the run due 2026-11-02T09:00+00:00 was missed"]


async def test_health_turning_degraded_alerts_but_not_for_jobs_or_the_bot(run_log: RunLog) -> None:
    alerts, line, _ = await _alerts(run_log)
    _health(run_log, T0, scheduler="ok", bot="degraded", job_sync="degraded")
    await alerts.check()
    assert line.sent == []
    _health(run_log, T0, scheduler="ok", disk="degraded")
    _health(run_log, T0, scheduler="ok", disk="degraded")
    await alerts.check()
    assert line.sent == ["⚠️ health degraded: disk: disk is degraded"]
    _health(run_log, T0, scheduler="ok", disk="ok")
    await alerts.check()
    assert line.sent[1:] == ["✅ health is ok again"]


async def test_a_storm_is_rate_limited_and_the_rest_follows_later(run_log: RunLog) -> None:
    alerts, line, clock = await _alerts(run_log, failures_in_a_row=1, limit=2)
    for n in range(6):
        _run(run_log, f"job{n}", RunStatus.FAILED, T0)
    await alerts.check()
    await alerts.check()
    assert len(line.sent) == 2
    clock.now += timedelta(minutes=59)
    await alerts.check()
    assert len(line.sent) == 2, "still within the window"
    clock.now += timedelta(minutes=1)
    _run(run_log, "job5", RunStatus.SUCCESS, T0)  # cleared before anyone heard of it
    await alerts.check()
    assert line.sent[2:] == [
        "❌ job2 failed: boom <b>\n" + LOST,
        "❌ job3 failed: boom <b>",
    ]
    clock.now += timedelta(hours=1)
    await alerts.check()
    assert line.sent[4:] == ["❌ job4 failed: boom <b>"]
    assert sorted(alerts.active) == [f"job:job{n}" for n in range(5)]


async def test_an_alert_waits_for_telegram_and_no_recovery_without_it(run_log: RunLog) -> None:
    alerts, line, _ = await _alerts(run_log, failures_in_a_row=1)
    line.up = False
    _run(run_log, "sync", RunStatus.FAILED, T0)
    _run(run_log, "backup", RunStatus.FAILED, T0)
    await alerts.check()
    line.up = True
    _run(run_log, "backup", RunStatus.SUCCESS, T0)
    await alerts.check()
    assert line.sent == ["❌ sync failed: boom <b>\n" + LOST]
    assert alerts.active == {"job:sync": True}


async def test_a_run_still_going_does_not_hide_later_ones(run_log: RunLog) -> None:
    alerts, line, _ = await _alerts(run_log, failures_in_a_row=1)
    going = run_log.start_run("ingest", RunTrigger.SCHEDULE, T0, None)
    _run(run_log, "sync", RunStatus.FAILED, T0)
    await alerts.check()
    assert len(line.sent) == 1
    run_log.finish_run(going, RunStatus.FAILED, T0, error_message="late")
    await alerts.check()
    await alerts.check()
    assert line.sent[1:] == ["❌ ingest failed: late"]


async def test_a_jobs_own_alert_is_sent_once_per_window(run_log: RunLog) -> None:
    alerts, line, clock = await _alerts(run_log)
    await alerts.notify("quota", "LLM budget 90% used")
    await alerts.notify("quota", "LLM budget 91% used")
    clock.now += timedelta(hours=1)
    await alerts.notify("quota", "LLM budget 95% used")
    assert line.sent == ["LLM budget 90% used", "LLM budget 95% used"]


async def test_a_recovery_held_back_or_undelivered_is_sent_later(run_log: RunLog) -> None:
    alerts, line, clock = await _alerts(run_log, failures_in_a_row=1, limit=2)
    _run(run_log, "sync", RunStatus.FAILED, T0)
    _run(run_log, "backup", RunStatus.FAILED, T0)
    await alerts.check()
    assert len(line.sent) == 2
    _run(run_log, "sync", RunStatus.SUCCESS, T0)
    _run(run_log, "backup", RunStatus.SUCCESS, T0)
    await alerts.check()
    assert len(line.sent) == 2, "the limit holds the recoveries back"
    clock.now += timedelta(hours=1)
    line.up = False
    await alerts.check()
    line.up = True
    await alerts.check()
    assert sorted(line.sent[2:]) == ["✅ backup succeeded again", "✅ sync succeeded again"]
    assert alerts.active == {}


async def test_a_condition_back_before_its_recovery_went_out_sends_neither(
    run_log: RunLog,
) -> None:
    alerts, line, clock = await _alerts(run_log, failures_in_a_row=1, limit=1)
    _run(run_log, "sync", RunStatus.FAILED, T0)
    await alerts.check()
    _run(run_log, "sync", RunStatus.SUCCESS, T0)
    _run(run_log, "sync", RunStatus.FAILED, T0)
    await alerts.check()
    clock.now += timedelta(hours=1)
    await alerts.check()
    assert line.sent == ["❌ sync failed: boom <b>"], "still failing, as far as the person knows"
    assert alerts.active == {"job:sync": True}
