"""What the memory store indexes, made from what OpenClaw wrote.

Conversation turns are indexed as windows of consecutive turns of one session (``window`` turns,
a new window every ``stride`` turns), written with the date and the speakers' names: questions
name people and times, and a window carries the context a single chat line lacks. A window's id
is stable (agent, session, first turn), so a window that grows as the session goes on is
rewritten in place. Compaction summaries and note sections are chunks of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from stores.memory.records import Chunk, TurnRow
from stores.openclaw.notes import Note
from stores.openclaw.turns import Turn

TURNS = "turns"
SUMMARY = "summary"
NOTE = "note"


def chunk_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def turn_row(turn: Turn, idx: int) -> TurnRow:
    return TurnRow(
        agent=turn.agent_id,
        session_id=turn.session_id,
        idx=idx,
        entry_id=turn.entry_id,
        session_key=turn.session_key,
        ts=turn.timestamp.timestamp(),
        role=turn.role.value,
        speaker=turn.speaker,
        text=turn.text,
        source=str(turn.source),
    )


def affected_windows(first_new: int, end: int, window: int, stride: int) -> range:
    """Start indices of the windows that contain any turn in [first_new, end)."""
    lowest = max(0, first_new - window + 1)
    first = -(-lowest // stride) * stride  # round up to a window start
    return range(first, end, stride)


def window_chunks(turns: Sequence[TurnRow], starts: range, window: int, source: str) -> list[Chunk]:
    """Chunks for the windows starting at ``starts``; ``turns`` holds the session's turns by idx
    from ``starts.start`` on. A window past the last turn but the first is not made; a turn
    whose words were forgotten (empty text) is left out."""
    by_idx = {t.idx: t for t in turns if t.text}
    chunks = []
    for start in starts:
        members = [by_idx[i] for i in range(start, start + window) if i in by_idx]
        if not members:
            continue
        chunks.append(_window(start, members, source))
    return chunks


def _window(start: int, members: list[TurnRow], source: str) -> Chunk:
    first, last = members[0], members[-1]
    lines = [f"{t.speaker or t.role}: {t.text}" for t in members]
    when = datetime.fromtimestamp(first.ts, UTC)
    header = when.strftime("%A %d %B %Y, %H:%M")
    text = f"[{when:%Y-%m-%d %H:%M}] " + "\n".join(lines)
    return Chunk(
        id=chunk_id(TURNS, first.agent, first.session_id, str(start)),
        kind=TURNS,
        agent=first.agent,
        source=source,
        text=text,
        search_text=f"{header}\n" + "\n".join(lines),
        session_key=first.session_key,
        session_id=first.session_id,
        entry_ids=tuple(t.entry_id for t in members),
        ts_start=first.ts,
        ts_end=last.ts,
        roles=tuple(dict.fromkeys(t.role for t in members)),
        speakers=tuple(dict.fromkeys(t.speaker for t in members if t.speaker)),
    )


def summary_chunk(turn: Turn, source: str) -> Chunk:
    when = turn.timestamp.astimezone(UTC)
    return Chunk(
        id=chunk_id(SUMMARY, turn.agent_id, turn.session_id, turn.entry_id),
        kind=SUMMARY,
        agent=turn.agent_id,
        source=source,
        text=f"[{when:%Y-%m-%d %H:%M}] (summary) {turn.text}",
        search_text=f"{when:%A %d %B %Y}\n{turn.text}",
        session_key=turn.session_key,
        session_id=turn.session_id,
        entry_ids=(turn.entry_id,),
        ts_start=turn.timestamp.timestamp(),
        ts_end=turn.timestamp.timestamp(),
        roles=("summary",),
    )


def note_chunks(agent: str, note: Note, source: str, mtime: float) -> list[Chunk]:
    chunks = []
    for part in note.chunks:
        heading = " > ".join(part.headings)
        title = f"{note.name}" + (f" — {heading}" if heading else "")
        chunks.append(
            Chunk(
                id=chunk_id(NOTE, agent, note.name, str(part.start_line), part.content_hash),
                kind=NOTE,
                agent=agent,
                source=source,
                text=f"({title}) {part.text}",
                search_text=f"{title}\n{part.text}",
                path=str(Path(part.path)),
                line_start=part.start_line,
                line_end=part.end_line,
                ts_start=mtime,
                ts_end=mtime,
            )
        )
    return chunks
