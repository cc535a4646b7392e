"""The memory store's records as callers see them: on the socket, in ``infractl --json``."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from stores.memory.records import Chunk


class ConversationMetadata(BaseModel):
    """Where a piece of memory came from, precisely enough to open the exact place."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="turns, summary, note or manual")
    agent_id: str | None = None
    session_key: str | None = None
    session_id: str | None = None
    entry_ids: list[str] = Field(default_factory=list, description="transcript entries covered")
    path: str | None = Field(None, description="note file or transcript file")
    line_start: int | None = None
    line_end: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    roles: list[str] = Field(default_factory=list)
    speakers: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, chunk: Chunk) -> ConversationMetadata:
        return cls(
            kind=chunk.kind,
            agent_id=chunk.agent,
            session_key=chunk.session_key,
            session_id=chunk.session_id,
            entry_ids=list(chunk.entry_ids),
            path=chunk.path,
            line_start=chunk.line_start,
            line_end=chunk.line_end,
            started_at=_time(chunk.ts_start),
            ended_at=_time(chunk.ts_end),
            roles=list(chunk.roles),
            speakers=list(chunk.speakers),
            tags=list(chunk.tags),
        )


class VectorSearchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str = Field(description="the snippet returned (may be cut to fit the token budget)")
    score: float = Field(description="fused rank score; higher is better")
    vector_rank: int | None = None
    keyword_rank: int | None = None
    tokens: int
    truncated: bool = False
    source: ConversationMetadata


class SearchResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    query: str
    results: list[VectorSearchResult]
    tokens: int
    took_ms: float
    degraded: str | None = Field(None, description="why only the keyword half answered, if so")


class VectorMemoryStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunks: int
    vectors: int
    turns: int
    sources: int
    to_embed: int = Field(0, description="chunks searchable by keyword, waiting for a vector")
    by_kind: dict[str, int]
    by_agent: dict[str, dict[str, float | int | None]]
    embedder: str
    store: str


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None
