"""The supervisor: owns the process's parts and starts and stops them in order.

start: lock the state directory -> open stores -> mark interrupted runs abandoned -> start the
scheduler (catch-up included) -> open the socket -> start the Telegram bot (which connects in
the background) and the dashboard -> tell systemd we are ready.
stop is start in reverse: stop the faces (bot, dashboard), close the socket to new clients, stop
scheduling, let running jobs finish within the grace period and cancel the rest, then close the
stores and the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import filelock

from daemon.api.core import DaemonAPI
from daemon.bot.app import TelegramBot, open_bot
from daemon.config.sections import JobSettings
from daemon.config.settings import Settings
from daemon.dashboard.server import Dashboard, open_dashboard
from daemon.errors import BadSettings, Busy, Unavailable
from daemon.logs import get_logger
from daemon.opening import (
    job_settings,
    open_feedback,
    open_llm,
    open_llm_history,
    open_memory_store,
    open_run_log,
    open_sqlite_store,
    retention_table,
    socket_limits,
    sync_context,
)
from daemon.runner import JobRunner
from daemon.scheduler import JobScheduler, LateSchedulerView
from daemon.sdnotify import Notifier
from daemon.server import ControlServer
from daemon.watcher import ChangeWatcher
from jobs.base import (
    Clock,
    JobContext,
    JobSpec,
)
from jobs.checks import HealthStatus
from jobs.health import overdue_jobs
from jobs.llm import LLMClient
from jobs.openclaw_check import openclaw_check
from jobs.outbox import StoreOutbox
from jobs.registry import JOBS
from stores.atomic import ensure_private_dir
from stores.coordination.mistakes import MistakeStore
from stores.coordination.signals import SignalStore
from stores.memory.store import MemoryStore
from stores.redaction import Redactor
from stores.runlog import RunTrigger

log = get_logger(__name__)

#: How often the supervisor looks at the scheduler (and, under systemd, pings the watchdog).
TICK = timedelta(seconds=15)


class AlreadyRunning(Exception):
    pass


#: The jobs a daemon runs and, for given settings, their schedules. Injectable so that an
#: embedding program (or a test) can run the same supervisor with a job table of its own.
JobTable = tuple[Mapping[str, JobSpec], Callable[[Settings], Mapping[str, JobSettings]]]


def default_job_settings(settings: Settings) -> dict[str, JobSettings]:
    return {name: getattr(settings.jobs, name) for name in JOBS}


DEFAULT_JOB_TABLE: JobTable = (JOBS, default_job_settings)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        notifier: Notifier | None = None,
        reload_settings: Callable[[], Settings] | None = None,
        job_table: JobTable = DEFAULT_JOB_TABLE,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.notifier = notifier or Notifier(None)
        self._reload_settings = reload_settings
        self.specs, self._job_settings_of = job_table
        self.state_dir = settings.state_dir.expanduser().absolute()
        self.socket_path = settings.resolved_socket_path()
        self.redactor = Redactor(settings.secrets())
        self.stopping = False
        self._stopped = asyncio.Event()
        self._lock = filelock.FileLock(self.state_dir / "infrad.lock", mode=0o600)
        self._tick_task: asyncio.Task[None] | None = None
        self.watcher: ChangeWatcher | None = None
        self.llm: LLMClient | None = None
        self.llm_error: str | None = None
        self.bot: TelegramBot | None = None
        self.dashboard: Dashboard | None = None
        self._started = False

    def __repr__(self) -> str:
        return f"Supervisor(state_dir={str(self.state_dir)!r}, stopping={self.stopping})"

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        # The socket first: a daemon already serving it is refused before anything else starts.
        self.server = ControlServer(
            self.socket_path, self._api_call, limits=socket_limits(self.settings)
        )
        await self.server.bind()
        try:
            ensure_private_dir(self.state_dir)
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            await self.server.close()
            raise AlreadyRunning(
                f"another infrad already runs on {self.state_dir} (lock {self._lock.lock_file})"
            ) from None
        except BaseException:
            await self.server.close()
            raise
        try:
            await self._start_parts()
        except BaseException:
            await self._close_parts()
            self._lock.release()
            raise
        self._started = True

    async def _start_parts(self) -> None:
        self.run_log = await asyncio.to_thread(open_run_log, self.state_dir / "runs.sqlite")
        abandoned = await asyncio.to_thread(self.run_log.abandon_running, self.clock())
        for run in abandoned:
            log.warning("job.abandoned", job=run.job, run_id=run.run_id)
        jobs_settings = self._job_settings_of(self.settings)
        await self._open_memory()
        self.llm, self.llm_error = open_llm(self.settings)
        self.llm_history = await asyncio.to_thread(open_llm_history, self.state_dir / "llm.sqlite")
        self.signals = await asyncio.to_thread(
            open_sqlite_store, SignalStore, self.state_dir / "signals.sqlite", "signals"
        )
        self.mistakes = await asyncio.to_thread(
            open_sqlite_store, MistakeStore, self.state_dir / "mistakes.sqlite", "mistakes"
        )
        self.feedback = await asyncio.to_thread(open_feedback, self.state_dir / "feedback.sqlite")
        # Before the scheduler starts: alerts read the run history from this point on.
        self.bot = await open_bot(
            self.settings.telegram,
            self.settings.transcription,
            state_dir=self.state_dir,
            run_log=self.run_log,
            feedback=self.feedback,
            call=self._api_call,
            clock=self.clock,
            redactor=self.redactor,
            zone=self.settings.zone,
            refine=self.llm is not None,
        )
        self.dashboard = open_dashboard(self.settings, self._api_call)
        self.job_context = JobContext(
            clock=self.clock,
            tz=self.settings.zone,
            state_dir=self.state_dir,
            run_log=self.run_log,
            scheduler=LateSchedulerView(lambda: self.scheduler),
            write_probes=self._write_probes(),
            openclaw=self.settings.openclaw_source(),
            memory=self.memory,
            memory_error=self.memory_error,
            llm=self.llm,
            llm_error=self.llm_error,
            llm_history=self.llm_history,
            feedback=self.feedback,
            outbox=StoreOutbox(
                self.feedback,
                self.clock,
                wake=self.bot.poke if self.bot else None,
                alert_sink=self.bot.alert if self.bot else None,
            ),
            component_checks={name: face.health_check for name, face in self._faces().items()},
            retention=retention_table(self.settings, self.run_log, self.llm_history, self.signals),
            **job_settings(self.settings, self.state_dir),
            **sync_context(self.settings, self.signals, self.mistakes),
        )
        self.runner = JobRunner(
            specs=self.specs,
            timeouts={n: s.timeout for n, s in jobs_settings.items()},
            run_log=self.run_log,
            context=self.job_context,
            clock=self.clock,
            redactor=self.redactor,
        )
        self.scheduler = JobScheduler(
            specs=self.specs,
            job_settings=jobs_settings,
            runner=self.runner,
            run_log=self.run_log,
            tz=self.settings.zone,
            clock=self.clock,
            catchup_grace=self.settings.catchup_grace,
        )
        self.api = DaemonAPI(self)
        await self._warn_about_openclaw()  # before anything answers: the log says it first
        await self.scheduler.start()
        await self.server.start()
        if self.bot is not None:
            await self.bot.start()  # returns at once: Telegram is reached in the background
        if self.dashboard is not None:
            await self.dashboard.start()
        if self.settings.memory.watch and "ingest" in self.specs and self.job_context.openclaw:
            self.watcher = ChangeWatcher(
                self.job_context.openclaw,
                self._ingest_on_change,
                self.settings.memory.watch_debounce,
            )
            await self.watcher.start()
        self._tick_task = asyncio.create_task(self._tick(), name="supervisor-tick")
        self.notifier.ready(self._status_line())
        log.info(
            "daemon.ready",
            socket=str(self.socket_path),
            state_dir=str(self.state_dir),
            jobs=[n for n, s in jobs_settings.items() if s.enabled],
        )

    async def _warn_about_openclaw(self) -> None:
        """A home that is not there (a typo in OPENCLAW_STATE_DIR) is said at start-up, not
        only by the next health check."""
        found = await asyncio.to_thread(openclaw_check, self.job_context.openclaw, None)
        if found is not None and found.status is not HealthStatus.OK:
            log.warning("openclaw.not_ready", problem=found.detail)

    async def _api_call(self, method: str, params: dict[str, Any]) -> Any:
        """The bot's way in: the socket's own methods, so the two faces never disagree."""
        return await self.api.call(method, params)

    async def _ingest_on_change(self) -> tuple[bool, asyncio.Task[Any] | None]:
        going = self.runner.running().get("ingest")
        if going is not None:
            return False, going.task
        if self.scheduler.is_paused("ingest") or self.runner.closing or self.memory is None:
            return False, None
        try:
            entry = await self.runner.start("ingest", RunTrigger.CHANGE)
        except Busy:
            return False, None
        return True, entry.task

    async def _open_memory(self, *, new_embedder: bool = False) -> None:
        """Open the memory store; a daemon without one still runs and says why in health."""
        self.memory: MemoryStore | None = None
        self.memory_error: str | None = None
        try:
            self.memory = await asyncio.to_thread(
                open_memory_store, self.state_dir, self.settings, new_embedder=new_embedder
            )
        except Exception as exc:  # any failure here leaves the rest of the daemon up
            self.memory_error = self.redactor.text(str(exc)) or type(exc).__name__
            log.error("memory.unavailable", error=self.memory_error)

    async def reopen_memory(self, *, new_embedder: bool) -> None:
        """After a change of embedder: the store is reopened for the rebuild to fill."""
        if self.memory is not None:
            await asyncio.to_thread(self.memory.close)
        await self._open_memory(new_embedder=new_embedder)
        self.job_context = replace(
            self.job_context,
            memory=self.memory,
            memory_error=self.memory_error,
            write_probes=self._write_probes(),
        )
        self.runner.context = self.job_context

    def _write_probes(self) -> dict[str, Callable[[datetime], None]]:
        probes: dict[str, Callable[[datetime], None]] = {
            "runs": self.run_log.probe_writable,
            "signals": self.signals.probe_writable,
            "mistakes": self.mistakes.probe_writable,
            "feedback": self.feedback.probe_writable,
        }
        if self.memory is not None:
            probes["memory"] = self.memory.index.probe_writable
        return probes

    async def wait(self) -> None:
        await self._stopped.wait()

    def request_stop(self, reason: str = "requested") -> None:
        if not self._stopped.is_set():
            log.info("daemon.stop_requested", reason=reason)
        self._stopped.set()

    def force_stop(self) -> None:
        """A second signal: do not wait for running jobs."""
        log.warning("daemon.forced_stop")
        runner = getattr(self, "runner", None)  # a second signal may come during start-up
        for entry in runner.running().values() if runner else ():
            entry.task.cancel("forced stop: a second signal arrived")
        self._stopped.set()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.stopping = True
        self.notifier.stopping()
        log.info("daemon.stopping")
        await self._stop_faces()
        await self.server.stop_accepting()
        await self.scheduler.stop_intake()
        cancelled = await self.runner.drain(self.settings.shutdown_grace)
        for run in cancelled:
            log.info("job.drained", job=run.job, run_id=run.run_id, status=run.status.value)
        await self._close_parts()
        self._lock.release()
        log.info("daemon.stopped")

    def _faces(self) -> dict[str, TelegramBot | Dashboard]:
        return {n: f for n, f in (("bot", self.bot), ("dashboard", self.dashboard)) if f}

    async def _stop_faces(self) -> None:
        """Intake first: no request from a person may start work while the daemon drains."""
        for face in self._faces().values():
            await face.stop()

    async def _close_parts(self) -> None:
        await self._stop_faces()
        if self.watcher is not None:
            await self.watcher.stop()
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        if hasattr(self, "scheduler"):
            await self.scheduler.shutdown()
        if hasattr(self, "server"):
            await self.server.close()
        await self._close_stores()
        self.notifier.close()

    async def _close_stores(self) -> None:
        if getattr(self, "memory", None) is not None:
            await asyncio.to_thread(self.memory.close)  # type: ignore[union-attr]
        if hasattr(self, "run_log"):
            await asyncio.to_thread(self.run_log.close)
        if self.llm is not None:
            await self.llm.aclose()
        if hasattr(self, "llm_history"):
            await asyncio.to_thread(self.llm_history.close)
        for store in ("signals", "mistakes"):
            if hasattr(self, store):
                await asyncio.to_thread(getattr(self, store).close)
        if hasattr(self, "feedback"):
            await asyncio.to_thread(self.feedback.close)

    async def reload(self) -> dict[str, Any]:
        """SIGHUP: re-read the settings and apply the job table; the rest needs a restart."""
        if not self._started:
            raise Unavailable("the daemon is still starting; reload again once it is up")
        if self._reload_settings is None:
            raise Unavailable("this daemon was started without a way to re-read its settings")
        try:
            fresh = await asyncio.to_thread(self._reload_settings)
        except Exception as exc:
            log.error("daemon.reload_failed", error=str(exc))
            raise BadSettings(
                f"settings not reloaded, the daemon keeps its current ones: {exc}"
            ) from None
        changes = self.scheduler.apply(self._job_settings_of(fresh))
        if fresh.model_dump(exclude={"jobs"}) != self.settings.model_dump(exclude={"jobs"}):
            log.warning("daemon.reload_partial", note="only job settings apply without a restart")
        return {"jobs": changes}

    async def _tick(self) -> None:
        interval = TICK
        if self.notifier.watchdog is not None:
            interval = min(interval, self.notifier.watchdog / 3)
        while True:
            await asyncio.sleep(interval.total_seconds())
            self.scheduler.kick()
            await asyncio.sleep(0)  # let the kicked scheduler dispatch before judging it
            if self.alive():
                self.notifier.ping()
            else:
                log.warning("watchdog.withheld", reason="scheduler stopped or a run is overdue")
            self.notifier.status(self._status_line())
            if self.memory is not None:
                await self._rest_memory(self.memory)

    async def _rest_memory(self, memory: MemoryStore) -> None:
        """Free the vector index once the store has been idle long enough (the setting)."""
        released = await asyncio.to_thread(memory.vectors.release_if_idle)
        if released is not None:
            log.info("memory.vectors_released", idle_s=round(released.idle_s), ms=released.close_ms)

    def alive(self) -> bool:
        """The scheduler runs and has not left a due run behind: what the watchdog vouches for."""
        if not self.scheduler.is_running():
            return False
        slack = self.job_context.health.overdue_slack
        return not overdue_jobs(self.scheduler.scheduled_jobs(), self.clock(), slack)

    def _status_line(self) -> str:
        running = sorted(self.runner.running())
        return f"{len(self.scheduler.job_settings)} jobs; running: {', '.join(running) or 'none'}"
