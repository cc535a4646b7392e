"""The health history and the dashboard's address: ``health.history``, ``dashboard.url``.

``health`` itself (the checks, run now) is in ``core``; the history is what the scheduled
health runs left in the run log's database.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from daemon.api.host import Daemon
from daemon.api.moments import parse_moment
from daemon.durations import format_duration
from daemon.errors import NotConfigured, Unavailable


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HistoryParams(_Params):
    limit: int = Field(100, ge=1, le=5000)
    since: str | None = Field(
        None, max_length=64, description="YYYY-MM-DD, an ISO time, or an age like 7d"
    )


class HealthMethods:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, tuple[type[BaseModel], Any]]:
        return {
            "health.history": (HistoryParams, self.history),
            "dashboard.url": (_Params, self.dashboard_url),
        }

    async def history(self, params: HistoryParams) -> dict[str, Any]:
        daemon = self.daemon
        since = None
        if params.since is not None:
            since = parse_moment(params.since, "since", daemon.settings.zone, daemon.clock())
        found = await asyncio.to_thread(daemon.run_log.health_history, params.limit, since)
        return {
            "reports": [r.to_dict() for r in found],
            "keep": format_duration(daemon.job_context.health.keep_history),
        }

    async def dashboard_url(self, _: _Params) -> dict[str, Any]:
        dashboard = self.daemon.dashboard
        if dashboard is None:
            raise NotConfigured(
                "the dashboard is off; set OPENCLAW_INFRA_DASHBOARD__PORT (0: any free port)"
                " and restart infrad"
            )
        if dashboard.url is None:
            raise Unavailable(f"the dashboard did not start: {dashboard.error or 'not yet'}")
        return {"url": dashboard.url, "address": dashboard.address}
