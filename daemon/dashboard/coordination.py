"""The signals view: open cross-agent signals (``signal.list``), the ranked priorities
(``priorities``), and the weekly synthesis: its runs, and the recommendations it made with the
answer the person gave to each (``feedback.list``, ``feedback.stats``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from daemon.dashboard.pages import Pages

SYNTHESES = 6
RECOMMENDATIONS = 50


class CoordinationView:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def signals(self, request: Request) -> Response:
        signals = await self.pages.ask("signal.list", {"limit": 100})
        priorities = await self.pages.ask("priorities")
        syntheses = await self.pages.ask("runs", {"job": "synthesize", "limit": SYNTHESES})
        recommendations = await self.pages.ask("feedback.list", {"limit": RECOMMENDATIONS})
        feedback = await self.pages.ask("feedback.stats")
        return self.pages.render(
            request,
            "signals.html",
            status_code=signals.status,
            signals=signals,
            priorities=priorities,
            syntheses=syntheses,
            recommendations=recommendations,
            feedback=feedback,
        )
