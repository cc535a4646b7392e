"""The ``synthesize`` job: the week's mistakes as patterns, lessons and recommendations.

Weekly (and whenever triggered): the transcripts are scanned for new mistakes, and the mistakes
of the week are embedded (on its schedule, the seven days before today, local midnight to
midnight: last week; triggered by hand, the seven days up to now, so that a mistake just
recorded is in it) with the memory
store's embedder and clustered (``jobs.clusters``) across all agents, so that a mistake two
agents both make is one pattern. Every agent with a mistake in the week gets a
``WeeklySynthesis``: the patterns it is part of, a lesson per pattern and a few concrete
recommendations, written by the LLM (three-pass or single-pass; mistakes and feedback go in
only as a ``<mistakes>`` data block) or, with no key or when the API fails, extractively (the
clusters, their counts and representative quotes); the note says which. It is written as
``memory/YYYY-MM-DD-weekly.md`` (replaced on a re-run that day) and as a ``weekly`` record of
the memory store, and each recommendation goes to the outbox under a stable id, so a re-run
sends nothing twice. The person's answers to last week's recommendations are part of the
synthesis: in the model's data, and as a line of the note.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Final

import structlog

from jobs.base import JobContext, JobResult
from jobs.clusters import cluster
from jobs.llm import LLMError, LLMNotConfigured, LLMUsage
from jobs.refine import remember, remember_failure
from jobs.sync_digest import FeedbackNote, day_bounds, feedback_notes
from jobs.three_pass import Mode, three_pass
from jobs.weekly_text import (
    SYSTEM,
    TASK,
    Advice,
    Pattern,
    extractive,
    parse_advice,
    prompt_data,
    recommendation_id,
    render,
)
from stores.coordination.digest_notes import write_digest
from stores.coordination.mistake_scan import scan_new
from stores.coordination.mistakes import MistakeEntry, MistakeStore
from stores.counts import count
from stores.memory.chunking import chunk_id
from stores.memory.records import Chunk, Write
from stores.memory.store import MemoryStore
from stores.openclaw.home import Agent, OpenClawHome, discover
from stores.runlog import RunTrigger

log = structlog.get_logger(__name__)

WEEKLY: Final = "weekly"
SOURCE_JOB = "synthesize"
#: The most mistakes one synthesis looks at: the newest of the week.
MAX_MISTAKES = 1000


@dataclass(frozen=True)
class WeeklySynthesis:
    agent: str
    name: str | None
    #: The week's first and last day.
    start: date
    end: date
    patterns: tuple[Pattern, ...]
    feedback: tuple[FeedbackNote, ...]
    text: str
    #: ``_Synthesis: LLM, three-pass (model)_`` or ``_Synthesis: extractive (why)_``.
    origin: str
    advice: tuple[Advice, ...] = ()


@dataclass
class SynthesisReport:
    mistakes: int = 0
    new_mistakes: int = 0
    patterns: int = 0
    notes: int = 0
    llm_notes: int = 0
    extractive_notes: int = 0
    llm_errors: int = 0
    recommendations: int = 0
    recommendations_new: int = 0
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


async def run(ctx: JobContext) -> JobResult:
    if ctx.memory is None or ctx.openclaw is None:
        raise RuntimeError("the memory store is not open; see `infractl health`")
    if ctx.mistakes is None:
        raise RuntimeError("the mistakes log is not open; see `infractl health`")
    source = ctx.openclaw
    home = await asyncio.to_thread(discover, source)
    job = Synthesize(ctx, ctx.memory, ctx.mistakes, home)
    await job.scan()
    week = await job.week_mistakes()
    patterns = await job.patterns(week)
    for agent in home.agents:
        mine = [p for p in patterns if any(m.agent == agent.id for m in p.members)]
        if mine:
            # Numbered within the agent's note; a pattern keeps its other agents' members.
            await job.agent(agent, [replace(p, number=n) for n, p in enumerate(mine, 1)])
    report = job.report
    stats: dict[str, Any] = {**report.to_dict(), "llm": job.usage.to_stats()}
    if not week:
        return JobResult(summary="no mistakes this week", stats=stats)
    summary = (
        f"{count(report.mistakes, 'mistake')}, {count(report.patterns, 'pattern')},"
        f" {count(report.notes, 'note')}"
    )
    if report.extractive_notes:
        summary += f" ({report.extractive_notes} extractive)"
    return JobResult(summary=summary, stats=stats)


class Synthesize:
    def __init__(
        self, ctx: JobContext, memory: MemoryStore, mistakes: MistakeStore, home: OpenClawHome
    ) -> None:
        self.ctx = ctx
        self.memory = memory
        self.mistakes = mistakes
        self.home = home
        self.now = ctx.clock()
        self.day = self.now.astimezone(ctx.tz).date()
        if ctx.trigger is RunTrigger.MANUAL:
            #: Asked for by hand: the seven days up to now, today's mistakes included.
            self.start, self.end = self.now - timedelta(days=7), self.now
            self.first_day, self.last_day = self.start.astimezone(ctx.tz).date(), self.day
        else:
            #: On its schedule (Mondays): the seven local days before today, last week.
            self.start = day_bounds(self.day - timedelta(days=7), ctx.tz)[0]
            self.end = day_bounds(self.day, ctx.tz)[0]
            self.first_day, self.last_day = self.day - timedelta(days=7), self.day - timedelta(1)
        self.report = SynthesisReport()
        self.usage = LLMUsage()
        self.mode = Mode(ctx.prompting.get(SOURCE_JOB, Mode.THREE.value))
        self._last_error = "unknown error"

    async def scan(self) -> None:
        for agent in self.home.agents:
            added, _ = await asyncio.to_thread(scan_new, self.mistakes, agent, self.now)
            self.report.new_mistakes += added

    async def week_mistakes(self) -> list[MistakeEntry]:
        found = await asyncio.to_thread(
            lambda: self.mistakes.mistakes(since=self.start, until=self.end, limit=MAX_MISTAKES)
        )
        self.report.mistakes = len(found)
        return sorted(found, key=lambda m: (m.at, m.id))

    async def patterns(self, week: list[MistakeEntry]) -> list[Pattern]:
        if not week:
            return []
        vectors = await asyncio.to_thread(self.memory.embedder.embed, [m.text for m in week])
        groups = await asyncio.to_thread(cluster, vectors, self.ctx.synthesis.similarity)
        patterns = []
        for number, group in enumerate(groups, 1):
            rest = [week[i] for i in group.members if i != group.representative]
            members = (week[group.representative], *rest)
            patterns.append(Pattern(number, members, group.cohesion))
        self.report.patterns = len(patterns)
        return patterns

    async def agent(self, agent: Agent, patterns: list[Pattern]) -> None:
        if not agent.workspace.is_dir():
            self.report.skipped.append(f"{agent.id}: no workspace at {agent.workspace}")
            return
        feedback = await self._feedback(agent)
        synthesis = await self._synthesis(agent, patterns, feedback)
        body = render(
            who=f"{agent.name} ({agent.id})" if agent.name else agent.id,
            start=synthesis.start,
            end=synthesis.end,
            origin=synthesis.origin,
            patterns=patterns,
            written=synthesis.text,
            feedback=feedback,
            tz=self.ctx.tz,
        )
        written = await asyncio.to_thread(write_digest, agent.workspace, WEEKLY, self.day, body)
        chunk = self._chunk(agent, body, str(written.path))
        await asyncio.to_thread(self.memory.write, Write(chunks=[chunk]), self.ctx.clock())
        self.report.notes += 1
        await self._recommend(agent, synthesis.advice)
        log.info("synthesis.note", agent=agent.id, patterns=len(patterns), origin=synthesis.origin)

    async def _synthesis(
        self, agent: Agent, patterns: list[Pattern], feedback: list[FeedbackNote]
    ) -> WeeklySynthesis:
        limit = self.ctx.synthesis.max_recommendations
        start, end = self.first_day, self.last_day
        data = prompt_data(patterns, feedback, self.ctx.tz)
        task = TASK.format(agent=agent.name or agent.id, start=start, end=end, n=limit)
        written = await self._with_llm(SYSTEM.format(n=limit), task, data)
        if written is not None:
            text, origin = written
            advice = parse_advice(text, limit)
            self.report.llm_notes += 1
        else:
            text, advice = extractive(patterns, limit)
            origin = f"_Synthesis: extractive ({self._why_extractive()})_"
            self.report.extractive_notes += 1
        return WeeklySynthesis(
            agent.id,
            agent.name,
            start,
            end,
            tuple(patterns),
            tuple(feedback),
            text,
            origin,
            tuple(advice),
        )

    async def _with_llm(self, system: str, task: str, data: str) -> tuple[str, str] | None:
        """The LLM's text and origin line, or None when there is none or it failed."""
        ctx = self.ctx
        try:
            if ctx.llm is None:
                raise LLMNotConfigured(ctx.llm_error or "no API key configured")
            result = await three_pass(
                ctx.llm,
                system=system,
                prompt=task,
                data=data,
                data_tag="mistakes",
                mode=self.mode,
                purpose=SOURCE_JOB,
                usage=self.usage,
            )
        except LLMError as exc:
            if not isinstance(exc, LLMNotConfigured):
                await self._failed(exc, system, task)
            return None
        if ctx.llm_history is not None:
            await remember(
                ctx.llm_history, ctx.clock, result, purpose=SOURCE_JOB, prompt=task, system=system
            )
        origin = f"_Synthesis: LLM, {self.mode.value} ({result.draft.stats.model})_"
        return result.final, origin

    async def _failed(self, exc: LLMError, system: str, task: str) -> None:
        self.report.llm_errors += 1
        self._last_error = exc.message
        log.warning("synthesis.llm_failed", error=exc.message)
        if self.ctx.llm_history is not None:
            await remember_failure(
                self.ctx.llm_history,
                self.ctx.clock,
                exc,
                mode=self.mode,
                purpose=SOURCE_JOB,
                prompt=task,
                system=system,
            )

    def _why_extractive(self) -> str:
        if self.ctx.llm is None:
            return "no LLM configured"
        return f"LLM failed: {' '.join(self._last_error.split())[:120]}"

    async def _feedback(self, agent: Agent) -> list[FeedbackNote]:
        """Answers given in the week to earlier syntheses' recommendations for this agent
        (or for no agent in particular)."""
        feedback = self.ctx.feedback
        if feedback is None:
            return []
        notes = await asyncio.to_thread(feedback_notes, feedback, self.start, self.end)
        linked = await asyncio.to_thread(self.mistakes.recommendation_agents)
        return [
            n
            for n in notes
            if n.source_job == SOURCE_JOB and agent.id in linked.get(n.id, (agent.id,))
        ]

    async def _recommend(self, agent: Agent, advice: tuple[Advice, ...]) -> None:
        outbox = self.ctx.outbox
        if outbox is None:
            return
        for number, item in enumerate(advice, 1):
            rec_id = recommendation_id(agent.id, self.day, number)
            known = await asyncio.to_thread(self._known, rec_id)
            await asyncio.to_thread(
                self.mistakes.link_recommendation, rec_id, [agent.id], self.day.isoformat()
            )
            await outbox.recommend(item.title, item.body, source_job=SOURCE_JOB, id=rec_id)
            self.report.recommendations += 1
            if not known:
                self.report.recommendations_new += 1

    def _known(self, rec_id: str) -> bool:
        feedback = self.ctx.feedback
        return feedback is not None and feedback.get(rec_id) is not None

    def _chunk(self, agent: Agent, body: str, path: str) -> Chunk:
        title = f"week to {self.day.isoformat()} synthesis"
        return Chunk(
            id=chunk_id(WEEKLY, agent.id, self.day.isoformat()),
            kind=WEEKLY,
            agent=agent.id,
            source=f"{agent.id}:{WEEKLY}",
            text=f"[{title}]\n{body}",
            search_text=f"{title}\n{body}",
            path=path,
            ts_start=self.start.timestamp(),
            ts_end=self.end.timestamp(),
            roles=("summary",),
        )
