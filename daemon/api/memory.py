"""The memory methods of the socket API: search, add, forget, stats, reindex, get.

``memory.get`` opens the place a search result came from: the stretch of the session around a
transcript entry (from the index's turns), or the lines of a note in a known workspace.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from daemon.api.agents import no_such_agents, openclaw_agents
from daemon.api.host import Daemon
from daemon.api.moments import parse_moment, parse_span
from daemon.errors import BadRequest, Busy, Forbidden, NotConfigured, NotFound, Unavailable
from jobs.ingest import PROBLEMS_KEY
from stores.memory.diskfull import DiskFull
from stores.memory.records import Chunk, ChunkFilter, SearchQuery, TurnRow, Write
from stores.memory.results import approx_tokens
from stores.memory.store import MemoryStore
from stores.openclaw.home import OpenClawSource, discover
from stores.runlog import RunTrigger

AGENT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: How many ingest runs a reindex waits out before it says the daemon is too busy.
REBUILD_ATTEMPTS = 5
KINDS = ("turns", "summary", "note", "manual", "hourly", "sync", "weekly")
#: A note is read up to this size, and ``memory.get`` returns at most this many of its lines.
MAX_NOTE_BYTES = 4 * 1024 * 1024
MAX_NOTE_LINES = 1000


def _agent_id(value: str) -> str:
    if not re.fullmatch(AGENT_ID, value):
        raise ValueError(f"not an agent id: {value!r}")
    return value


AgentId = Annotated[str, AfterValidator(_agent_id)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchParams(_Params):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(10, ge=1, le=100)
    agent: list[str] = Field(default_factory=list, max_length=64)
    session: str | None = Field(None, max_length=200)
    speaker: str | None = Field(None, max_length=200)
    role: Literal["user", "assistant", "summary"] | None = None
    kind: list[Literal["turns", "summary", "note", "manual", "hourly", "sync", "weekly"]] = Field(
        default_factory=list, max_length=len(KINDS)
    )
    since: str | None = Field(
        None, max_length=64, description="YYYY-MM-DD, an ISO time, or an age like 7d"
    )
    until: str | None = Field(None, max_length=64)
    recent: str | None = Field(None, max_length=64, description="recency half-life, e.g. 30d")
    budget: int | None = Field(None, ge=50, le=100_000)
    prefer: str | None = Field(
        None, pattern=AGENT_ID, description="this agent's memories first where scores tie"
    )

    @field_validator("agent", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("agent")
    @classmethod
    def _agent_ids(cls, value: list[str]) -> list[str]:
        for agent in value:
            if not re.match(AGENT_ID, agent):
                raise ValueError(f"not an agent id: {agent!r}")
        return value


class AddParams(_Params):
    text: str = Field(min_length=1, max_length=20_000)
    agent: str | None = Field(None, pattern=AGENT_ID)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )


class ForgetParams(_Params):
    id: str | None = Field(None, min_length=1, max_length=200)
    agent: str | None = Field(None, pattern=AGENT_ID)
    session: str | None = Field(None, min_length=1, max_length=200)
    path: str | None = Field(None, min_length=1, max_length=4096)
    dry_run: bool = Field(False, description="count what would go, remove nothing")

    @model_validator(mode="after")
    def _one_target(self) -> ForgetParams:
        if self.id is None and self.path is None and self.session is None and self.agent is None:
            raise ValueError("say what to forget: id, path, session or agent")
        return self


class GetParams(_Params):
    """A turn (agent, session_id, entry_id) or a note's lines (path, line_start, line_end), as a
    search result's ``source`` names them; ``before``/``after`` turns or lines around it."""

    agent: AgentId | None = None
    session_id: str | None = Field(None, min_length=1, max_length=200)
    entry_id: str | None = Field(None, min_length=1, max_length=200)
    path: str | None = Field(None, min_length=1, max_length=4096)
    line_start: int | None = Field(None, ge=1, le=10_000_000)
    line_end: int | None = Field(None, ge=1, le=10_000_000)
    before: int = Field(5, ge=0, le=50)
    after: int = Field(5, ge=0, le=50)

    @model_validator(mode="after")
    def _one_place(self) -> GetParams:
        turn = (self.agent, self.session_id, self.entry_id)
        if self.path is not None:
            if any(v is not None for v in turn):
                raise ValueError("give a turn (agent, session_id, entry_id) or a path, not both")
            start, end = self.line_start or 1, self.line_end or self.line_start or 1
            if end < start:
                raise ValueError(f"line_end {end} is before line_start {start}")
            if end - start >= MAX_NOTE_LINES:
                raise ValueError(f"at most {MAX_NOTE_LINES} lines at a time")
        elif any(v is None for v in turn):
            raise ValueError("say which turn: agent, session_id and entry_id (or a note's path)")
        elif self.line_start is not None or self.line_end is not None:
            raise ValueError("line_start and line_end go with a path")
        return self


