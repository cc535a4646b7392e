"""The ``summarize`` job: each agent's last hour, as a note the agent reads and a memory.

For every hour that ended since the last run (at most ``catch_up`` of them after downtime):
what happened (``HourlyActivity``), a summary by the LLM (three-pass or single-pass) or, with no
key or when the API fails, by the extractive summarizer, written into the agent's
``memory/YYYY-MM-DD-hourly.md`` (one section per hour, replaced on a re-run) and added to the
memory store as an ``hourly`` record linked to the entries it covers. Hours with nothing said
write nothing. After a day ends its hours are folded into a day summary, and once they are
older than ``keep_hourly_for`` they leave the note. Transcript text reaches the model only as
delimited data (``data=``), never as instructions, and within a size budget.

An hour is summarised only once the ``ingest`` job has read past its end (a successful ingest
that started after it): otherwise, after downtime, the two catch-up runs racing each other
would find the hour still empty in the memory index and pass it by for good. When the API is
unreachable, the first hour finds out and the rest of the run is extractive, so a long
catch-up does not wait out the SDK's retries hour after hour. One agent's failure (a missing
workspace, a lock held) does not hold up the others; the run then fails, naming it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from jobs.base import JobContext, JobResult
from jobs.extractive import extractive_summary
from jobs.llm import LLMError, LLMNotConfigured, LLMUnavailable, LLMUsage
from jobs.refine import remember, remember_failure
from jobs.three_pass import Mode, three_pass
from stores.coordination.activity import HourlyActivity, build_activity
from stores.coordination.summary_notes import (
    Origin,
    SummaryKind,
    compact,
    note_path,
    read_hours,
    roll_up,
    write_hour,
)
from stores.counts import count
from stores.hours import HourWindow, windows_between
from stores.memory.chunking import chunk_id
from stores.memory.records import Chunk, TurnRow, Write
from stores.memory.store import MemoryStore
from stores.openclaw.home import Agent, discover
from stores.openclaw.usage import scan_usage
from stores.runlog import RunStatus

log = structlog.get_logger(__name__)

HOURLY = "hourly"
#: Characters of transcript handed to the model for one hour (about 6,000 tokens of English,
#: fewer of other scripts); a busy hour is cut at the end, one long message at its own limit.
MAX_DATA_CHARS = 24_000
MAX_LINE_CHARS = 2_000
#: Days whose hourly sections still wait to leave the note, remembered at most this many.
MAX_PENDING_DAYS = 60

HOUR_SYSTEM = (
    "You write the hourly notes of a personal AI agent: what happened in one hour of its "
    "conversations, for the agent to read later. Be factual and brief: at most 8 bullet points "
    "and 120 words, people by name, decisions and open questions kept, no preamble."
)
HOUR_TASK = "Summarise the conversation of {label} on {day} for the agent {agent}."
DAY_SYSTEM = (
    "You write the day summary of a personal AI agent from its hourly notes: the day's main "
    "threads, decisions and what is still open. At most 10 bullet points, no preamble."
)
DAY_TASK = "Summarise {day} for the agent {agent} from its hourly notes."


@dataclass
class SummaryReport:
    hours: int = 0
    llm_hours: int = 0
    extractive_hours: int = 0
    days_rolled: int = 0
    days_compacted: int = 0
    llm_errors: int = 0
    #: Hours not yet summarised because ingest has not read past them.
    hours_waiting_for_ingest: int = 0
    failed_agents: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


async def run(ctx: JobContext) -> JobResult:
    if ctx.memory is None or ctx.openclaw is None:
        raise RuntimeError("the memory store is not open; see `infractl health`")
    source = ctx.openclaw
    home = await asyncio.to_thread(discover, source)
    job = Summarize(ctx, ctx.memory)
    job.horizon = await asyncio.to_thread(ingested_through, ctx)
    for agent in home.agents:
        try:
            await job.agent(agent)
        except Exception as exc:  # the others go on; the run fails below
            reason = f"{type(exc).__name__}: {exc}"
            job.report.failed_agents[agent.id] = reason
            log.warning("summary.agent_failed", agent=agent.id, error=reason)
    failed = job.report.failed_agents
    if failed:
        named = "; ".join(f"{agent}: {reason}" for agent, reason in failed.items())
        raise RuntimeError(
            f"{len(failed)} of {count(len(home.agents), 'agent')} not summarised: {named}"
        )
    stats: dict[str, Any] = {**job.report.to_dict(), "llm": job.usage.to_stats()}
    summary = f"{count(job.report.hours, 'hour')} summarised"
    if job.report.extractive_hours:
        summary += f" ({job.report.extractive_hours} extractive)"
    return JobResult(summary=summary, stats=stats)


def ingested_through(ctx: JobContext) -> datetime | None:
    """Blocking: what the memory index holds for sure: every turn written before the latest
    successful ingest started. None when ingest is not a scheduled job here (the index is
    filled some other way, and taken as it is)."""
    scheduled = {job.name: job for job in ctx.scheduler.scheduled_jobs()}
    ingest = scheduled.get("ingest")
    if ingest is None or not ingest.enabled:
        return None
    done = ctx.run_log.runs("ingest", 1, RunStatus.SUCCESS)
    if not done or done[0].started_at is None:
        return datetime.fromtimestamp(0, UTC)  # nothing is sure yet
    return done[0].started_at


class Summarize:
    def __init__(self, ctx: JobContext, memory: MemoryStore) -> None:
        self.ctx = ctx
        self.memory = memory
        self.report = SummaryReport()
        self.usage = LLMUsage()
        self.mode = Mode(ctx.prompting.get("summarize", Mode.THREE.value))
        self._last_error = "unknown error"
        self._llm_down = False
        #: See ``ingested_through``; None: no limit.
        self.horizon: datetime | None = None

    async def agent(self, agent: Agent) -> None:
        now = self.ctx.clock()
        key = f"summary:{agent.id}"
        state = await asyncio.to_thread(self.memory.index.checkpoint, key) or {}
        since = _parse(state.get("through")) or now - self.ctx.summaries.catch_up
        since = max(since, now - self.ctx.summaries.catch_up)
        days = set(state.get("days", []))
        until = now if self.horizon is None else min(now, self.horizon)
        waiting = len(windows_between(max(since, until), now, self.ctx.tz))
        self.report.hours_waiting_for_ingest += waiting
        for window in windows_between(since, until, self.ctx.tz):
            if await self._hour(agent, window):
                days.add(window.day.isoformat())
            state = {**state, "through": window.utc_end.isoformat(), "days": sorted(days)}
            await asyncio.to_thread(
                self.memory.index.apply, Write(checkpoints={key: state}), self.ctx.clock()
            )
        await self._roll_up(agent, key, state, now)

    async def _hour(self, agent: Agent, window: HourWindow) -> bool:
        start, end = window.timestamps
        turns = await asyncio.to_thread(self.memory.index.turns_between, agent.id, start, end)
        turns = [t for t in turns if t.text.strip()]
        if not turns:
            return False
        usage = await asyncio.to_thread(scan_usage, agent, window)
        activity = await asyncio.to_thread(build_activity, agent.id, window, turns, usage)
        if activity.is_empty:
            return False
        text, origin = await self._summary(agent, activity, turns)
        body = "\n".join(activity.facts()) + "\n\n" + text
        written = await asyncio.to_thread(write_hour, agent.workspace, window, body, origin)
        chunk = _hourly_chunk(agent, window, activity, text, str(written.path))
        await asyncio.to_thread(self.memory.write, Write(chunks=[chunk]), self.ctx.clock())
        self.report.hours += 1
        log.info("summary.hour", agent=agent.id, hour=str(window), origin=origin.kind.value)
        return True

    async def _summary(
        self, agent: Agent, activity: HourlyActivity, turns: list[TurnRow]
    ) -> tuple[str, Origin]:
        window = activity.window
        task = HOUR_TASK.format(label=window.label, day=window.day, agent=agent.name or agent.id)
        written = await self._with_llm(HOUR_SYSTEM, task, _transcript(turns))
        if written is not None:
            self.report.llm_hours += 1
            return written
        self.report.extractive_hours += 1
        fallback = await asyncio.to_thread(extractive_summary, activity, turns)
        return fallback.text, Origin(SummaryKind.EXTRACTIVE, self._why_extractive())

    async def _with_llm(self, system: str, task: str, data: str) -> tuple[str, Origin] | None:
        """The LLM's text, or None when there is no LLM or it failed (then: extractive)."""
        ctx = self.ctx
        if self._llm_down:
            return None  # found unreachable earlier in this run; ``_last_error`` says how
        try:
            if ctx.llm is None:
                raise LLMNotConfigured(ctx.llm_error or "no API key configured")
            result = await three_pass(
                ctx.llm,
                system=system,
                prompt=task,
                data=data,
                mode=self.mode,
                purpose="summarize",
                usage=self.usage,
            )
        except LLMError as exc:
            if not isinstance(exc, LLMNotConfigured):
                self.report.llm_errors += 1
                self._last_error = exc.message
                self._llm_down = isinstance(exc, LLMUnavailable)
                log.warning("summary.llm_failed", error=exc.message)
                if ctx.llm_history is not None:
                    await remember_failure(
                        ctx.llm_history,
                        ctx.clock,
                        exc,
                        mode=self.mode,
                        purpose="summarize",
                        prompt=task,
                        system=system,
                    )
            return None
        if ctx.llm_history is not None:
            await remember(
                ctx.llm_history, ctx.clock, result, purpose="summarize", prompt=task, system=system
            )
        kind = SummaryKind.THREE_PASS if self.mode is Mode.THREE else SummaryKind.SINGLE_PASS
        return result.final, Origin(kind, result.draft.stats.model)

    def _why_extractive(self) -> str:
        if self.ctx.llm is None:
            return "no LLM configured"
        return f"LLM failed: {self._last_error}"

    async def _roll_up(self, agent: Agent, key: str, state: dict[str, Any], now: datetime) -> None:
        today = now.astimezone(self.ctx.tz).date()
        rolled = set(state.get("rolled", []))
        pending = set(state.get("compact", []))  # rolled up, hourly sections still kept
        for day_text in state.get("days", []):
            day = date.fromisoformat(day_text)
            if day >= today or day_text in rolled:
                continue
            await self._roll_up_day(agent, day, now)
            rolled.add(day_text)
            pending.add(day_text)
            self.report.days_rolled += 1
        keep = self.ctx.summaries.keep_hourly_for
        for day_text in sorted(pending):
            day = date.fromisoformat(day_text)
            if _day_end(day, self.ctx.tz) + keep > now:
                continue
            await asyncio.to_thread(compact, agent.workspace, day, keep, now)
            pending.discard(day_text)
            self.report.days_compacted += 1
        if rolled != set(state.get("rolled", [])) or pending != set(state.get("compact", [])):
            days = [d for d in state.get("days", []) if d not in rolled]
            state = {
                **state,
                "rolled": sorted(rolled)[-MAX_PENDING_DAYS:],
                "days": days,
                "compact": sorted(pending)[-MAX_PENDING_DAYS:],
            }
            await asyncio.to_thread(
                self.memory.index.apply, Write(checkpoints={key: state}), self.ctx.clock()
            )

    async def _roll_up_day(self, agent: Agent, day: date, now: datetime) -> None:
        hours = await asyncio.to_thread(read_hours, note_path(agent.workspace, day))
        if not hours:
            return
        notes = _within("\n\n".join(f"{h.heading}\n{h.body}" for h in hours), MAX_DATA_CHARS)
        task = DAY_TASK.format(day=day.isoformat(), agent=agent.name or agent.id)
        written = await self._with_llm(DAY_SYSTEM, task, notes)
        if written is None:
            written = _day_digest(hours), Origin(SummaryKind.EXTRACTIVE, self._why_extractive())
        text, origin = written
        await asyncio.to_thread(
            roll_up,
            agent.workspace,
            day,
            text,
            origin,
            keep_hours=self.ctx.summaries.keep_hourly_for,
            now=now,
        )


