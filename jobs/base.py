"""What a job is: an async function of a JobContext that returns a JobResult.

A job knows nothing of the socket, the bot or APScheduler. What it needs from the process
(the clock, the stores, a view of the schedule) arrives in the context, so a test can hand it
a fixed clock and real stores in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog

from stores.backup.config import BackupConfig
from stores.childenv import child_environ
from stores.openclaw.home import OpenClawSource
from stores.retention import Retained
from stores.runlog import JobState, RunLog, RunTrigger
from stores.stopping import StopToken

if TYPE_CHECKING:
    from jobs.checks import HealthCheck
    from jobs.llm import LLMClient
    from jobs.outbox import Outbox
    from stores.coordination.feedback import FeedbackStore
    from stores.coordination.mistakes import MistakeStore
    from stores.coordination.signals import SignalStore
    from stores.llm_history import LLMHistory
    from stores.memory.store import MemoryStore  # chromadb is heavy; only the daemon loads it

Clock = Callable[[], datetime]
T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScheduledJobView:
    """What health needs to know about one job's place in the schedule."""

    name: str
    enabled: bool
    paused: bool
    interval: timedelta | None
    next_run_at: datetime | None
    #: When a scheduled run last found nothing to do and was not started (``JobSpec.idle``).
    idle_at: datetime | None = None


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
    #: Health reports older than this leave the history (``RunLog.prune_health``).
    keep_history: timedelta = timedelta(days=30)


@dataclass
class Progress:
    """How far a long run has got; the runner shows it to ``infractl`` for its progress bar.
    Written by the job (from a worker thread too), read by the event loop: plain fields."""

    phase: str = ""
    done: int = 0
    total: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "done": self.done, "total": self.total}


@dataclass(frozen=True)
class MemoryConfig:
    window_turns: int = 4
    window_stride: int = 2


@dataclass(frozen=True)
class SummaryConfig:
    #: Hourly sections older than this are folded into the day summary.
    keep_hourly_for: timedelta = timedelta(days=7)
    #: After downtime, at most this far back is summarised.
    catch_up: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class SyncConfig:
    #: The ``openclaw`` executable the daily sync announces its notes with.
    openclaw_command: str = "openclaw"
    announce: bool = True
    announce_timeout: timedelta = timedelta(seconds=30)
    #: How long a signal without an expiry of its own stays open.
    signal_ttl: timedelta = timedelta(days=7)
    #: The lowest priority of a signal that wakes its agents at once ("never": none does).
    wake_on: str = "urgent"
    #: The announcing command's whole environment: the daemon's, less its secrets.
    child_env: Mapping[str, str] = field(default_factory=lambda: child_environ(os.environ))


@dataclass(frozen=True)
class SynthesisConfig:
    #: Mistakes whose texts are at least this similar (cosine) fall into one pattern.
    similarity: float = 0.6
    #: Recommendations per agent and week, at most.
    max_recommendations: int = 3


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
    openclaw: OpenClawSource | None = None
    memory: MemoryStore | None = None
    #: Why there is no memory store, when there is none although OpenClaw is configured.
    memory_error: str | None = None
    memory_config: MemoryConfig = field(default_factory=MemoryConfig)
    backup: BackupConfig | None = None
    #: The Anthropic client; None without an API key, and then ``llm_error`` says why.
    llm: LLMClient | None = None
    llm_error: str | None = None
    llm_history: LLMHistory | None = None
    #: Job name -> "three-pass" or "single-pass", for the jobs that write with the LLM.
    prompting: Mapping[str, str] = field(default_factory=dict)
    summaries: SummaryConfig = field(default_factory=SummaryConfig)
    #: Recommendations sent and the answers to them (the weekly synthesis reads these).
    feedback: FeedbackStore | None = None
    #: Where a job sends a recommendation or an alert, without knowing the channel.
    outbox: Outbox | None = None
    #: name -> a quick, non-blocking check of a part the daemon runs besides the jobs (the
    #: Telegram bot); health reports each one.
    component_checks: Mapping[str, Callable[[], HealthCheck]] = field(default_factory=dict)
    signals: SignalStore | None = None
    mistakes: MistakeStore | None = None
    sync: SyncConfig = field(default_factory=SyncConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    #: What the ``retention`` job prunes: one entry per store (see ``stores.retention``).
    retention: Sequence[Retained] = ()
    #: Per run: what a manual trigger asked for (e.g. ``{"rebuild": True}``), and its progress.
    params: Mapping[str, Any] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    #: Per run: what started it. A run someone asked for (``manual``) may mean "up to now"
    #: where the scheduled one means "the last whole period".
    trigger: RunTrigger = RunTrigger.SCHEDULE
    #: Per run: set by the runner when the run times out, is cancelled or the daemon stops;
    #: the job's worker thread checks it between steps (see ``in_thread``).
    stop: StopToken = field(default_factory=StopToken)

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
    #: Asked before a scheduled run: True when it would find nothing to do, and then no run
    #: starts (and none is recorded). Manual, start-up and change-triggered runs always start.
    idle: Callable[[JobContext], Awaitable[bool]] | None = None


async def in_thread(ctx: JobContext, work: Callable[[StopToken], T]) -> T:
    """``work(ctx.stop)`` in a worker thread, the one way every long job runs its blocking part.

    Cancelled (the run's timeout, the daemon stopping), this sets ``ctx.stop`` and waits until
    the thread has ended, its clean-up done, before the cancellation goes on: the run's recorded
    end is when the work really ended, and nothing is written after it."""
    thread = asyncio.ensure_future(asyncio.to_thread(work, ctx.stop))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError as exc:
        reason = str(exc.args[0]) if exc.args else "cancelled (its timeout or the daemon stopping)"
        ctx.stop.stop(reason)
        log.info("job.stopping", reason=reason)
        await _ended(thread)
        raise


async def _ended(thread: asyncio.Future[Any]) -> None:
    """Wait for ``thread`` whatever comes: a second cancellation (the daemon stopping during a
    timeout's wait) must not end the run while its thread still writes."""
    while not thread.done():
        try:
            await asyncio.wait([thread])
        except asyncio.CancelledError:
            continue
    if not thread.cancelled() and thread.exception() is not None:
        log.info("job.stopped", error=str(thread.exception()))
