"""How a job tells the person something without knowing how it gets there.

A job hands a recommendation or an alert to ``ctx.outbox``; the daemon decides the channel
(today the Telegram bot). Recommendations are stored first
(``stores.coordination.feedback``), so one made while the bot is down or absent is kept,
listed by ``infractl feedback list`` and delivered later; alerts are best effort and
rate-limited by whoever receives them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import structlog

from stores.coordination.feedback import FeedbackStore, Recommendation

log = structlog.get_logger(__name__)

#: Receives ``(key, text)``; the key identifies the condition, so repeats can be folded.
AlertSink = Callable[[str, str], Awaitable[None]]


class Outbox(Protocol):
    async def recommend(
        self, title: str, body: str, *, source_job: str, id: str | None = None
    ) -> Recommendation: ...

    async def alert(self, key: str, text: str) -> None: ...


class StoreOutbox:
    """Recommendations into the feedback store, then ``wake`` (the bot delivers them);
    alerts to ``alert_sink``, or only to the log when there is none."""

    def __init__(
        self,
        feedback: FeedbackStore,
        clock: Callable[[], datetime],
        *,
        wake: Callable[[], None] | None = None,
        alert_sink: AlertSink | None = None,
    ) -> None:
        self.feedback = feedback
        self._clock = clock
        self._wake = wake
        self._alert_sink = alert_sink

    def __repr__(self) -> str:
        return f"StoreOutbox({self.feedback!r}, delivering={self._wake is not None})"

    async def recommend(
        self, title: str, body: str, *, source_job: str, id: str | None = None
    ) -> Recommendation:
        now = self._clock()
        rec = await asyncio.to_thread(
            self.feedback.add_recommendation, title, body, source_job, now, id=id
        )
        log.info("recommendation.queued", id=rec.id, source_job=source_job, state=rec.state.value)
        if self._wake is not None:
            self._wake()
        return rec

    async def alert(self, key: str, text: str) -> None:
        if self._alert_sink is None:
            log.warning("alert.undelivered", key=key, reason="no channel configured")
            return
        await self._alert_sink(key, text)
