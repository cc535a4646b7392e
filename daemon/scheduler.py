"""APScheduler wiring: when jobs run, what happens to runs that could not, and pausing.

APScheduler decides *when*; the ``JobRunner`` does the running. A small executor hands each due
fire time to ``_dispatch``, which knows the scheduled time and so can tell a punctual run from
a late one (the machine slept) and from one too late to be worth running (``missed``).

Runs missed while the daemon was down are found without APScheduler's persistent job stores:
each job's *anchor* (the last fire time dealt with) lives in the run log, and at start-up the
fire times between the anchor and now are computed from the schedule (``plan_catchup``). Jobs
are added to an in-memory store at every start, so nothing is lost by re-adding them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from functools import partial
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from daemon.config.sections import JobSettings
from daemon.errors import Busy, UnknownJob
from daemon.logs import get_logger
from daemon.runner import InFlight, JobRunner
from daemon.schedule import Schedule
from jobs.base import Clock, JobSpec, ScheduledJobView
from stores.runlog import JobRun, RunLog, RunStatus, RunTrigger

log = get_logger(__name__)

#: A scheduled run starting later than this after its time was delayed (the machine slept, the
#: loop was blocked); it is recorded as a catch-up rather than a punctual run.
LATE_AFTER = timedelta(seconds=60)
_MICROSECOND = timedelta(microseconds=1)


class CatchupAction(StrEnum):
    NONE = "none"
    RUN = "run"
    MISSED = "missed"


@dataclass(frozen=True)
class Catchup:
    action: CatchupAction
    scheduled_for: datetime | None = None
    missed_runs: int = 0


def plan_catchup(
    schedule: Schedule, anchor: datetime, now: datetime, grace: timedelta, tz: tzinfo
) -> Catchup:
    """What to do about fire times in (anchor, now]: run the latest once if it is within
    ``grace`` of now, else record it missed. Several missed fire times coalesce into one."""
    fires = schedule.fire_times_after(anchor, now, tz, limit=1000)
    if not fires:
        return Catchup(CatchupAction.NONE)
    latest = fires[-1]
    if now - latest <= grace:
        return Catchup(CatchupAction.RUN, latest, len(fires))
    return Catchup(CatchupAction.MISSED, latest, len(fires))


class _RunnerExecutor(BaseExecutor):  # type: ignore[misc]
    """Hands due fire times to the scheduler's dispatcher, which owns what happens next."""

    def __init__(self, dispatch: Callable[[str, datetime], Awaitable[None]]) -> None:
        super().__init__()
        self._dispatch = dispatch
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._loop = scheduler._eventloop

    def shutdown(self, wait: bool = True) -> None:
        for task in self._tasks:
            task.cancel("scheduler shut down")

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        task = self._loop.create_task(self._dispatch(job.id, run_times[-1]))
        self._tasks.add(task)
        task.add_done_callback(partial(self._done, job.id))

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            self._run_job_error(job_id, asyncio.CancelledError())
        elif task.exception() is not None:
            self._run_job_error(job_id, task.exception())
        else:
            self._run_job_success(job_id, [])


class LateSchedulerView:
    """The scheduler, as jobs see it; looked up late because jobs and scheduler refer to each
    other (the scheduler runs jobs, the health job looks at the scheduler)."""

    def __init__(self, scheduler: Callable[[], JobScheduler]) -> None:
        self._scheduler = scheduler

    def is_running(self) -> bool:
        return self._scheduler().is_running()

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return self._scheduler().scheduled_jobs()

    @property
    def started_at(self) -> datetime:
        return self._scheduler().started_at


