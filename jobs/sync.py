"""The ``sync`` job: each agent's daily digest of what the others did and what is open.

Once a day (and whenever triggered): the signals the agents dropped in their workspaces are
collected, new mistakes are looked for in the transcripts, and then for every agent whose
workspace exists a ``DailySyncData`` is gathered (yesterday's summaries of the other agents,
the open signals addressed to it, its priorities, the feedback given to recommendations since
yesterday) and written as ``memory/YYYY-MM-DD-sync.md`` (one section per day, replaced on a
re-run) and as a ``sync`` record of the memory store. An agent that works alone still gets its
digest. When any note changed and announcing is on, one ``openclaw system event`` says where
the notes are; a missing or failing ``openclaw`` is reported in the stats, not raised.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import structlog

from jobs.announce import Announcement, AnnounceStatus, announce, combined
from jobs.base import JobContext, JobResult
from jobs.sync_digest import (
    AgentSummary,
    DailySyncData,
    FeedbackNote,
    day_bounds,
    feedback_notes,
    render,
    yesterday_of,
)
from stores.coordination.digest_notes import DigestWrite, write_digest
from stores.coordination.drops import collect
from stores.coordination.mistake_scan import scan_new
from stores.coordination.priorities import load_priorities
from stores.coordination.signals import SignalStore
from stores.memory.chunking import chunk_id
from stores.memory.records import Chunk, Write
from stores.memory.store import MemoryStore
from stores.openclaw.home import Agent, OpenClawHome, discover

log = structlog.get_logger(__name__)

_ONE_DAY = timedelta(days=1)

SYNC: Final = "sync"
#: Bad drop-file lines named in a run's stats; the rest are counted.
MAX_PROBLEMS_SHOWN = 20


@dataclass
class SyncReport:
    agents: int = 0
    notes_written: int = 0
    notes_unchanged: int = 0
    signals_collected: int = 0
    mistakes_found: int = 0
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    announce: Announcement = field(default_factory=lambda: Announcement(AnnounceStatus.OFF))

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "notes_written": self.notes_written,
            "notes_unchanged": self.notes_unchanged,
            "signals_collected": self.signals_collected,
            "mistakes_found": self.mistakes_found,
            "skipped": self.skipped,
            "drop_problems": len(self.problems),
            "drop_problem_lines": self.problems[:MAX_PROBLEMS_SHOWN],
            "announce": self.announce.to_dict(),
        }


async def run(ctx: JobContext) -> JobResult:
    if ctx.memory is None or ctx.openclaw is None:
        raise RuntimeError("the memory store is not open; see `infractl health`")
    if ctx.signals is None:
        raise RuntimeError("the signal store is not open; see `infractl health`")
    source = ctx.openclaw
    home = await asyncio.to_thread(discover, source)
    job = DailySync(ctx, ctx.memory, ctx.signals, home)
    await job.gather_inputs()
    for agent in home.agents:
        await job.agent(agent)
    await job.announce()
    report = job.report
    summary = f"{report.notes_written} sync notes written"
    if report.notes_unchanged:
        summary += f", {report.notes_unchanged} unchanged"
    return JobResult(summary=summary, stats=report.to_dict())


class DailySync:
    def __init__(
        self, ctx: JobContext, memory: MemoryStore, signals: SignalStore, home: OpenClawHome
    ) -> None:
        self.ctx = ctx
        self.memory = memory
        self.signals = signals
        self.home = home
        self.now = ctx.clock()
        self.day = self.now.astimezone(ctx.tz).date()
        self.report = SyncReport()
        self._feedback: list[FeedbackNote] = []
        self._summaries: dict[str, AgentSummary | None] = {}
        self._changed: list[str] = []

    @property
    def present(self) -> list[Agent]:
        """The agents whose workspace exists: the only places a note may go."""
        return [a for a in self.home.agents if a.workspace.is_dir()]

    async def gather_inputs(self) -> None:
        ctx = self.ctx
        collected = await asyncio.to_thread(
            collect, self.signals, self.present, self.now, ctx.sync.signal_ttl, ctx.tz
        )
        self.report.signals_collected = collected.added
        self.report.problems = [str(p) for p in collected.problems]
        for problem in collected.problems:
            log.warning("sync.signal_skipped", where=problem.where, problem=problem.detail)
        if ctx.mistakes is not None:
            for agent in self.home.agents:
                added, _ = await asyncio.to_thread(scan_new, ctx.mistakes, agent, self.now)
                self.report.mistakes_found += added
        if ctx.feedback is not None:
            since, until = day_bounds(self.day - _ONE_DAY, ctx.tz)  # yesterday's answers
            self._feedback = await asyncio.to_thread(feedback_notes, ctx.feedback, since, until)
        yesterday = self.day - _ONE_DAY
        for agent in self.home.agents:
            self._summaries[agent.id] = await asyncio.to_thread(
                yesterday_of, agent, yesterday, ctx.tz, self.memory
            )

    async def agent(self, agent: Agent) -> None:
        if not agent.workspace.is_dir():
            self.report.skipped.append(f"{agent.id}: no workspace at {agent.workspace}")
            return
        data = await self.data_for(agent)
        body = render(data, self.ctx.tz)
        written = await asyncio.to_thread(write_digest, agent.workspace, SYNC, self.day, body)
        chunk = self._chunk(agent, body, written)
        await asyncio.to_thread(self.memory.write, Write(chunks=[chunk]), self.ctx.clock())
        self.report.agents += 1
        if written.changed:
            self.report.notes_written += 1
            self._changed.append(agent.id)
        else:
            self.report.notes_unchanged += 1
        log.info("sync.note", agent=agent.id, changed=written.changed, **data.counts())

    async def data_for(self, agent: Agent) -> DailySyncData:
        ctx = self.ctx
        others = [a.id for a in self.home.agents if a.id != agent.id]
        signals = await asyncio.to_thread(self.signals.signals, self.now, to=agent.id)
        priorities = await asyncio.to_thread(
            lambda: load_priorities(
                self.signals, self.now, agent=agent.id, feedback=ctx.feedback, mistakes=ctx.mistakes
            )
        )
        summaries = [s for a in others if (s := self._summaries.get(a)) is not None]
        return DailySyncData(
            agent=agent.id,
            name=agent.name,
            day=self.day,
            summaries=tuple(summaries),
            signals=tuple(signals),
            priorities=priorities,
            feedback=tuple(self._feedback),
            others=tuple(others),
        )

    async def announce(self) -> None:
        settings = self.ctx.sync
        if not settings.announce:
            return
        if not self._changed:
            self.report.announce = Announcement(AnnounceStatus.SKIPPED, "no note changed")
            return
        text = (
            f"openclaw-infra daily sync for {self.day.isoformat()}: read"
            f" memory/{self.day.isoformat()}-sync.md."
        )
        within = settings.announce_timeout.total_seconds()
        outcomes = [
            await announce(
                settings.openclaw_command, text, agent=agent, within=within, env=settings.child_env
            )
            for agent in self._changed
        ]
        self.report.announce = combined(outcomes)

    def _chunk(self, agent: Agent, body: str, written: DigestWrite) -> Chunk:
        start, _ = day_bounds(self.day, self.ctx.tz)
        title = f"{self.day.isoformat()} daily sync"
        return Chunk(
            id=chunk_id(SYNC, agent.id, self.day.isoformat()),
            kind=SYNC,
            agent=agent.id,
            source=f"{agent.id}:{SYNC}",
            text=f"[{title}]\n{body}",
            search_text=f"{title}\n{body}",
            path=str(written.path),
            ts_start=start.timestamp(),
            ts_end=self.now.timestamp(),
            roles=("summary",),
        )
