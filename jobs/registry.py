"""Every job the daemon knows, by name. Settings hold their schedules (``JobsSettings``)."""

from __future__ import annotations

from jobs import backup, health, ingest, retention, summarize, sync, synthesize
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
            idle=ingest.idle,
        ),
        JobSpec(
            "summarize",
            summarize.run,
            "the last hour of each agent into its hourly note and the memory",
        ),
        JobSpec(
            "sync",
            sync.run,
            "each agent's daily sync: others' summaries, signals, priorities, feedback",
        ),
        JobSpec(
            "synthesize",
            synthesize.run,
            "the week's mistakes as patterns, lessons and recommendations",
        ),
        JobSpec("backup", backup.run, "a verified archive of the state and the workspaces"),
        JobSpec("restore_drill", backup.drill, "restore the newest backup aside and check it"),
        JobSpec(
            "retention",
            retention.run,
            "delete old runs, LLM results and closed signals; give the space back to the disk",
        ),
    )
}