class JobScheduler:
    """The job table: which jobs are scheduled, paused, running; the ``SchedulerView`` of jobs."""

    def __init__(
        self,
        *,
        specs: Mapping[str, JobSpec],
        job_settings: Mapping[str, JobSettings],
        runner: JobRunner,
        run_log: RunLog,
        tz: tzinfo,
        clock: Clock,
        catchup_grace: timedelta,
    ) -> None:
        self.specs = specs
        self.job_settings = dict(job_settings)
        self.runner = runner
        self.run_log = run_log
        self.tz = tz
        self.clock = clock
        self.catchup_grace = catchup_grace
        self._started_at = clock()
        self._paused: set[str] = set()
        self._idle_at: dict[str, datetime] = {}
        self._scheduler = AsyncIOScheduler(
            timezone=tz,
            executors={"default": _RunnerExecutor(self._dispatch)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self._background: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"JobScheduler(jobs={sorted(self.job_settings)}, paused={sorted(self._paused)})"

    @property
    def started_at(self) -> datetime:
        return self._started_at

    async def start(self) -> list[JobRun]:
        """Add every enabled job, deal with what was missed, start the clock.

        Returns the records of runs found missed; catch-up and start-up runs are started.
        """
        now = self._started_at = self.clock()
        states = await asyncio.to_thread(self.run_log.states)
        self._paused = {name for name, state in states.items() if state.paused}
        self._scheduler.start(paused=True)
        missed: list[JobRun] = []
        catching_up: dict[str, datetime] = {}
        for name, settings in self.job_settings.items():
            if not settings.enabled:
                continue
            state = states.get(name)
            anchor = state.schedule_anchor if state else None
            self._add(name, settings.schedule, anchor, now)
            if name in self._paused:
                continue
            if anchor is None:
                await asyncio.to_thread(self.run_log.set_anchor, name, now)
                continue
            outcome = await self._catch_up(name, settings.schedule, anchor, now)
            if isinstance(outcome, JobRun):
                missed.append(outcome)
            elif outcome is not None:
                catching_up[name] = outcome
        # Runs start once the scheduler runs: a health check among them must see it running.
        self._scheduler.resume()
        for name, scheduled_for in catching_up.items():
            await self._start_quietly(name, RunTrigger.CATCHUP, scheduled_for)
        for name, spec in self.specs.items():
            enabled = self.job_settings[name].enabled
            if spec.run_at_startup and enabled and name not in catching_up.keys() | self._paused:
                await self._start_quietly(name, RunTrigger.STARTUP, None)
        return missed

    async def _catch_up(
        self, name: str, schedule: Schedule, anchor: datetime, now: datetime
    ) -> JobRun | datetime | None:
        """A missed run's record, or the fire time to run once now, or None: nothing owed."""
        plan = plan_catchup(schedule, anchor, now, self.catchup_grace, self.tz)
        if plan.action is CatchupAction.NONE:
            return None
        assert plan.scheduled_for is not None
        await asyncio.to_thread(self.run_log.set_anchor, name, plan.scheduled_for)
        if plan.action is CatchupAction.MISSED:
            run = await asyncio.to_thread(
                self.run_log.record,
                name,
                RunTrigger.CATCHUP,
                RunStatus.MISSED,
                now,
                scheduled_for=plan.scheduled_for,
                error_message=f"the daemon was down; last due {plan.scheduled_for.isoformat()},"
                f" beyond the catch-up grace of {self.catchup_grace}",
                stats={"missed_runs": plan.missed_runs},
            )
            log.warning("job.missed", job=name, scheduled_for=plan.scheduled_for.isoformat())
            return run
        log.info(
            "job.catchup",
            job=name,
            scheduled_for=plan.scheduled_for.isoformat(),
            missed_runs=plan.missed_runs,
        )
        return plan.scheduled_for

    def _add(self, name: str, schedule: Schedule, anchor: datetime | None, now: datetime) -> None:
        trigger = schedule.trigger(self.tz, anchor=anchor or now)
        # Explicitly after now: a fire time equal to now belongs to the catch-up, not to both.
        next_run = (
            None if name in self._paused else trigger.get_next_fire_time(None, now + _MICROSECOND)
        )
        self._scheduler.add_job(
            self._never_called,
            trigger=trigger,
            id=name,
            name=name,
            next_run_time=next_run,
            replace_existing=True,
        )

    @staticmethod
    async def _never_called() -> None:  # pragma: no cover - the executor dispatches by job id
        raise RuntimeError("jobs run through the runner, not through APScheduler's func")

    async def _dispatch(self, name: str, scheduled_for: datetime) -> None:
        now = self.clock()
        await asyncio.to_thread(self.run_log.set_anchor, name, scheduled_for)
        lateness = now - scheduled_for
        if lateness > self.catchup_grace:
            await asyncio.to_thread(
                self.run_log.record,
                name,
                RunTrigger.SCHEDULE,
                RunStatus.MISSED,
                now,
                scheduled_for=scheduled_for,
                error_message=f"due {scheduled_for.isoformat()}, picked up {lateness} late",
            )
            log.warning("job.missed", job=name, scheduled_for=scheduled_for.isoformat())
            return
        if await self._idle(name):
            return
        trigger = RunTrigger.CATCHUP if lateness > LATE_AFTER else RunTrigger.SCHEDULE
        entry = await self._start_quietly(name, trigger, scheduled_for)
        if entry is not None:
            # Held until the run ends, so APScheduler's max_instances=1 sees it as running.
            await asyncio.shield(entry.task)

    async def _idle(self, name: str) -> bool:
        """The job says a run now would find nothing to do: no run, nothing in the run log."""
        spec = self.specs[name]
        if spec.idle is None or name in self.runner.running():
            return False
        try:
            idle = await spec.idle(self.runner.context)
        except Exception as exc:  # a failing check must never stop the job: run it instead
            log.warning("job.idle_check_failed", job=name, error=f"{type(exc).__name__}: {exc}")
            return False
        if idle:
            self._idle_at[name] = self.clock()
            log.debug("job.idle", job=name)
        return idle

    async def _start_quietly(
        self, name: str, trigger: RunTrigger, scheduled_for: datetime | None
    ) -> InFlight | None:
        """Start a run the daemon itself asked for; a busy job makes it a recorded skip."""
        try:
            return await self.runner.start(name, trigger, scheduled_for)
        except Busy as exc:
            await self.runner.skip(name, trigger, scheduled_for, exc.message)
            return None

    def _on_max_instances(self, event: JobSubmissionEvent) -> None:
        scheduled_for = event.scheduled_run_times[-1]
        task = asyncio.get_running_loop().create_task(
            self._record_overlap(event.job_id, scheduled_for)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record_overlap(self, name: str, scheduled_for: datetime) -> None:
        await asyncio.to_thread(self.run_log.set_anchor, name, scheduled_for)
        running = self.runner.running().get(name)
        reason = f"run {running.run_id} was still going" if running else "previous run still going"
        await self.runner.skip(name, RunTrigger.SCHEDULE, scheduled_for, reason)

    # --- the faces: trigger, pause, resume, reload -------------------------------------------

    async def trigger(self, name: str) -> InFlight:
        return await self.runner.start(self.require_job(name), RunTrigger.MANUAL)

    async def pause(self, name: str | None) -> list[str]:
        names = [self.require_job(name)] if name else sorted(self.specs)
        for job in names:
            if self._scheduler.get_job(job) is not None:
                self._scheduler.pause_job(job)
            self._paused.add(job)
            await asyncio.to_thread(self.run_log.set_paused, job, True)
        log.info("jobs.paused", jobs=names)
        return names

    async def resume(self, name: str | None) -> list[str]:
        names = [self.require_job(name)] if name else sorted(self.specs)
        now = self.clock()
        for job in names:
            self._paused.discard(job)
            await asyncio.to_thread(self.run_log.set_paused, job, False)
            # The paused stretch is not owed: count fire times from now on.
            await asyncio.to_thread(self.run_log.set_anchor, job, now)
            if self._scheduler.get_job(job) is not None:
                self._scheduler.resume_job(job)
        log.info("jobs.resumed", jobs=names)
        return names

    def apply(self, job_settings: Mapping[str, JobSettings]) -> dict[str, list[str]]:
        """Bring the table in line with new settings (SIGHUP); unchanged jobs keep their time."""
        changes: dict[str, list[str]] = {"added": [], "removed": [], "rescheduled": []}
        now = self.clock()
        for name, new in job_settings.items():
            old = self.job_settings.get(name)
            present = self._scheduler.get_job(name) is not None
            if not new.enabled and present:
                self._scheduler.remove_job(name)
                changes["removed"].append(name)
            elif new.enabled and not present:
                self._add(name, new.schedule, now, now)
                changes["added"].append(name)
            elif new.enabled and old is not None and old.schedule != new.schedule:
                self._scheduler.remove_job(name)
                self._add(name, new.schedule, now, now)
                changes["rescheduled"].append(name)
        self.job_settings = dict(job_settings)
        self.runner.timeouts.update({n: s.timeout for n, s in job_settings.items()})
        log.info("jobs.reloaded", **changes)
        return changes

    def is_paused(self, name: str) -> bool:
        return name in self._paused or not self.job_settings[name].enabled

    def require_job(self, name: str) -> str:
        if name not in self.specs:
            raise UnknownJob(f"no job named {name!r}; known: {', '.join(sorted(self.specs))}")
        return name

    # --- SchedulerView -------------------------------------------------------------------

    def is_running(self) -> bool:
        return bool(self._scheduler.state == STATE_RUNNING)

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        now = self.clock()
        views = []
        for name, settings in self.job_settings.items():
            job = self._scheduler.get_job(name)
            views.append(
                ScheduledJobView(
                    name=name,
                    enabled=settings.enabled,
                    paused=name in self._paused,
                    interval=settings.schedule.nominal_interval(now, self.tz),
                    next_run_at=job.next_run_time if job is not None else None,
                    idle_at=self._idle_at.get(name),
                )
            )
        return views

    def kick(self) -> None:
        """Make APScheduler look at its jobs now; its timer is monotonic and does not count
        the time a machine spent asleep, so after a wake-up it may otherwise look too late."""
        if self.is_running():
            self._scheduler.wakeup()

    async def stop_intake(self) -> None:
        if self.is_running():
            self._scheduler.pause()

    async def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            # APScheduler's asyncio shutdown is queued on the loop; let it run.
            await asyncio.sleep(0)
        for task in list(self._background):
            task.cancel()