class ReindexParams(_Params):
    agent: str | None = Field(None, pattern=AGENT_ID)


class MemoryMethods:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, tuple[type[BaseModel], Any]]:
        return {
            "memory.search": (SearchParams, self.search),
            "memory.add": (AddParams, self.add),
            "memory.forget": (ForgetParams, self.forget),
            "memory.stats": (_Params, self.stats),
            "memory.reindex": (ReindexParams, self.reindex),
            "memory.get": (GetParams, self.get),
        }

    @property
    def store(self) -> MemoryStore:
        store = self.daemon.memory
        if store is None:
            raise NotConfigured(f"the memory store is not open: {self.daemon.memory_error}")
        return store

    async def search(self, params: SearchParams) -> dict[str, Any]:
        zone = self.daemon.settings.zone
        now = self.daemon.clock()
        since = _timestamp(params.since, "since", zone, now)
        until = _timestamp(params.until, "until", zone, now)
        if since is not None and until is not None and since > until:
            raise BadRequest(
                f"memory.search: since {params.since} is after until {params.until}:"
                " nothing can match"
            )
        await self._known(params.agent)
        query = SearchQuery(
            text=params.query,
            k=params.k,
            where=ChunkFilter(
                agents=tuple(params.agent),
                session_id=params.session,
                kinds=tuple(params.kind),
                since=since,
                until=until,
                speaker=params.speaker,
                role=params.role,
            ),
            token_budget=params.budget or self.daemon.settings.memory.token_budget,
            recency_half_life=parse_span(params.recent, "recent") if params.recent else None,
            now=now.timestamp(),
        )
        response = await asyncio.to_thread(self.store.search, query)
        found = response.model_dump(mode="json")
        if params.prefer is not None:  # a stable sort: only equal scores change places
            found["results"].sort(
                key=lambda r: (-r["score"], r["source"].get("agent_id") != params.prefer)
            )
        return found

    async def add(self, params: AddParams) -> dict[str, Any]:
        now = self.daemon.clock()
        digest = hashlib.sha256(f"{params.agent}\0{params.text}".encode()).hexdigest()[:24]
        chunk = Chunk(
            id=f"manual:{digest}",
            kind="manual",
            agent=params.agent,
            source=f"manual:{digest}",
            text=params.text,
            search_text=params.text,
            ts_start=now.timestamp(),
            ts_end=now.timestamp(),
            tags=tuple(params.tags),
            roles=("user",),
        )
        try:
            pending = await asyncio.to_thread(self.store.write, Write(chunks=[chunk]), now)
        except DiskFull as exc:
            raise Unavailable(str(exc)) from None
        result: dict[str, Any] = {"id": chunk.id, "tokens": approx_tokens(params.text)}
        if pending is not None:
            # Stored and found by its words now; by meaning once the vector is stored too.
            result["vector_pending"] = pending
        return result

    async def forget(self, params: ForgetParams) -> dict[str, Any]:
        store = self.store
        if params.id is not None:
            ids = [params.id]
            if params.dry_run:
                ids = list(await asyncio.to_thread(store.index.chunks, ids))
        else:
            ids = await asyncio.to_thread(_ids_of, store, params)
        if params.dry_run:
            return {"removed": len(ids), "dry_run": True}
        removed = await asyncio.to_thread(store.forget, ids)
        return {"removed": removed}

    async def stats(self, _: _Params) -> dict[str, Any]:
        store = self.store
        stats = await asyncio.to_thread(store.stats)
        problems = await asyncio.to_thread(store.index.get_meta, PROBLEMS_KEY)
        return {**stats.model_dump(mode="json"), "problems": json.loads(problems or "[]")}

    async def reindex(self, params: ReindexParams) -> dict[str, Any]:
        if params.agent is not None:
            await self._known([params.agent])
        if self.daemon.memory is None:
            # Perhaps refused for another embedder: reindexing is the consent to start over.
            await self.daemon.reopen_memory(new_embedder=True)
        self.store  # noqa: B018 - refuses at once when there is still no store to rebuild
        entry = await self._start_rebuild(params.agent)
        return {"run_id": entry.run_id, "job": "ingest"}

    async def get(self, params: GetParams) -> dict[str, Any]:
        if params.path is not None:
            return await self._note_lines(params, params.path)
        turns = await asyncio.to_thread(_stretch, self.store, params)
        if turns is None:
            raise NotFound(
                f"memory.get: no entry {params.entry_id} in session {params.session_id}"
                f" of agent {params.agent} (not a conversation turn, forgotten, or not read yet)"
            )
        focus = next(i for i, t in enumerate(turns) if t.entry_id == params.entry_id)
        return {
            "agent": params.agent,
            "session_id": params.session_id,
            "session_key": turns[focus].session_key,
            "turns": [
                {
                    "entry_id": t.entry_id,
                    "ts": datetime.fromtimestamp(t.ts, UTC).isoformat(),
                    "role": t.role,
                    "speaker": t.speaker,
                    "text": t.text,
                }
                for t in turns
            ],
            "focus_index": focus,
        }

    async def _note_lines(self, params: GetParams, path: str) -> dict[str, Any]:
        """Lines of a note, only in a workspace of an agent OpenClaw knows: never any path."""
        source = self.daemon.job_context.openclaw
        if source is None:
            raise NotConfigured("memory.get: no OpenClaw home is configured")
        if not Path(path).is_absolute():
            raise BadRequest(
                f"memory.get: path must be absolute, as search results give it: {path}"
            )
        start = params.line_start or 1
        end = params.line_end or start
        agent, lines = await asyncio.to_thread(_read_note, source, Path(path))
        if start > len(lines):
            raise NotFound(f"memory.get: {path} has {len(lines)} lines, none from {start}")
        first = max(1, start - params.before)
        last = min(len(lines), end + params.after)
        return {
            "agent": agent,
            "path": path,
            "line_start": start,
            "line_end": min(end, len(lines)),
            "lines": [{"number": n, "text": lines[n - 1]} for n in range(first, last + 1)],
        }

    async def _start_rebuild(self, agent: str | None) -> Any:
        """An ingest under way (the one at start-up, one the watcher started) is let finish,
        then the rebuild starts: asking for a reindex is never refused for being early."""
        runner = self.daemon.runner
        for _ in range(REBUILD_ATTEMPTS):
            going = runner.running().get("ingest")
            if going is not None:
                await asyncio.shield(going.task)
            try:
                return await runner.start(
                    "ingest", RunTrigger.MANUAL, params={"rebuild": True, "agent": agent}
                )
            except Busy:
                continue  # another ingest slipped in between: wait for that one too
        raise Busy("ingest keeps being started; try `infractl memory reindex` again")

    async def _known(self, agents: list[str]) -> None:
        """An agent OpenClaw does not know, nor the memory store, is a typo: say so."""
        if not agents:
            return
        known = {a.id for a in await openclaw_agents(self.daemon)}
        missing = [a for a in agents if a not in known]
        if missing and self.daemon.memory is not None:
            stored = await asyncio.to_thread(lambda: self.store.index.stats()["by_agent"])
            missing = [a for a in missing if a not in stored]
        if missing:
            raise no_such_agents(missing, sorted(known))


