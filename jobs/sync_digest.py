"""What one agent's daily sync holds (``DailySyncData``), where it is gathered from, and the
Markdown it becomes.

Yesterday's summary of another agent comes from that agent's hourly note: the day summary if
the day was rolled up, else its hourly sections; if the note is gone, from the ``hourly``
records the memory store kept for that day. Everything here is plain text assembled from what
the daemon itself wrote; nothing is sent to a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from stores.coordination.feedback import Choice, FeedbackStore
from stores.coordination.priorities import PriorityList
from stores.coordination.signals import CrossAgentSignal
from stores.coordination.summary_notes import note_path, read_day_summary, read_hours
from stores.memory.store import MemoryStore
from stores.openclaw.home import Agent

#: Characters of one agent's day kept in another agent's sync note.
MAX_SUMMARY_CHARS = 3000


@dataclass(frozen=True)
class AgentSummary:
    agent: str
    name: str | None
    text: str
    #: ``day summary``, ``hourly notes`` or ``memory``.
    source: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.agent})" if self.name else self.agent


@dataclass(frozen=True)
class FeedbackNote:
    #: The recommendation's id.
    id: str
    title: str
    choice: Choice
    at: datetime
    source_job: str


@dataclass(frozen=True)
class DailySyncData:
    agent: str
    name: str | None
    day: date
    summaries: tuple[AgentSummary, ...]
    signals: tuple[CrossAgentSignal, ...]
    priorities: PriorityList
    feedback: tuple[FeedbackNote, ...]
    #: The other agents; none means this agent works alone.
    others: tuple[str, ...] = ()

    @property
    def yesterday(self) -> date:
        return self.day - timedelta(days=1)

    def counts(self) -> dict[str, Any]:
        return {
            "summaries": len(self.summaries),
            "signals": len(self.signals),
            "priorities": len(self.priorities.items),
            "feedback": len(self.feedback),
        }


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def yesterday_of(agent: Agent, day: date, tz: tzinfo, memory: MemoryStore) -> AgentSummary | None:
    """Blocking: ``agent``'s summary of ``day`` (see the module docstring), or None."""
    path = note_path(agent.workspace, day)
    whole = read_day_summary(path)
    if whole:
        return AgentSummary(agent.id, agent.name, _clip(whole), "day summary")
    hours = read_hours(path)
    if hours:
        text = "\n\n".join(f"{h.heading.replace('## ', '##### ', 1)}\n{h.body}" for h in hours)
        return AgentSummary(agent.id, agent.name, _clip(text), "hourly notes")
    start, end = (t.timestamp() for t in day_bounds(day, tz))
    ids = memory.index.ids_where(kind="hourly", agent=agent.id)
    chunks = [
        c
        for c in memory.index.chunks(ids).values()
        if c.ts_start is not None and start <= c.ts_start < end
    ]
    if not chunks:
        return None
    chunks.sort(key=lambda c: c.ts_start or 0.0)
    return AgentSummary(agent.id, agent.name, _clip("\n\n".join(c.text for c in chunks)), "memory")


def feedback_notes(feedback: FeedbackStore, since: datetime, until: datetime) -> list[FeedbackNote]:
    """Blocking: every answer given in [since, until), with the recommendation's title."""
    notes = []
    for entry in feedback.feedback_since(since, until):
        rec = feedback.get(entry.recommendation_id)
        if rec is not None:
            notes.append(FeedbackNote(rec.id, rec.title, entry.choice, entry.at, rec.source_job))
    return notes


# --- the note -------------------------------------------------------------------------------


def render(data: DailySyncData, tz: tzinfo) -> str:
    who = f"{data.name} ({data.agent})" if data.name else data.agent
    parts = [f"## {who}, {data.day.isoformat()}"]
    if data.others:
        parts.append(_summaries(data))
    parts += [_signals(data, tz), _priorities(data, tz), _feedback(data)]
    return "\n\n".join(parts) + "\n"


def _summaries(data: DailySyncData) -> str:
    lines = [f"### Yesterday in the other agents ({data.yesterday.isoformat()})"]
    quiet = [a for a in data.others if a not in {s.agent for s in data.summaries}]
    for summary in data.summaries:
        lines += ["", f"#### {summary.label}, from its {summary.source}", "", summary.text]
    if quiet:
        lines += ["", f"No summary from: {', '.join(quiet)}."]
    return "\n".join(lines)


def _signals(data: DailySyncData, tz: tzinfo) -> str:
    lines = ["### Signals for you", ""]
    for s in data.signals:
        expires = f"expires {s.expires_at.astimezone(tz):%Y-%m-%d %H:%M}" if s.expires_at else ""
        meta = " · ".join(x for x in (f"id {s.id}", expires) if x)
        head = f"- **{s.kind.value}** ({s.priority.value}) from {s.source}"
        lines.append(f"{head}: {s.text} _{meta}_")
    if not data.signals:
        lines.append("- none")
    return "\n".join(lines)


def _priorities(data: DailySyncData, tz: tzinfo) -> str:
    """Dates, not ages: the note of a day reads the same whenever that day it is written."""
    lines = ["### Priorities", ""]
    for n, item in enumerate(data.priorities.items, 1):
        since = item.since.astimezone(tz).date().isoformat()
        if item.source == "signal":
            why = f"request from {item.origin}, open since {since}"
        else:
            why = f"recommendation ({item.origin}) marked useful on {since}"
        lines.append(f"{n}. [{item.priority.value}] {item.title} — {why}")
    if not data.priorities.items:
        lines.append("- nothing open")
    return "\n".join(lines)


def _feedback(data: DailySyncData) -> str:
    lines = [f"### Feedback on recommendations (since {data.yesterday.isoformat()})", ""]
    for note in data.feedback:
        lines.append(f"- {note.choice.value.replace('_', ' ')}: {note.title} ({note.source_job})")
    if not data.feedback:
        lines.append("- none")
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_SUMMARY_CHARS else text[: MAX_SUMMARY_CHARS - 1] + "…"


def note_relative(path: Path, workspace: Path) -> str:
    return path.relative_to(workspace).as_posix() if path.is_relative_to(workspace) else str(path)
