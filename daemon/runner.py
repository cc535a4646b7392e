"""Running a job once: under its timeout, one at a time per job, every outcome recorded.

The runner is the one place that starts job code, whether the scheduler, the socket or the
start-up catch-up asked for it, so the rules (no overlap, timeout, redacted errors, a record for
every run) hold for all of them. At shutdown it drains: running jobs get a grace period, then
are cancelled and recorded as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from daemon.errors import Busy, UnknownJob
from daemon.logs import get_logger
from jobs.base import Clock, JobContext, JobResult, JobSpec, Progress
from stores.redaction import Redactor
from stores.runlog import JobRun, RunLog, RunStatus, RunTrigger
from stores.stopping import StopToken

log = get_logger(__name__)


@dataclass(frozen=True)
class InFlight:
    run_id: int
    job: str
    trigger: RunTrigger
    started_at: datetime
    task: asyncio.Task[JobRun]
    progress: Progress
    #: Set when the run is told to stop; it is over once its thread has seen it.
    stop: StopToken


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    error_type: str | None = None
    message: str | None = None
    stats: dict[str, object] | None = None


class JobRunner:
    def __init__(
        self,
        *,
        specs: Mapping[str, JobSpec],
        timeouts: Mapping[str, timedelta],
        run_log: RunLog,
        context: JobContext,
        clock: Clock,
        redactor: Redactor,
    ) -> None:
        self.specs = specs
        self.timeouts = dict(timeouts)
        self.run_log = run_log
        self.context = context
        self.clock = clock
        self.redactor = redactor
        self._in_flight: dict[str, InFlight] = {}
        self._starting: set[str] = set()
        self._closing = False

    def __repr__(self) -> str:
        return f"JobRunner(running={sorted(self._in_flight)}, closing={self._closing})"

    @property
    def closing(self) -> bool:
        return self._closing

    def running(self) -> dict[str, InFlight]:
        return dict(self._in_flight)

    async def start(
        self,
        job: str,
        trigger: RunTrigger,
        scheduled_for: datetime | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> InFlight:
        """Begin a run and return at once; raises ``Busy`` if the job is running or we stop."""
        spec = self.specs.get(job)
        if spec is None:
            raise UnknownJob(f"no job named {job!r}; known: {', '.join(sorted(self.specs))}")
        if self._closing:
            raise Busy("the daemon is stopping; no new runs")
        current = self._in_flight.get(job)
        if current is not None:
            raise Busy(f"{job} is already running (run {current.run_id})")
        if job in self._starting:
            raise Busy(f"{job} is already starting")
        # Claim the slot before the first await, so two callers cannot both pass the check.
        self._starting.add(job)
        try:
            started = self.clock()
            run_id = await asyncio.to_thread(
                self.run_log.start_run, job, trigger, started, scheduled_for
            )
        finally:
            self._starting.discard(job)
        progress, stop = Progress(), StopToken()
        context = replace(
            self.context, params=dict(params or {}), progress=progress, trigger=trigger, stop=stop
        )
        task = asyncio.create_task(self._execute(spec, run_id, context), name=f"job:{job}")
        entry = InFlight(run_id, job, trigger, started, task, progress, stop)
        self._in_flight[job] = entry
        task.add_done_callback(lambda _: self._forget(job, run_id))
        log.info("job.started", job=job, run_id=run_id, trigger=trigger.value)
        return entry

    async def skip(
        self, job: str, trigger: RunTrigger, scheduled_for: datetime | None, reason: str
    ) -> JobRun:
        run = await asyncio.to_thread(
            self.run_log.record,
            job,
            trigger,
            RunStatus.SKIPPED,
            self.clock(),
            scheduled_for=scheduled_for,
            error_message=reason,
        )
        log.info("job.skipped", job=job, run_id=run.run_id, reason=reason)
        return run

    def _forget(self, job: str, run_id: int) -> None:
        current = self._in_flight.get(job)
        if current is not None and current.run_id == run_id:
            del self._in_flight[job]

    async def _execute(self, spec: JobSpec, run_id: int, context: JobContext) -> JobRun:
        began = time.perf_counter()
        outcome = await self._outcome(spec, run_id, context)
        # Recorded even while being cancelled: the record is what status and health read.
        run = await asyncio.shield(
            asyncio.to_thread(
                self.run_log.finish_run,
                run_id,
                outcome.status,
                self.clock(),
                error_type=outcome.error_type,
                error_message=outcome.message,
                stats=self.redactor.value(outcome.stats or {}),
            )
        )
        log.info(
            "job.finished",
            job=spec.name,
            run_id=run_id,
            status=outcome.status.value,
            duration_ms=round((time.perf_counter() - began) * 1000, 1),
            error=outcome.message,
        )
        return run

    async def _outcome(self, spec: JobSpec, run_id: int, context: JobContext) -> Outcome:
        timeout = self.timeouts[spec.name]
        try:
            async with asyncio.timeout(timeout.total_seconds()):
                result: JobResult = await spec.func(context)
        except TimeoutError:
            message = f"still running after {timeout}; cancelled"
            context.stop.stop(message)  # a job that runs no thread of its own has seen it
            return Outcome(RunStatus.TIMEOUT, "TimeoutError", message)
        except asyncio.CancelledError as exc:
            # The run is over either way; its record is written by the caller, not lost.
            message = str(exc.args[0]) if exc.args else "cancelled"
            context.stop.stop(message)
            return Outcome(RunStatus.CANCELLED, "CancelledError", message)
        except Exception as exc:
            log.error("job.error", job=spec.name, run_id=run_id, exc_info=exc)
            message = self.redactor.text(str(exc)) or type(exc).__name__
            return Outcome(RunStatus.FAILED, type(exc).__name__, message)
        return Outcome(RunStatus.SUCCESS, stats={"summary": result.summary, **result.stats})

    async def drain(self, grace: timedelta) -> list[JobRun]:
        """Stop taking runs; wait up to ``grace`` for those going, then cancel the rest."""
        self._closing = True
        tasks = [entry.task for entry in self._in_flight.values()]
        if not tasks:
            return []
        log.info("runner.draining", running=[t.get_name() for t in tasks], grace_s=grace.seconds)
        _, pending = await asyncio.wait(tasks, timeout=grace.total_seconds())
        for task in pending:
            task.cancel(f"the daemon stopped; {task.get_name()} did not finish within {grace}")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return [r for r in results if isinstance(r, JobRun)]
