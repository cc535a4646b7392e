"""Component checks: is the scheduler alive, can we write, is there disk, are jobs succeeding.

``check`` is what the ``health`` socket method answers right now; ``run`` is the scheduled job,
which records the same report as its run's stats and as a row of the health history (pruned to
the retention setting as it goes). The judgement of staleness is a pure function
of times so that it is tested with an injected clock.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta

from jobs.base import JobContext, JobResult, ScheduledJobView
from jobs.checks import HealthCheck, HealthReport, HealthStatus
from jobs.openclaw_check import last_finished, openclaw_check
from stores.counts import count
from stores.runlog import JobState


async def run(ctx: JobContext) -> JobResult:
    report = await check(ctx)
    await asyncio.to_thread(_remember, ctx, report)
    failing = [c.name for c in report.checks if c.status is not HealthStatus.OK]
    summary = f"{report.status.value}" + (f": {', '.join(failing)}" if failing else "")
    return JobResult(summary=summary, stats=report.to_dict())


async def check(ctx: JobContext) -> HealthReport:
    now = ctx.clock()
    checks = [scheduler_check(ctx, now)]
    checks += await asyncio.to_thread(_blocking_checks, ctx, now)
    checks += [component() for component in ctx.component_checks.values()]
    states = await asyncio.to_thread(ctx.job_states)
    checks += [
        freshness_check(view, states.get(view.name), ctx.scheduler.started_at, now)
        for view in ctx.scheduler.scheduled_jobs()
        if view.enabled
    ]
    return HealthReport(checked_at=now, checks=checks)


def _remember(ctx: JobContext, report: HealthReport) -> None:
    checks = [c.to_dict() for c in report.checks]
    ctx.run_log.record_health(report.checked_at, report.status.value, checks)
    ctx.run_log.prune_health(report.checked_at - ctx.health.keep_history)


def scheduler_check(ctx: JobContext, now: datetime) -> HealthCheck:
    if not ctx.scheduler.is_running():
        return HealthCheck("scheduler", HealthStatus.FAILED, "the scheduler is not running")
    overdue = overdue_jobs(ctx.scheduler.scheduled_jobs(), now, ctx.health.overdue_slack)
    if overdue:
        return HealthCheck(
            "scheduler", HealthStatus.FAILED, f"runs not picked up: {', '.join(overdue)}"
        )
    return HealthCheck("scheduler", HealthStatus.OK, "running, nothing overdue")


def overdue_jobs(views: list[ScheduledJobView], now: datetime, slack: timedelta) -> list[str]:
    return [
        v.name
        for v in views
        if v.next_run_at is not None and not v.paused and v.next_run_at < now - slack
    ]


def memory_check(ctx: JobContext) -> HealthCheck | None:
    if ctx.memory is None:
        if ctx.memory_error is None:
            return None
        return HealthCheck("memory", HealthStatus.FAILED, f"not open: {ctx.memory_error}")
    waiting = ctx.memory.index.count_to_embed()
    detail = f"open ({ctx.memory.vectors.where})"
    if waiting:
        detail += f"; {count(waiting, 'chunk')} waiting for vectors (searchable by keyword)"
    return HealthCheck("memory", HealthStatus.OK, detail)


def _blocking_checks(ctx: JobContext, now: datetime) -> list[HealthCheck]:
    ingest = last_finished(ctx.run_log.runs("ingest", 3))
    checks = [c for c in [memory_check(ctx), openclaw_check(ctx.openclaw, ingest)] if c]
    for name, probe in ctx.write_probes.items():
        try:
            probe(now)
        except Exception as exc:
            checks.append(HealthCheck(f"db:{name}", HealthStatus.FAILED, f"not writable: {exc}"))
        else:
            checks.append(HealthCheck(f"db:{name}", HealthStatus.OK, "writable"))
    checks.append(disk_check(ctx))
    return checks


def disk_check(ctx: JobContext) -> HealthCheck:
    free = shutil.disk_usage(ctx.state_dir).free
    detail = f"{free / 2**20:,.0f} MiB free (minimum {ctx.health.min_free_disk_bytes / 2**20:,.0f})"
    if free < ctx.health.min_free_disk_bytes:
        return HealthCheck("disk", HealthStatus.DEGRADED, detail)
    return HealthCheck("disk", HealthStatus.OK, detail)


def freshness_check(
    view: ScheduledJobView, state: JobState | None, started_at: datetime, now: datetime
) -> HealthCheck:
    """A job is stale when neither its last success nor the daemon's start is within two of
    its intervals: a fresh start gives every job a fair window before it is judged."""
    name = f"job:{view.name}"
    if view.paused:
        return HealthCheck(name, HealthStatus.OK, "paused")
    if view.interval is None:
        return HealthCheck(name, HealthStatus.OK, "not scheduled")
    last_success = state.last_success_at if state else None
    # A run that found nothing to do was not started, but the job was looked after.
    reference = max(filter(None, (last_success, view.idle_at, started_at)))
    limit = 2 * view.interval
    last = last_success.isoformat(timespec="seconds") if last_success else "never"
    if now - reference > limit:
        return HealthCheck(
            name, HealthStatus.DEGRADED, f"last success {last}; expected within {limit}"
        )
    failures = state.consecutive_failures if state else 0
    if failures:
        return HealthCheck(
            name, HealthStatus.DEGRADED, f"{failures} failure(s) in a row; last success {last}"
        )
    return HealthCheck(name, HealthStatus.OK, f"last success {last}")