def _transcript(turns: list[TurnRow]) -> str:
    lines = [
        _within(f"[{datetime.fromtimestamp(t.ts, UTC):%H:%M}Z] {t.speaker or t.role}: {t.text}")
        for t in turns
    ]
    size = 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if size > MAX_DATA_CHARS:
            return "\n".join([*lines[:i], "[... the rest of the hour is cut ...]"])
    return "\n".join(lines)


def _within(text: str, limit: int = MAX_LINE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + " [... cut ...]"


def _day_end(day: date, tz: Any) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)


def _day_digest(hours: list[Any]) -> str:
    """The extractive day summary: the first point of each hour, in order."""
    points = []
    for hour in hours:
        bullets = [line for line in hour.body.splitlines() if line.startswith("- ")]
        if bullets:
            points.append(f"{bullets[0]} ({hour.heading.removeprefix('## ')})")
    return "\n".join(points[:12]) or "- A quiet day."


def _hourly_chunk(
    agent: Agent, window: HourWindow, activity: HourlyActivity, text: str, path: str
) -> Chunk:
    start, end = window.timestamps
    title = f"{window.day.isoformat()} {window.label}"
    return Chunk(
        id=chunk_id(HOURLY, agent.id, window.utc_start.isoformat()),
        kind=HOURLY,
        agent=agent.id,
        source=f"{agent.id}:{HOURLY}",
        text=f"[{title}] (hourly summary)\n{text}",
        search_text=f"{title}\n{text}\n{' '.join(activity.keywords)}",
        entry_ids=activity.entry_ids,
        path=path,
        ts_start=start,
        ts_end=end,
        roles=("summary",),
    )


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
