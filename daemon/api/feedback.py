"""The feedback methods of the socket API: what was recommended, and what the person said.

``feedback.answer`` is how the bot records a button tap (after checking the button's
signature), so a choice is recorded by one code path whichever face it came through.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from daemon.api.host import Daemon
from stores.coordination.feedback import Choice, FeedbackStore, RecommendationState

RECOMMENDATION_ID = r"^[a-z0-9][a-z0-9_-]{0,23}$"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListParams(_Params):
    state: RecommendationState | None = None
    limit: int = Field(50, ge=1, le=1000)


class AnswerParams(_Params):
    id: str = Field(pattern=RECOMMENDATION_ID)
    round: int = Field(ge=1, le=1_000_000)
    choice: Choice
    #: Telegram's user ids fit in 52 bits.
    user_id: int | None = Field(None, ge=1, le=2**53)


class FeedbackMethods:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, tuple[type[BaseModel], Any]]:
        return {
            "feedback.list": (ListParams, self.list),
            "feedback.stats": (_Params, self.stats),
            "feedback.answer": (AnswerParams, self.answer),
        }

    @property
    def store(self) -> FeedbackStore:
        return self.daemon.feedback

    async def list(self, params: ListParams) -> dict[str, Any]:
        recs = await asyncio.to_thread(self.store.list, params.state, params.limit)
        return {"results": [rec.to_dict() for rec in recs]}

    async def stats(self, _: _Params) -> dict[str, Any]:
        stats = await asyncio.to_thread(self.store.stats)
        return stats.to_dict()

    async def answer(self, params: AnswerParams) -> dict[str, Any]:
        result = await asyncio.to_thread(
            self.store.record_choice,
            params.id,
            params.round,
            params.choice,
            params.user_id,
            self.daemon.clock(),
        )
        rec = result.recommendation
        return {
            "outcome": result.outcome.value,
            "recommendation": rec.to_dict() if rec is not None else None,
            "entry": result.entry.to_dict() if result.entry is not None else None,
        }
