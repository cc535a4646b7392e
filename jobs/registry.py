"""Every job the daemon knows, by name. Settings hold their schedules (``JobsSettings``)."""

from __future__ import annotations

from jobs import health, ingest
from jobs.base import JobSpec

JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "health",
            health.run,
            "component checks: scheduler, databases, disk, job freshness",
            run_at_startup=True,
        ),
        JobSpec(
            "ingest",
            ingest.run,
            "new transcript entries and notes of every agent into the memory store",
            run_at_startup=True,
        ),
    )
}
