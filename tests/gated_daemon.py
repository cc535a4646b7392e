"""``infrad`` with one extra job, ``gated``, for tests of draining and of ``kill -9``.

The job touches ``$GATED_STARTED`` when it begins and then waits until ``$GATED_GATE`` exists,
so a test decides when it ends instead of guessing with sleeps.
Run as ``python -m tests.gated_daemon``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from daemon.config.sections import JobSettings
from daemon.config.settings import Settings
from daemon.main import main
from daemon.supervisor import default_job_settings
from jobs.base import JobContext, JobResult, JobSpec
from jobs.registry import JOBS


async def gated(ctx: JobContext) -> JobResult:
    Path(os.environ["GATED_STARTED"]).touch()  # noqa: ASYNC240 - a tiny write, test only
    gate = Path(os.environ["GATED_GATE"])
    while not gate.exists():  # noqa: ASYNC240 - the file is the signal from another process
        await asyncio.sleep(0.02)
    return JobResult(summary="gate opened")


def job_settings(settings: Settings) -> Mapping[str, JobSettings]:
    extra = JobSettings.model_validate(
        {"schedule": os.environ.get("GATED_SCHEDULE", "every 1h"), "timeout": "10m"}
    )
    return {**default_job_settings(settings), "gated": extra}


if __name__ == "__main__":
    specs = {**JOBS, "gated": JobSpec("gated", gated, "waits for a file")}
    sys.exit(main(sys.argv[1:], job_table=(specs, job_settings)))
