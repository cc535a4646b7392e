"""The memory methods of the socket API: search, add, forget, stats, reindex."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.api.host import Daemon
from daemon.errors import BadRequest, NotConfigured, Unavailable
from daemon.schedule import parse_duration
from stores.memory.diskfull import DiskFull
from stores.memory.records import Chunk, ChunkFilter, SearchQuery, Write
from stores.memory.results import approx_tokens
from stores.memory.store import MemoryStore
from stores.runlog import RunTrigger

AGENT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
KINDS = ("turns", "summary", "note", "manual", "hourly", "sync", "weekly")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchParams(_Params):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(10, ge=1, le=100)
    agent: list[str] = Field(default_factory=list)
    session: str | None = Field(None, max_length=200)
    speaker: str | None = Field(None, max_length=200)
    role: Literal["user", "assistant", "summary"] | None = None
    kind: list[Literal["turns", "summary", "note", "manual", "hourly", "sync", "weekly"]] = Field(
        default_factory=list
    )
    since: str | None = Field(None, description="YYYY-MM-DD, an ISO time, or an age like 7d")
    until: str | None = None
    recent: str | None = Field(None, description="recency half-life, e.g. 30d")
    budget: int | None = Field(None, ge=50, le=100_000)

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
    tags: list[str] = Field(default_factory=list, max_length=20)


class ForgetParams(_Params):
    id: str | None = Field(None, min_length=1, max_length=200)
    agent: str | None = Field(None, pattern=AGENT_ID)
    session: str | None = Field(None, min_length=1, max_length=200)
    path: str | None = Field(None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_target(self) -> ForgetParams:
        if self.id is None and self.path is None and self.session is None and self.agent is None:
            raise ValueError("say what to forget: id, path, session or agent")
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
        query = SearchQuery(
            text=params.query,
            k=params.k,
            where=ChunkFilter(
                agents=tuple(params.agent),
                session_id=params.session,
                kinds=tuple(params.kind),
                since=_moment(params.since, "since", zone, now),
                until=_moment(params.until, "until", zone, now),
                speaker=params.speaker,
                role=params.role,
            ),
            token_budget=params.budget or self.daemon.settings.memory.token_budget,
            recency_half_life=_duration(params.recent, "recent"),
            now=now.timestamp(),
        )
        response = await asyncio.to_thread(self.store.search, query)
        return response.model_dump(mode="json")

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
        else:
            ids = await asyncio.to_thread(_ids_of, store, params)
        removed = await asyncio.to_thread(store.forget, ids)
        return {"removed": removed}

    async def stats(self, _: _Params) -> dict[str, Any]:
        stats = await asyncio.to_thread(self.store.stats)
        return stats.model_dump(mode="json")

    async def reindex(self, params: ReindexParams) -> dict[str, Any]:
        if self.daemon.memory is None:
            # Perhaps refused for another embedder: reindexing is the consent to start over.
            await self.daemon.reopen_memory(new_embedder=True)
        self.store  # noqa: B018 - refuses at once when there is still no store to rebuild
        entry = await self.daemon.runner.start(
            "ingest", RunTrigger.MANUAL, params={"rebuild": True, "agent": params.agent}
        )
        return {"run_id": entry.run_id, "job": "ingest"}


def _ids_of(store: MemoryStore, params: ForgetParams) -> list[str]:
    return store.index.ids_where(agent=params.agent, session_id=params.session, path=params.path)


def _moment(text: str | None, name: str, zone: tzinfo, now: datetime) -> float | None:
    """YYYY-MM-DD (midnight in the daemon's zone), an ISO date-time, or an age ('7d')."""
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time(), zone).timestamp()
        if re.match(r"\d{4}-\d{2}-\d{2}[T ]", text):
            moment = datetime.fromisoformat(text)
            return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()
        return (now - parse_duration(text)).astimezone(UTC).timestamp()
    except ValueError:
        raise BadRequest(
            f"{name}: not a date, time or age: {text!r} (use 2026-11-01, 2026-11-01T09:00 or 7d)"
        ) from None


def _duration(text: str | None, name: str) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None