def _stretch(store: MemoryStore, params: GetParams) -> list[TurnRow] | None:
    """The entry's turn and up to ``before``/``after`` turns around it, or None if unknown."""
    agent, session_id, entry_id = params.agent or "", params.session_id or "", params.entry_id or ""
    positions = store.index.turn_positions([(agent, session_id, [entry_id])])
    at = positions.get((agent, session_id, entry_id))
    if at is None:
        return None
    return store.index.session_turns(
        agent, session_id, max(0, at - params.before), at + params.after
    )


def _read_note(source: OpenClawSource, path: Path) -> tuple[str, list[str]]:
    home = discover(source)
    target = path.resolve()  # symlinks too: a link out of a workspace stays out
    agent = next((a.id for a in home.agents if target.is_relative_to(a.workspace.resolve())), None)
    if agent is None:
        raise Forbidden(f"memory.get: {path} is not in the workspace of an agent OpenClaw knows")
    if target.suffix.lower() != ".md":
        raise Forbidden(f"memory.get: {path} is not a note (.md)")
    try:
        with target.open("rb") as handle:
            data = handle.read(MAX_NOTE_BYTES)
    except FileNotFoundError:
        raise NotFound(f"memory.get: no note {path} (moved or deleted since)") from None
    except OSError as exc:
        raise NotFound(f"memory.get: cannot read {path}: {exc.strerror}") from None
    return agent, data.decode("utf-8", errors="replace").splitlines()


def _ids_of(store: MemoryStore, params: ForgetParams) -> list[str]:
    return store.index.ids_where(agent=params.agent, session_id=params.session, path=params.path)


def _timestamp(text: str | None, name: str, zone: tzinfo, now: datetime) -> float | None:
    return None if text is None else parse_moment(text, name, zone, now).timestamp()
