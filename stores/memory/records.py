"""The memory's records as the store and its callers pass them around: plain frozen values.

Below the index, the store and the search results alike, so that each can name them without
importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of memory and everything needed to find where it came from."""

    id: str
    kind: str
    agent: str | None
    source: str
    text: str
    search_text: str
    session_key: str | None = None
    session_id: str | None = None
    entry_ids: tuple[str, ...] = ()
    path: str | None = None
    line_start: int | None = None
    line_end: int | None = None
    ts_start: float | None = None
    ts_end: float | None = None
    roles: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnRow:
    agent: str
    session_id: str
    idx: int
    entry_id: str
    session_key: str | None
    ts: float
    role: str
    speaker: str | None
    text: str
    source: str


@dataclass(frozen=True)
class ChunkFilter:
    agents: tuple[str, ...] = ()
    session_id: str | None = None
    kinds: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    speaker: str | None = None
    role: str | None = None


@dataclass
class Write:
    """Everything one ingest step stores, applied in one transaction."""

    chunks: list[Chunk] = field(default_factory=list)
    turns: list[TurnRow] = field(default_factory=list)
    delete_ids: list[str] = field(default_factory=list)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    drop_checkpoints: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.chunks
            or self.turns
            or self.delete_ids
            or self.checkpoints
            or self.drop_checkpoints
        )


@dataclass(frozen=True)
class SearchQuery:
    text: str
    k: int = 10
    where: ChunkFilter = field(default_factory=ChunkFilter)
    token_budget: int = 1500
    #: Newer memories count more: a result's score is scaled by 0.5 ** (age / half_life) / 2 + 0.5.
    recency_half_life: timedelta | None = None
    now: float | None = None
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
