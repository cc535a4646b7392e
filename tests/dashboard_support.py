"""A real daemon over the sample home, its start-up ingest done, for the dashboard's tests and
``memory.get``'s: one per test module, since starting one (the embedder, the first ingest) is
the slow part."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stores.coordination.feedback import FeedbackStore
from tests.memory_fixtures import write_sample
from tests.support import DaemonProcess, running_daemon, wait_for


@contextlib.contextmanager
def sample_daemon(env: Mapping[str, str] | None = None) -> Iterator[DaemonProcess]:
    root = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    write_sample(root / "openclaw")
    try:
        with running_daemon(root, env) as daemon:
            wait_for(lambda: _succeeded(daemon, "ingest"), timeout=90, what="the first ingest")
            daemon.call("pause", {"job": "ingest"})  # only the runs a test asks for
            yield daemon
            assert daemon.stop() == 0, daemon.log()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _succeeded(daemon: DaemonProcess, job: str) -> bool:
    runs: list[dict[str, Any]] = daemon.call("runs", {"job": job})["runs"]
    return any(r["status"] == "success" for r in runs)


def run_to_end(daemon: DaemonProcess, job: str) -> dict[str, Any]:
    """Trigger a job and wait for its run, whatever its outcome."""
    started = daemon.call("trigger", {"job": job})

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = daemon.call("run", {"run_id": started["run_id"]})
        return run if run["status"] != "running" else None

    done: dict[str, Any] = wait_for(finished, timeout=60, what=f"{job} run to finish")
    return done


def answered_recommendation(
    daemon: DaemonProcess, rec_id: str, title: str, body: str, choice: str
) -> None:
    """A recommendation of the weekly synthesis, delivered as the bot delivers one (a round
    opened in the feedback store) and answered through the socket, as the bot records a tap."""
    store = FeedbackStore(daemon.root / "state" / "feedback.sqlite")
    try:
        now = datetime.now(UTC)
        store.add_recommendation(title, body, "synthesize", now, id=rec_id)
        delivered = store.start_delivery(rec_id, now)
    finally:
        store.close()
    answer = daemon.call(
        "feedback.answer", {"id": rec_id, "round": delivered.round, "choice": choice}
    )
    assert answer["outcome"] == "recorded", answer
