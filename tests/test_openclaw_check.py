"""The ``openclaw`` health check: a home that is not there, or has no agents, a configuration
that does not parse, a damaged agent database, sources the last ingest could not read."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.sample.home import write_sample_home
from jobs.checks import HealthStatus
from jobs.openclaw_check import last_finished, openclaw_check
from stores.openclaw.home import OpenClawSource
from stores.runlog import JobRun, RunLog, RunStatus, RunTrigger
from tests.support import DaemonProcess, running_daemon

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)


def check_of(home: Path, ingest: JobRun | None = None) -> tuple[HealthStatus, str]:
    found = openclaw_check(OpenClawSource(home=home), ingest)
    assert found is not None
    return found.status, found.detail


def test_no_source_no_check() -> None:
    assert openclaw_check(None, None) is None


def test_a_home_that_is_not_there_degrades_health_naming_it(tmp_path: Path) -> None:
    status, detail = check_of(tmp_path / ".openclw")
    assert status is HealthStatus.DEGRADED
    assert detail.startswith(f"no OpenClaw home at {tmp_path / '.openclw'}: nothing is read")
    assert "OPENCLAW_STATE_DIR" in detail


def test_a_home_without_agents_degrades_health(tmp_path: Path) -> None:
    tmp_path.joinpath("openclaw").mkdir()
    status, detail = check_of(tmp_path / "openclaw")
    assert status is HealthStatus.DEGRADED
    assert "no agents in" in detail


def test_the_sample_home_is_ok_and_names_its_agents(tmp_path: Path) -> None:
    home = write_sample_home(tmp_path / "openclaw")
    status, detail = check_of(home)
    assert status is HealthStatus.OK, detail
    assert re_agents(detail)


def re_agents(detail: str) -> bool:
    return detail.split(" ")[1] in ("agent", "agents") and " in " in detail


def test_an_unparsable_configuration_degrades_health(tmp_path: Path) -> None:
    home = write_sample_home(tmp_path / "openclaw")
    (home / "openclaw.json").write_text("{agents: [")
    status, detail = check_of(home)
    assert status is HealthStatus.DEGRADED
    assert detail.startswith("openclaw.json: not JSON5"), detail


def test_a_damaged_agent_database_degrades_health(tmp_path: Path) -> None:
    home = tmp_path / "openclaw"
    database = home / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    database.parent.mkdir(parents=True)
    sqlite3.connect(database).close()
    database.write_bytes(b"\x00garbage" * 100)
    status, detail = check_of(home)
    assert status is HealthStatus.DEGRADED
    assert detail == "agents/main/agent/openclaw-agent.sqlite: not an SQLite database (damaged?)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_transcripts_degrade_health(tmp_path: Path) -> None:
    home = tmp_path / "openclaw"
    sessions = home / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    sessions.chmod(0)
    try:
        status, detail = check_of(home)
    finally:
        sessions.chmod(0o700)
    assert status is HealthStatus.DEGRADED
    assert "agents/main/sessions: not readable" in detail


def test_what_the_last_ingest_could_not_read_degrades_health(tmp_path: Path) -> None:
    home = write_sample_home(tmp_path / "openclaw")
    log = RunLog(tmp_path / "runs.sqlite")
    try:
        run_id = log.start_run("ingest", RunTrigger.SCHEDULE, T0, None)
        where = str(home / "agents" / "work" / "agent" / "openclaw-agent.sqlite")
        stats = {
            "problems": 2,
            "problem_examples": [
                {"where": where, "kind": "corrupt_database", "detail": "file is not a database"},
                {"where": f"{where}#s:3", "kind": "bad_row", "detail": "one row"},
            ],
        }
        log.finish_run(run_id, RunStatus.SUCCESS, T0, stats=stats)
        log.start_run("ingest", RunTrigger.SCHEDULE, T0, None)  # the next one, still running
        last = last_finished(log.runs("ingest", 3))
    finally:
        log.close()
    assert last is not None
    assert last.run_id == run_id
    status, detail = check_of(home, last)
    assert status is HealthStatus.DEGRADED
    assert detail == (
        f"agents/work/agent/openclaw-agent.sqlite: corrupt_database (ingest run {run_id})"
    )


def test_a_daemon_on_a_mistyped_home_says_so(root: Path) -> None:
    """At start-up (a warning in the log), in `health` and in `status`."""
    typo = root / ".openclw"
    with running_daemon(root, {"OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(typo)}) as daemon:
        warned = daemon.events("openclaw.not_ready")
        assert warned
        assert warned[0]["level"] == "warning"
        assert str(typo) in warned[0]["problem"]
        report = daemon.call("health")
        assert report["status"] == "degraded"
        (check,) = [c for c in report["checks"] if c["name"] == "openclaw"]
        assert check["status"] == "degraded"
        health_run(daemon)
        status = daemon.call("status")
        assert status["health"]["status"] == "degraded"
        assert [p["name"] for p in status["health"]["problems"]] == ["openclaw"]


def health_run(daemon: DaemonProcess) -> None:
    """A recorded health run (what `status` shows), not left to start-up timing."""
    done = daemon.call("trigger", {"job": "health", "wait": True})
    assert json.dumps(done)
