"""The health view: the checks as they stand now (``health``, run afresh) and the history the
scheduled health runs left (``health.history``), as a strip of statuses and the times that were
not ok."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from daemon.dashboard.pages import Pages

#: A day of reports at the default five-minute schedule.
HISTORY = 288


class HealthView:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def health(self, request: Request) -> Response:
        now = await self.pages.ask("health")
        history = await self.pages.ask("health.history", {"limit": HISTORY})
        reports = list(reversed(history.data["reports"])) if history.ok else []
        troubled = [r for r in history.data["reports"] if r["status"] != "ok"] if history.ok else []
        return self.pages.render(
            request,
            "health.html",
            status_code=now.status,
            now=now,
            history=history,
            reports=reports,
            troubled=troubled[:50],
        )
