"""``infrad`` with two extra jobs for end-to-end bot tests. Run as ``python -m tests.bot_daemon``.

- ``recommend`` sends a recommendation through ``ctx.outbox``, as the weekly synthesis will;
  the title and body come from ``$RECOMMEND_TITLE`` and ``$RECOMMEND_BODY``.
- ``flaky`` fails every time, to raise an alert.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from daemon.config.sections import JobSettings
from daemon.config.settings import Settings
from daemon.main import main
from daemon.supervisor import default_job_settings
from jobs.base import JobContext, JobResult, JobSpec
from jobs.registry import JOBS


async def recommend(ctx: JobContext) -> JobResult:
    assert ctx.outbox is not None
    rec = await ctx.outbox.recommend(
        os.environ.get("RECOMMEND_TITLE", "Take a walk"),
        os.environ.get("RECOMMEND_BODY", "Ten minutes after lunch."),
        source_job="recommend",
    )
    return JobResult(summary=f"recommended {rec.id}", stats={"id": rec.id})


async def flaky(ctx: JobContext) -> JobResult:
    raise RuntimeError("flaky failed on purpose")


def job_settings(settings: Settings) -> Mapping[str, JobSettings]:
    hourly = JobSettings.model_validate({"schedule": "every 1h", "timeout": "1m"})
    return {**default_job_settings(settings), "recommend": hourly, "flaky": hourly}


if __name__ == "__main__":
    specs = {
        **JOBS,
        "recommend": JobSpec("recommend", recommend, "sends a recommendation"),
        "flaky": JobSpec("flaky", flaky, "always fails"),
    }
    sys.exit(main(sys.argv[1:], job_table=(specs, job_settings)))
