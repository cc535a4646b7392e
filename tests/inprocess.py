"""An in-process job table for runner and scheduler tests: real RunLog, real APScheduler, and
jobs whose progress the test controls with events instead of sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.config.sections import JobSettings
from daemon.runner import JobRunner
from daemon.scheduler import JobScheduler
from jobs.base import HealthConfig, JobContext, JobResult, JobSpec, ScheduledJobView
from stores.redaction import Redactor
from stores.runlog import RunLog


@dataclass
class Gate:
    """A job that waits until the test opens it; counts how often it started."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    starts: int = 0
    error: Exception | None = None

    async def __call__(self, ctx: JobContext) -> JobResult:
        self.starts += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return JobResult(summary="done", stats={"starts": self.starts})


class _NoScheduler:
    started_at = datetime(2026, 1, 1, tzinfo=UTC)

    def is_running(self) -> bool:
        return True

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return []


def job_settings(schedule: str = "every 1h", timeout: str = "1m") -> JobSettings:
    return JobSettings.model_validate({"schedule": schedule, "timeout": timeout})


@dataclass
class Table:
    run_log: RunLog
    runner: JobRunner
    scheduler: JobScheduler
    gates: dict[str, Gate]


def build_table(
    state: Path,
    schedules: dict[str, JobSettings],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    grace: timedelta = timedelta(hours=6),
    redactor: Redactor | None = None,
    startup: frozenset[str] = frozenset(),
) -> Table:
    run_log = RunLog(state / "runs.sqlite")
    gates = {name: Gate() for name in schedules}
    specs = {
        name: JobSpec(name, gates[name], f"test job {name}", run_at_startup=name in startup)
        for name in schedules
    }
    context = JobContext(
        clock=clock,
        tz=UTC,
        state_dir=state,
        run_log=run_log,
        scheduler=_NoScheduler(),
        health=HealthConfig(min_free_disk_bytes=0),
    )
    runner = JobRunner(
        specs=specs,
        timeouts={n: s.timeout for n, s in schedules.items()},
        run_log=run_log,
        context=context,
        clock=clock,
        redactor=redactor or Redactor(),
    )
    scheduler = JobScheduler(
        specs=specs,
        job_settings=schedules,
        runner=runner,
        run_log=run_log,
        tz=UTC,
        clock=clock,
        catchup_grace=grace,
    )
    return Table(run_log, runner, scheduler, gates)


async def settle(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Let the loop run until ``condition`` holds (a guard against hangs, not a timing test)."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)
