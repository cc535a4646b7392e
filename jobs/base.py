"""What a job is: an async function of a JobContext that returns a JobResult.

A job knows nothing of the socket, the bot or APScheduler. What it needs from the process
(the clock, the stores, a view of the schedule) arrives in the context, so a test can hand it
a fixed clock and real stores in a temporary directory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from stores.runlog import JobState, RunLog

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ScheduledJobView:
    """What health needs to know about one job's place in the schedule."""

    name: str
    enabled: bool
    paused: bool
    interval: timedelta | None
    next_run_at: datetime | None


class SchedulerView(Protocol):
    def is_running(self) -> bool: ...

    def scheduled_jobs(self) -> list[ScheduledJobView]: ...

    @property
    def started_at(self) -> datetime: ...


@dataclass(frozen=True)
class HealthConfig:
    min_free_disk_bytes: int
    #: A job whose next run is this far in the past has not been picked up: the loop is stuck.
    overdue_slack: timedelta = timedelta(seconds=90)


@dataclass(frozen=True)
class JobContext:
    clock: Clock
    tz: tzinfo
    state_dir: Path
    run_log: RunLog
    scheduler: SchedulerView
    health: HealthConfig
    #: name -> a blocking call that writes to that database; raises if it cannot.
    write_probes: Mapping[str, Callable[[datetime], None]] = field(default_factory=dict)

    def job_states(self) -> dict[str, JobState]:
        return self.run_log.states()


@dataclass(frozen=True)
class JobResult:
    summary: str
    stats: dict[str, Any] = field(default_factory=dict)


JobFunc = Callable[[JobContext], Awaitable[JobResult]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunc
    description: str
    #: Run once when the daemon starts (recorded with trigger ``startup``).
    run_at_startup: bool = False
