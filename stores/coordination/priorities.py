"""What is open, per agent and overall: requests other agents sent, and recommendations the
person marked useful.

An item is open while its signal is open (not resolved, not expired), or for ``USEFUL_FOR``
after the person marked the recommendation useful. Ranking: priority first (urgent, high,
normal, low), then age, oldest first: among equals, what has waited longest comes first. A
recommendation counts as ``normal``; it concerns the agents the synthesis made it for, or
everyone when that is not known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from stores.coordination.feedback import Choice, FeedbackStore, Recommendation, RecommendationState
from stores.coordination.mistakes import MistakeStore
from stores.coordination.signals import (
    ALL,
    CrossAgentSignal,
    SignalKind,
    SignalPriority,
    SignalStore,
)

USEFUL_FOR = timedelta(days=30)


@dataclass(frozen=True)
class Priority:
    #: ``signal:<id>`` or ``recommendation:<id>``.
    id: str
    title: str
    priority: SignalPriority
    source: Literal["signal", "recommendation"]
    since: datetime
    #: Agent ids or ``("all",)``; empty: everyone.
    targets: tuple[str, ...] = ()
    #: Who asked: the sending agent, or the job that recommended it.
    origin: str = ""

    def concerns(self, agent: str) -> bool:
        if not self.targets or agent in self.targets:
            return True
        return ALL in self.targets and agent != self.origin

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "priority": self.priority.value,
            "source": self.source,
            "origin": self.origin,
            "since": self.since.astimezone(UTC).isoformat(),
            "age_s": round(max(0.0, (now - self.since).total_seconds())),
            "targets": list(self.targets),
        }


@dataclass(frozen=True)
class PriorityList:
    #: None: everyone's.
    agent: str | None
    generated_at: datetime
    items: tuple[Priority, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "generated_at": self.generated_at.astimezone(UTC).isoformat(),
            "items": [item.to_dict(self.generated_at) for item in self.items],
        }


def ranked(items: Iterable[Priority], agent: str | None, now: datetime) -> PriorityList:
    mine = [i for i in items if agent is None or i.concerns(agent)]
    mine.sort(key=lambda i: (-i.priority.rank, i.since, i.id))
    return PriorityList(agent, now, tuple(mine))


def from_signals(signals: Iterable[CrossAgentSignal], now: datetime) -> list[Priority]:
    """Open requests."""
    return [
        Priority(
            id=f"signal:{s.id}",
            title=s.text,
            priority=s.priority,
            source="signal",
            since=s.created_at,
            targets=s.targets,
            origin=s.source,
        )
        for s in signals
        if s.kind is SignalKind.REQUEST and s.is_open(now)
    ]


def from_recommendations(
    recommendations: Iterable[Recommendation],
    agents_of: Mapping[str, tuple[str, ...]],
    now: datetime,
    useful_for: timedelta = USEFUL_FOR,
) -> list[Priority]:
    """Recommendations marked useful within ``useful_for``."""
    return [
        Priority(
            id=f"recommendation:{r.id}",
            title=r.title,
            priority=SignalPriority.NORMAL,
            source="recommendation",
            since=r.answered_at or r.created_at,
            targets=agents_of.get(r.id, ()),
            origin=r.source_job,
        )
        for r in recommendations
        if r.choice is Choice.USEFUL and (r.answered_at or r.created_at) >= now - useful_for
    ]


def load_priorities(
    signals: SignalStore,
    now: datetime,
    *,
    agent: str | None = None,
    feedback: FeedbackStore | None = None,
    mistakes: MistakeStore | None = None,
) -> PriorityList:
    """Blocking: reads the stores."""
    items = from_signals(signals.signals(now), now)
    if feedback is not None:
        answered = feedback.list(RecommendationState.ANSWERED, limit=1000)
        agents_of = mistakes.recommendation_agents() if mistakes is not None else {}
        items += from_recommendations(answered, agents_of, now)
    return ranked(items, agent, now)
