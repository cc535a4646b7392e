"""The daemon's whole API: every socket method, validated at the edge.

``infractl`` and the Telegram bot are two faces on these same calls. Each method takes a
pydantic params model (unknown fields refused) and returns plain JSON-able data.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon import __version__
from daemon.api.agents import openclaw_agents
from daemon.api.backup import NAME as BACKUP_NAME
from daemon.api.backup import BackupMethods
from daemon.api.feedback import RECOMMENDATION_ID, FeedbackMethods
from daemon.api.health import HealthMethods
from daemon.api.host import Daemon
from daemon.api.llm import LLMMethods
from daemon.api.memory import AGENT_ID, MemoryMethods
from daemon.api.sync import SyncMethods
from daemon.durations import format_duration
from daemon.errors import BadRequest, Busy, JobFailed, NotFound, Timeout, UnknownMethod
from daemon.logs import get_logger
from daemon.protocol import VERSION
from jobs import health
from stores.runlog import RunStatus

log = get_logger(__name__)

JOB_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
#: The largest integer SQLite stores; a bigger id could only fail on the way to the database.
SQLITE_MAX_INT = 2**63 - 1


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobParams(NoParams):
    job: str = Field(pattern=JOB_NAME)


class OptionalJobParams(NoParams):
    job: str | None = Field(None, pattern=JOB_NAME)


class TriggerParams(JobParams):
    wait: bool = False
    timeout: float | None = Field(None, ge=0.01, le=86400)


class RunParams(NoParams):
    run_id: int = Field(ge=1, le=SQLITE_MAX_INT)


class RunsParams(NoParams):
    job: str | None = Field(None, pattern=JOB_NAME)
    limit: int = Field(20, ge=1, le=1000)
    status: RunStatus | None = None


Handler = Callable[[Any], Awaitable[Any]]


class DaemonAPI:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._methods: dict[str, tuple[type[BaseModel], Handler]] = {
            "version": (NoParams, self.version),
            "status": (NoParams, self.status),
            "jobs": (NoParams, self.jobs),
            "trigger": (TriggerParams, self.trigger),
            "pause": (OptionalJobParams, self.pause),
            "resume": (OptionalJobParams, self.resume),
            "runs": (RunsParams, self.runs),
            "health": (NoParams, self.health),
            "reload": (NoParams, self.reload),
            "run": (RunParams, self.run),
            "agents": (NoParams, self.agents),
            **MemoryMethods(daemon).table(),
            **BackupMethods(daemon).table(),
            **LLMMethods(daemon).table(),
            **FeedbackMethods(daemon).table(),
            **SyncMethods(daemon).table(),
            **HealthMethods(daemon).table(),
        }

    def methods(self) -> list[str]:
        return sorted(self._methods)

    def params_model(self, method: str) -> type[BaseModel]:
        """The pydantic model a method's params are validated against (its schema for tools)."""
        return self._methods[method][0]

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        entry = self._methods.get(method)
        if entry is None:
            raise UnknownMethod(f"no method {method!r}; known: {', '.join(self.methods())}")
        model, handler = entry
        broken = _lone_surrogate(params)
        if broken is not None:
            raise BadRequest(f"{method}: {broken}: not valid Unicode (a lone surrogate)")
        try:
            parsed = model.model_validate(params)
        except ValidationError as exc:
            raise BadRequest(_first_problem(method, exc)) from None
        return await handler(parsed)

    async def version(self, _: NoParams) -> dict[str, Any]:
        return {"version": __version__, "protocol": VERSION, "pid": os.getpid()}

    async def status(self, _: NoParams) -> dict[str, Any]:
        daemon = self.daemon
        now = daemon.clock()
        jobs = await self.jobs(NoParams())
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started_at": daemon.scheduler.started_at.isoformat(),
            "uptime_s": round((now - daemon.scheduler.started_at).total_seconds(), 1),
            "state_dir": str(daemon.settings.state_dir),
            "openclaw_state_dir": str(daemon.settings.resolved_openclaw_state_dir()),
            "socket": str(daemon.socket_path),
            "timezone": daemon.settings.timezone,
            "scheduler": "running" if daemon.scheduler.is_running() else "stopped",
            "stopping": daemon.stopping,
            "jobs": jobs["jobs"],
            "health": await self._last_health(),
            "dashboard": daemon.dashboard.address if daemon.dashboard else None,
            "retention": await self._retention(),
        }

    async def _retention(self) -> list[dict[str, Any]]:
        """Per store: how long it keeps rows, how many it holds, when the ``retention`` job last
        pruned it and how many rows went then."""
        rules = self.daemon.job_context.retention
        runs = await asyncio.to_thread(self.daemon.run_log.runs, "retention", 1, RunStatus.SUCCESS)
        held = await asyncio.to_thread(lambda: [rule.count() for rule in rules])
        last = runs[0] if runs else None
        pruned = (last.stats.get("stores") or {}) if last else {}
        return [
            {
                "name": rule.name,
                "keep": format_duration(rule.keep),
                "setting": rule.setting,
                "rows": rows,
                "last_pruned_at": _iso(last.finished_at) if last and rule.name in pruned else None,
                "last_removed": (pruned.get(rule.name) or {}).get("removed"),
            }
            for rule, rows in zip(rules, held, strict=True)
        ]

    async def _last_health(self) -> dict[str, Any] | None:
        """The latest scheduled health report; `health` itself checks afresh."""
        runs = await asyncio.to_thread(self.daemon.run_log.runs, "health", 1, RunStatus.SUCCESS)
        if not runs:
            return None
        stats = runs[0].stats
        return {
            "status": stats.get("status"),
            "checked_at": stats.get("checked_at"),
            "run_id": runs[0].run_id,
            "problems": [c for c in stats.get("checks") or [] if c.get("status") != "ok"],
        }

    async def jobs(self, _: NoParams) -> dict[str, Any]:
        daemon = self.daemon
        states = await asyncio.to_thread(daemon.run_log.states)
        running = daemon.runner.running()
        views = {v.name: v for v in daemon.scheduler.scheduled_jobs()}
        rows = []
        for name, spec in daemon.scheduler.specs.items():
            settings = daemon.scheduler.job_settings[name]
            state = states.get(name)
            view = views[name]
            rows.append(
                {
                    "name": name,
                    "description": spec.description,
                    "enabled": settings.enabled,
                    "paused": view.paused,
                    "schedule": str(settings.schedule),
                    "timeout_s": settings.timeout.total_seconds(),
                    "next_run_at": _iso(view.next_run_at),
                    "running_run_id": running[name].run_id if name in running else None,
                    "progress": running[name].progress.to_dict() if name in running else None,
                    "last_status": state.last_status.value if state and state.last_status else None,
                    "last_success_at": _iso(state.last_success_at) if state else None,
                    "last_idle_at": _iso(view.idle_at),
                    "consecutive_failures": state.consecutive_failures if state else 0,
                }
            )
        return {"jobs": rows}

    async def trigger(self, params: TriggerParams) -> dict[str, Any]:
        """With ``wait``, a run already under way (ingest's at start-up, a scheduled backup)
        is waited for and reported instead of refused: it is the run asked for."""
        joined = False
        try:
            entry = await self.daemon.scheduler.trigger(params.job)
        except Busy as exc:
            going = self.daemon.runner.running().get(params.job)
            if going is None or not params.wait:
                raise Busy(
                    f"{exc.message}; `infractl trigger {params.job} --wait` waits for it and"
                    f" reports its result, `infractl runs --job {params.job}` shows it",
                    data={"run_id": going.run_id} if going else None,
                ) from None
            entry, joined = going, True
            log.info("trigger.joined", job=params.job, run_id=going.run_id)
        if not params.wait:
            return {"run_id": entry.run_id, "job": entry.job, "status": RunStatus.RUNNING.value}
        try:
            # Shielded: a client giving up must not cancel the run it asked for.
            run = await asyncio.wait_for(asyncio.shield(entry.task), timeout=params.timeout)
        except TimeoutError:
            raise Timeout(
                f"{params.job} run {entry.run_id} still going after {params.timeout}s;"
                " see `infractl runs`",
                data={"run_id": entry.run_id},
            ) from None
        if run.status is not RunStatus.SUCCESS:
            raise JobFailed(
                f"{params.job} run {run.run_id} {run.status.value}: {run.error_message}",
                data={"run": run.to_dict()},
            )
        return {**run.to_dict(), "joined": joined}

    async def pause(self, params: OptionalJobParams) -> dict[str, Any]:
        return {"paused": await self.daemon.scheduler.pause(params.job)}

    async def resume(self, params: OptionalJobParams) -> dict[str, Any]:
        return {"resumed": await self.daemon.scheduler.resume(params.job)}

    async def runs(self, params: RunsParams) -> dict[str, Any]:
        if params.job is not None:
            self.daemon.scheduler.require_job(params.job)
        runs = await asyncio.to_thread(
            self.daemon.run_log.runs, params.job, params.limit, params.status
        )
        return {"runs": [run.to_dict() for run in runs]}

    async def run(self, params: RunParams) -> dict[str, Any]:
        """One run; while it is going, with its progress (what `memory reindex` draws)."""
        try:
            run = await asyncio.to_thread(self.daemon.run_log.run, params.run_id)
        except KeyError:
            raise NotFound(f"no run {params.run_id}") from None
        result = run.to_dict()
        going = self.daemon.runner.running().get(run.job)
        if going is not None and going.run_id == run.run_id:
            result["progress"] = going.progress.to_dict()
        return result

    async def agents(self, _: NoParams) -> dict[str, Any]:
        """OpenClaw's agents as the daemon finds them (what --agent may name)."""
        agents = await openclaw_agents(self.daemon)
        return {
            "agents": [
                {
                    "id": a.id,
                    "name": a.name,
                    "workspace": str(a.workspace),
                    "default": a.is_default,
                    "configured": a.configured,
                }
                for a in agents
            ]
        }

    async def health(self, _: NoParams) -> dict[str, Any]:
        report = await health.check(self.daemon.job_context)
        return report.to_dict()

    async def reload(self, _: NoParams) -> dict[str, Any]:
        return await self.daemon.reload()


