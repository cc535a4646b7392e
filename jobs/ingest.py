"""The ``ingest`` job: what OpenClaw wrote since the last run, into the memory store.

Each source (a JSONL transcript, an agent's database, a note) is read from its checkpoint and
written back in one step (``MemoryStore.write``): chunks, turns and the moved checkpoint
together, so a crash or kill at any point re-reads at most the step it interrupted and never
stores a chunk twice (ids are stable). A bad line or an unreadable file is reported and
skipped; it never stops the other sources.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from jobs.base import JobContext, JobResult, in_thread
from stores.counts import count
from stores.memory.chunking import (
    TURNS,
    affected_windows,
    note_chunks,
    summary_chunk,
    turn_row,
    window_chunks,
)
from stores.memory.rebuild import Beside
from stores.memory.records import Write
from stores.memory.store import MemoryStore
from stores.openclaw.database import SqliteCheckpoint, read_sqlite
from stores.openclaw.entries import Names, Role
from stores.openclaw.home import Agent, OpenClawSource, discover
from stores.openclaw.jsonl import (
    JsonlCheckpoint,
    SessionFile,
    checkpoint_for,
    list_session_files,
    read_jsonl,
)
from stores.openclaw.notes import list_notes, read_note
from stores.openclaw.problems import Problem, ProblemKind, by_source
from stores.openclaw.sources import signature
from stores.openclaw.turns import Turn

#: Problems logged one by one per run; the rest are counted, so a broken file cannot flood.
LOGGED_PROBLEMS = 20

log = structlog.get_logger(__name__)
#: Problems already logged by this process: a file that stays broken (or a home without a
#: sessions.json) is logged once, not every minute; every run still counts it in its stats.
_REPORTED: set[tuple[str, str]] = set()
Step = Callable[[Agent], None]


@dataclass
class IngestReport:
    agents: int = 0
    sources: int = 0
    turns: int = 0
    chunks: int = 0
    notes_indexed: int = 0
    notes_removed: int = 0
    embedded: int = 0
    #: Vectors a rebuild took from the live store instead of embedding (text unchanged).
    reused: int = 0
    rebuilt: bool = False
    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "sources": self.sources,
            "turns": self.turns,
            "chunks": self.chunks,
            "notes_indexed": self.notes_indexed,
            "notes_removed": self.notes_removed,
            "embedded": self.embedded,
            "reused": self.reused,
            "rebuilt": self.rebuilt,
            "problems": len(self.problems),
            "problem_examples": [
                {"where": p.where, "kind": str(p.kind), "detail": p.detail}
                for p in self.problems[:LOGGED_PROBLEMS]
            ],
            "skipped": dict(self.skipped),
        }


#: Where the memory index keeps the signature of the sources its last full run read.
SIGNATURE_KEY = "sources_signature"
#: And what the last full run could not read, per source (``memory.stats`` shows it).
PROBLEMS_KEY = "sources_problems"


async def idle(ctx: JobContext) -> bool:
    """Nothing OpenClaw keeps changed since the last full run, and every chunk has a vector:
    a scheduled run would read nothing."""
    if ctx.memory is None or ctx.openclaw is None:
        return False
    return await asyncio.to_thread(_unchanged, ctx.openclaw, ctx.memory)


def _unchanged(source: OpenClawSource, memory: MemoryStore) -> bool:
    recorded = memory.index.get_meta(SIGNATURE_KEY)
    if recorded is None or memory.index.count_to_embed():
        return False
    return recorded == signature(discover(source))


async def run(ctx: JobContext) -> JobResult:
    if ctx.memory is None or ctx.openclaw is None:
        raise RuntimeError("the memory store is not open; see `infractl health`")
    ingest = Ingest(ctx, ctx.memory)
    report = await in_thread(ctx, lambda _: ingest.run())
    fresh = [p for p in report.problems if (p.where, str(p.kind)) not in _REPORTED]
    for problem in fresh[:LOGGED_PROBLEMS]:
        log.warning(
            "ingest.problem", where=problem.where, kind=str(problem.kind), detail=problem.detail
        )
    _REPORTED.update((p.where, str(p.kind)) for p in fresh[:LOGGED_PROBLEMS])
    summary = (
        f"{count(report.turns, 'new turn')}, {count(report.chunks, 'chunk')}"
        f" from {count(report.sources, 'source')}"
    )
    if report.problems:
        summary += f"; {count(len(report.problems), 'problem')}"
    return JobResult(summary=summary, stats=report.to_dict())


class Ingest:
    """One ingest run; blocking, so the job runs it in a worker thread."""

    def __init__(self, ctx: JobContext, memory: MemoryStore) -> None:
        assert ctx.openclaw is not None
        self.ctx = ctx
        self.memory = memory
        self.index = memory.index
        self.source = ctx.openclaw
        self.window = ctx.memory_config.window_turns
        self.stride = ctx.memory_config.window_stride
        self.only = ctx.params.get("agent")
        self.report = IngestReport()
        self._checkpoints: dict[str, dict[Path, JsonlCheckpoint]] = {}

    def run(self) -> IngestReport:
        """Read what is new; a rebuild (``params["rebuild"]``) reads everything again into a
        store beside the live one, which answers searches until the rebuilt one is swapped in
        at the end (``stores.memory.rebuild``)."""
        if not self.ctx.params.get("rebuild"):
            return self._run()
        self.ctx.progress.phase = "preparing"
        with Beside(self.memory, self.only) as beside:
            self.memory, self.index = beside.store, beside.store.index
            self.report.rebuilt = True
            self._run()
            self.report.embedded -= beside.reuse.reused  # taken from the live store, not embedded
            self.ctx.stop.check()  # the last moment a stop leaves the live store as it was
            self.ctx.progress.phase = "swapping"
            beside.swap()
        self.report.reused = beside.reuse.reused
        return self.report

    def _run(self) -> IngestReport:
        home = discover(self.source)
        # Taken before reading: a change made during the run makes the next check differ.
        before = signature(home) if self.only is None else None
        self.report.problems.extend(home.problems)
        agents = [a for a in home.agents if self.only is None or a.id == self.only]
        self._rewindow_if_changed()
        steps = [(agent, step) for agent in agents for step in self._steps(agent)]
        self.ctx.progress.phase = "reading"
        self.ctx.progress.total = len(steps)
        for done, (agent, step) in enumerate(steps, 1):
            self.ctx.stop.check()  # each step is one transaction: stopping between is clean
            try:
                step(agent)
            except Exception as exc:  # one source's failure must not stop the others for good
                detail = f"{type(exc).__name__}: {exc}"[:300]
                where = _step_name(agent, step)
                self.report.problems.append(Problem(where, ProblemKind.SOURCE_FAILED, detail))
            self.ctx.progress.done = done
        self.report.agents = len(agents)
        self._embed()
        if before is not None:
            self.index.set_meta(SIGNATURE_KEY, before)
            self.index.set_meta(PROBLEMS_KEY, json.dumps(by_source(self.report.problems)))
        return self.report

    def _embed(self) -> None:
        progress = self.ctx.progress
        progress.phase, progress.done, progress.total = "embedding", 0, None

        def advance(done: int, total: int) -> None:
            progress.done, progress.total = done, total

        self.report.embedded = self.memory.sync_vectors(advance, stop=self.ctx.stop)

    def _steps(self, agent: Agent) -> list[Step]:
        files, problems = list_session_files(agent.sessions_dir)
        self.report.problems.extend(problems)
        steps: list[Step] = [partial(self._jsonl, session=f) for f in files]
        if agent.database.exists():
            steps.append(self._sqlite)
        steps.append(self._notes)
        return steps

    @property
    def _windowing(self) -> str:
        return f"{self.window}/{self.stride}"

    def _rewindow_if_changed(self) -> None:
        """New window settings: remake the turn windows from the stored turns (no re-read)."""
        recorded = self.index.get_meta("windowing")
        if recorded == self._windowing:
            return
        if recorded is not None:
            self.ctx.progress.phase = "re-chunking"
            for agent_id, session_id in self.index.sessions():
                old = self.index.ids_where(agent=agent_id, session_id=session_id, kind=TURNS)
                turns = self.index.session_turns(agent_id, session_id)
                starts = range(0, len(turns), self.stride)
                chunks = window_chunks(
                    turns, starts, self.window, _session_source(agent_id, session_id)
                )
                write = Write(chunks=chunks, delete_ids=old)
                self.memory.write(write, self.ctx.clock(), embed=False)
        self.index.set_meta("windowing", self._windowing)

    # --- sources -----------------------------------------------------------------------

    def _jsonl(self, agent: Agent, session: SessionFile) -> None:
        prefix = f"{agent.id}:jsonl:"
        known = self._jsonl_checkpoints(agent.id)
        before = checkpoint_for(session.path, known)
        read = read_jsonl(session, before, agent_id=agent.id, names=_names(agent))
        self._account(read.problems, read.skipped)
        if read.checkpoint is None or (read.checkpoint == before and not read.turns):
            return
        write = self._turns_write(read.turns)
        write.checkpoints[prefix + str(session.path)] = read.checkpoint.to_dict()
        renamed = [p for p, cp in known.items() if cp is before and p != session.path]
        write.drop_checkpoints.extend(prefix + str(p) for p in renamed)  # a reset's old name
        self._store(write)
        for path in renamed:
            del known[path]
        known[session.path] = read.checkpoint

    def _jsonl_checkpoints(self, agent_id: str) -> dict[Path, JsonlCheckpoint]:
        """The agent's JSONL checkpoints, read once a run (not once a file: an agent with a
        thousand sessions would otherwise decode a million of them)."""
        if agent_id not in self._checkpoints:
            prefix = f"{agent_id}:jsonl:"
            self._checkpoints[agent_id] = {
                Path(k.removeprefix(prefix)): JsonlCheckpoint.from_dict(v)
                for k, v in self.index.checkpoints(prefix).items()
            }
        return self._checkpoints[agent_id]

    def _sqlite(self, agent: Agent) -> None:
        key = f"{agent.id}:sqlite"
        stored = self.index.checkpoint(key)
        before = SqliteCheckpoint.from_dict(stored) if stored is not None else None
        read = read_sqlite(agent.database, before, agent_id=agent.id, names=_names(agent))
        self._account(read.problems, read.skipped)
        if read.checkpoint == before and not read.turns:
            return
        write = self._turns_write(read.turns)
        write.checkpoints[key] = read.checkpoint.to_dict()
        self._store(write)

    def _notes(self, agent: Agent) -> None:
        prefix = f"{agent.id}:note:"
        stored = self.index.checkpoints(prefix)
        paths, problems = list_notes(agent.workspace, agent.extra_paths)
        self.report.problems.extend(problems)
        current = {prefix + str(p): p for p in paths}
        for key, path in current.items():
            self._note(agent, key, path, stored.get(key))
        for key in stored.keys() - current.keys():
            self._store(Write(delete_ids=self.index.ids_where(source=key), drop_checkpoints=[key]))
            self.report.notes_removed += 1

    def _note(self, agent: Agent, key: str, path: Path, stored: dict[str, Any] | None) -> None:
        try:
            info = path.stat()
        except OSError:
            return  # gone since it was listed; the next run removes it
        stamp = {"mtime_ns": info.st_mtime_ns, "size": info.st_size}
        if stored is not None and all(stored.get(k) == v for k, v in stamp.items()):
            return
        note, problems = read_note(path, agent.workspace)
        self.report.problems.extend(problems)
        if note is None:
            return
        if stored is not None and stored.get("sha256") == note.file_hash:
            self._store(Write(checkpoints={key: {**stored, **stamp}}))  # touched, not changed
            return
        chunks = note_chunks(agent.id, note, key, info.st_mtime)
        self._store(
            Write(
                chunks=chunks,
                delete_ids=self.index.ids_where(source=key),
                checkpoints={key: {**stamp, "sha256": note.file_hash}},
            )
        )
        self.report.notes_indexed += 1

    # --- turns into chunks ---------------------------------------------------------------

    def _turns_write(self, turns: Iterable[Turn]) -> Write:
        write = Write()
        by_session: dict[str, list[Turn]] = defaultdict(list)
        for turn in turns:
            if turn.role is Role.SUMMARY:
                write.chunks.append(
                    summary_chunk(turn, _session_source(turn.agent_id, turn.session_id))
                )
            else:
                by_session[turn.session_id].append(turn)
        for session_turns in by_session.values():
            self._session_write(session_turns, write)
        return write

    def _session_write(self, turns: list[Turn], write: Write) -> None:
        agent_id, session_id = turns[0].agent_id, turns[0].session_id
        seen = self.index.known_entries(agent_id, session_id, [t.entry_id for t in turns])
        fresh = [t for t in dict((t.entry_id, t) for t in turns).values() if t.entry_id not in seen]
        if not fresh:
            return
        first = self.index.turn_count(agent_id, session_id)
        rows = [turn_row(t, first + i) for i, t in enumerate(fresh)]
        starts = affected_windows(first, first + len(rows), self.window, self.stride)
        context = self.index.session_turns(agent_id, session_id, from_idx=starts.start)
        source = _session_source(agent_id, session_id)
        write.chunks.extend(window_chunks(context + rows, starts, self.window, source))
        write.turns.extend(rows)
        self.report.turns += len(rows)

    def _store(self, write: Write) -> None:
        if not write:
            return
        self.memory.write(write, self.ctx.clock(), embed=False)
        self.report.sources += 1
        self.report.chunks += len(write.chunks)

    def _account(self, problems: Iterable[Problem], skipped: Counter[Any]) -> None:
        self.report.problems.extend(problems)
        self.report.skipped.update({str(k): v for k, v in skipped.items()})


def _names(agent: Agent) -> Names:
    return Names(assistant=agent.name, user=agent.user_name)


def _session_source(agent_id: str, session_id: str) -> str:
    return f"{agent_id}:session:{session_id}"


def _step_name(agent: Agent, step: Step) -> str:
    if isinstance(step, partial) and "session" in step.keywords:
        return str(step.keywords["session"].path)
    return f"{agent.id}: {getattr(step, '__name__', 'step')}"
