"""The runs view: per job a timeline of its latest runs, failures in a row, the last error, and
a chart of run durations over time (uPlot, drawn by ``static/dashboard.js``).

``jobs`` gives the table, ``runs`` (once per job, side by side) the history: a busy job such as
ingest must not crowd a weekly one out of a shared list.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from daemon.dashboard.pages import Pages

#: Runs drawn per job.
PER_JOB = 60
FAILED = ("failed", "timeout")


class RunsView:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def runs(self, request: Request) -> Response:
        jobs = await self.pages.ask("jobs")
        names = [j["name"] for j in jobs.data["jobs"]] if jobs.ok else []
        histories = await asyncio.gather(
            *(self.pages.ask("runs", {"job": name, "limit": PER_JOB}) for name in names)
        )
        rows = [
            _job_row(job, history.data["runs"] if history.ok else [])
            for job, history in zip(jobs.data["jobs"] if jobs.ok else [], histories, strict=True)
        ]
        return self.pages.render(
            request, "runs.html", status_code=jobs.status, jobs=jobs, rows=rows
        )


def _job_row(job: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A job, its runs oldest first, its last failure and its chart's series."""
    oldest_first = list(reversed(runs))
    last_failure = next((r for r in runs if r["status"] in FAILED), None)
    points = [
        (_unix(r["started_at"]), round(r["duration_ms"] / 1000, 3))
        for r in oldest_first
        if r["started_at"] and r["duration_ms"] is not None
    ]
    return {
        "job": job,
        "runs": oldest_first,
        "last_failure": last_failure,
        "chart": {
            "job": job["name"],
            "x": [x for x, _ in points],
            "y": [y for _, y in points],
        },
    }


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
