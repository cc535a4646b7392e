"""What the tools return: a model for the structured content and a compact text for the model
that reads it. Both are built from the daemon's replies, as the socket methods give them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stores.counts import count

#: A snippet is cut here in the text (the structured content keeps it whole).
_TEXT_LIMIT = 1200


class Source(BaseModel):
    kind: str = Field(description="turns, summary, note, manual, hourly, sync or weekly")
    agent: str | None = None
    session_key: str | None = None
    session_id: str | None = None
    entry_ids: list[str] = Field(default_factory=list, description="transcript entries covered")
    path: str | None = Field(None, description="the note's file")
    line_start: int | None = None
    line_end: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    speakers: list[str] = Field(default_factory=list)


class Hit(BaseModel):
    id: str
    text: str
    score: float
    source: Source


class SearchResult(BaseModel):
    query: str
    results: list[Hit]


class Turn(BaseModel):
    entry_id: str
    ts: str
    role: str
    speaker: str | None = None
    text: str


class NoteLine(BaseModel):
    number: int
    text: str


class Stretch(BaseModel):
    agent: str | None = None
    session_id: str | None = None
    session_key: str | None = None
    path: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    lines: list[NoteLine] = Field(default_factory=list, description="a note's lines (a path)")
    line_start: int | None = None
    line_end: int | None = None
    focus_index: int | None = Field(None, description="the turn asked for, in turns")


class Reply(BaseModel):
    """The daemon's answer as it gave it (signals, priorities, an added memory or mistake)."""

    result: dict[str, Any]


def search_result(reply: dict[str, Any]) -> tuple[str, SearchResult]:
    hits = [_hit(r) for r in reply.get("results", [])]
    result = SearchResult(query=reply.get("query", ""), results=hits)
    if not hits:
        return f"no memory found for {result.query!r}", result
    lines = [f"{count(len(hits), 'memory')} for {result.query!r}:"]
    for n, hit in enumerate(hits, 1):
        lines.append(f"{n}. [{_where(hit.source)}] {_clip(hit.text)}")
    return "\n".join(lines), result


def stretch(reply: dict[str, Any]) -> tuple[str, Stretch]:
    found = Stretch.model_validate(reply)
    if found.path is not None:
        start, end = found.line_start or 0, found.line_end or 0
        body = "\n".join(
            f"{'>' if start <= line.number <= end else ' '}{line.number:>5}  {line.text}"
            for line in found.lines
        )
        return f"{found.path}:\n{body}", found
    lines = [f"session {found.session_key or found.session_id} of {found.agent}:"]
    for i, turn in enumerate(found.turns):
        mark = ">" if i == found.focus_index else " "
        lines.append(f"{mark} [{turn.ts[:16]}] {turn.speaker or turn.role}: {turn.text}")
    return "\n".join(lines), found


def _hit(raw: dict[str, Any]) -> Hit:
    source = raw.get("source") or {}
    return Hit(
        id=raw["id"],
        text=raw["text"],
        score=raw.get("score", 0.0),
        source=Source(
            kind=source.get("kind", ""),
            agent=source.get("agent_id"),
            session_key=source.get("session_key"),
            session_id=source.get("session_id"),
            entry_ids=source.get("entry_ids") or [],
            path=source.get("path"),
            line_start=source.get("line_start"),
            line_end=source.get("line_end"),
            started_at=source.get("started_at"),
            ended_at=source.get("ended_at"),
            speakers=source.get("speakers") or [],
        ),
    )


def _where(source: Source) -> str:
    when = (source.started_at or "")[:10]
    if source.path:
        lines = f":{source.line_start}-{source.line_end}" if source.line_start else ""
        return f"{source.agent or '-'} {when} {source.path}{lines}".replace("  ", " ")
    entries = source.entry_ids
    span = f"{entries[0]}..{entries[-1]}" if len(entries) > 1 else "".join(entries)
    session = source.session_key or source.session_id or source.kind
    return f"{source.agent or '-'} {when} {session} entries {span} (session_id {source.session_id})"


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _TEXT_LIMIT else flat[: _TEXT_LIMIT - 1] + "…"