def _first_problem(method: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "params"
    if error["type"] == "extra_forbidden":
        return f"{method}: unknown parameter {where!r}"
    if error["type"] == "string_pattern_mismatch":
        wanted = PATTERN_WORDS.get(str((error.get("ctx") or {}).get("pattern")))
        return f"{method}: {where} {_given(error)}is not {wanted or 'in the form expected'}"
    message = str(error["msg"]).removeprefix("Value error, ")  # our own validators' words
    return f"{method}: {where}: {message}"


def _lone_surrogate(params: dict[str, Any]) -> str | None:
    """Where a string in ``params`` holds half of a UTF-16 pair (JSON allows ``"\\ud800"``):
    text no database or file can store, which pydantic lets through inside an optional field."""
    stack: list[tuple[str, Any]] = [(key, value) for key, value in params.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(value, dict):
            stack.extend((f"{where}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{n}]", item) for n, item in enumerate(value))
    return None


def _given(error: Any) -> str:
    value = error.get("input")
    return f"{value!r} " if isinstance(value, str) and len(value) <= 80 else ""


#: What each ``pattern=`` of the socket's parameters stands for, said the same way the
#: ``infractl`` flags say it. A pattern without words here is a gap ``tests/test_api_words.py``
#: finds.
PATTERN_WORDS: dict[str, str] = {
    JOB_NAME: "a job name (see `infractl jobs`)",
    BACKUP_NAME: "a backup name like openclaw-infra-20260310T033000Z (see `infractl backup list`)",
    AGENT_ID: "an agent id (lower-case letters, digits, '-', '_')",
    RECOMMENDATION_ID: "a recommendation id (see `infractl feedback list`)",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
