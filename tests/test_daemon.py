"""The real daemon as a subprocess: start, control, signals, crashes, a second instance."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import ErrorCode
from jobs.registry import JOBS
from tests.support import DaemonProcess, running_daemon, wait_for

GATED = [sys.executable, "-m", "tests.gated_daemon"]


def _gated_env(root: Path, **extra: str) -> dict[str, str]:
    return {"GATED_STARTED": str(root / "started"), "GATED_GATE": str(root / "gate"), **extra}


def _runs(daemon: DaemonProcess, job: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = daemon.call("runs", {"job": job})["runs"]
    return result


def _set_anchor(root: Path, job: str, when: datetime) -> None:
    """Rewrite a job's anchor as if the daemon had been down since ``when``."""
    conn = sqlite3.connect(root / "state" / "runs.sqlite")
    with conn:
        conn.execute("INSERT OR IGNORE INTO job_state (job) VALUES (?)", (job,))
        conn.execute(
            "UPDATE job_state SET schedule_anchor = ? WHERE job = ?", (when.isoformat(), job)
        )
    conn.close()


def test_status_trigger_and_runs(root: Path) -> None:
    with running_daemon(root) as daemon:
        status = daemon.call("status")
        assert status["scheduler"] == "running"
        assert status["socket"] == str(root / "s.sock")
        assert [j["name"] for j in status["jobs"]] == list(JOBS)
        run = daemon.call("trigger", {"job": "health", "wait": True})
        assert run["status"] == "success"
        assert run["trigger"] == "manual"
        assert run["stats"]["status"] in {"ok", "degraded"}
        triggers = [r["trigger"] for r in _runs(daemon, "health")]
        assert triggers == ["manual", "startup"]
        assert daemon.stop() == 0


def test_pause_and_resume_hold_across_a_restart(root: Path) -> None:
    with running_daemon(root) as daemon:
        assert daemon.call("pause", {"job": None}) == {"paused": sorted(JOBS)}
        before = _runs(daemon, "health")
        assert daemon.stop() == 0
    with running_daemon(root) as daemon:
        job = daemon.call("jobs")["jobs"][0]
        assert job["paused"] is True
        assert job["next_run_at"] is None
        assert _runs(daemon, "health") == before, "a paused job does not run at start-up"
        daemon.call("resume", {"job": "health"})
        job = daemon.call("jobs")["jobs"][0]
        assert job["paused"] is False
        assert job["next_run_at"] is not None
        assert daemon.stop() == 0


def test_sigterm_lets_a_running_job_finish(root: Path) -> None:
    with running_daemon(root, _gated_env(root), GATED) as daemon:
        started = daemon.call("trigger", {"job": "gated"})
        wait_for((root / "started").exists, what="the gated job to start")
        daemon.signal(signal.SIGTERM)
        wait_for(lambda: daemon.events("runner.draining"), what="the daemon to start draining")
        (root / "gate").touch()
        assert daemon.wait() == 0
    with running_daemon(root, _gated_env(root), GATED) as daemon:
        run = next(r for r in _runs(daemon, "gated") if r["run_id"] == started["run_id"])
        assert run["status"] == "success"
        daemon.stop()


def test_sigterm_cancels_what_outlives_the_grace_period(root: Path) -> None:
    env = _gated_env(root, OPENCLAW_INFRA_SHUTDOWN_GRACE="200ms")
    with running_daemon(root, env, GATED) as daemon:
        started = daemon.call("trigger", {"job": "gated"})
        wait_for((root / "started").exists, what="the gated job to start")
        assert daemon.stop() == 0
    with running_daemon(root, env, GATED) as daemon:
        run = next(r for r in _runs(daemon, "gated") if r["run_id"] == started["run_id"])
        assert run["status"] == "cancelled"
        assert "did not finish within" in run["error_message"]
        daemon.stop()


def test_a_second_sigint_stops_at_once(root: Path) -> None:
    with running_daemon(root, _gated_env(root), GATED) as daemon:
        started = daemon.call("trigger", {"job": "gated"})
        wait_for((root / "started").exists, what="the gated job to start")
        daemon.signal(signal.SIGINT)
        wait_for(lambda: daemon.events("runner.draining"), what="draining")
        daemon.signal(signal.SIGINT)
        assert daemon.wait() == 0
        assert daemon.events("daemon.forced_stop")
    with running_daemon(root, _gated_env(root), GATED) as daemon:
        run = next(r for r in _runs(daemon, "gated") if r["run_id"] == started["run_id"])
        assert run["status"] == "cancelled"
        daemon.stop()


def test_kill_9_leaves_an_abandoned_run_and_a_missed_run_is_caught_up(root: Path) -> None:
    env = _gated_env(root, OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE="every 1h")
    with running_daemon(root, env, GATED) as daemon:
        interrupted = daemon.call("trigger", {"job": "gated"})
        wait_for((root / "started").exists, what="the gated job to start")
        earlier = {r["run_id"] for r in _runs(daemon, "health")}
        daemon.kill()
    # The daemon was down for two hours: one hourly health run is owed.
    _set_anchor(root, "health", datetime.now(UTC) - timedelta(hours=2, minutes=5))
    (root / "gate").touch()
    with running_daemon(root, env, GATED) as daemon:
        run = next(r for r in _runs(daemon, "gated") if r["run_id"] == interrupted["run_id"])
        assert run["status"] == "abandoned"

        def since_restart() -> list[dict[str, Any]]:
            return [r for r in _runs(daemon, "health") if r["run_id"] not in earlier]

        wait_for(
            lambda: any(r["status"] == "success" for r in since_restart()), what="the catch-up run"
        )
        assert [r["trigger"] for r in since_restart()] == ["catchup"], "once, no startup run"
        assert daemon.events("job.abandoned")
        daemon.stop()


def test_a_run_missed_beyond_the_grace_is_recorded_missed(root: Path) -> None:
    env = {
        "OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE": "every 1h",
        "OPENCLAW_INFRA_CATCHUP_GRACE": "30m",
    }
    with running_daemon(root, env) as daemon:
        earlier = {r["run_id"] for r in _runs(daemon, "health")}
        daemon.stop()
    # Down for three days; the newest owed run was due 45 minutes ago, beyond the grace.
    _set_anchor(root, "health", datetime.now(UTC) - timedelta(days=3, minutes=45))
    with running_daemon(root, env) as daemon:
        runs = [r for r in _runs(daemon, "health") if r["run_id"] not in earlier]
        (missed,) = [r for r in runs if r["trigger"] == "catchup"]
        assert missed["status"] == "missed"
        assert missed["stats"]["missed_runs"] == 72
        assert "beyond the catch-up grace" in missed["error_message"]
        # Nothing was caught up, so the usual start-up run still happens.
        assert [r["trigger"] for r in runs if r is not missed] == ["startup"]
        daemon.stop()


def test_a_second_instance_is_refused(root: Path) -> None:
    with running_daemon(root) as first:
        # The same state directory behind another socket: the lock on the directory refuses it.
        second = DaemonProcess(root, {"OPENCLAW_INFRA_SOCKET_PATH": str(root / "t.sock")})
        assert second.start(wait=False).wait() == 1
        assert "another infrad already runs on" in second.log()
        assert not (root / "t.sock").exists()
        assert first.call("version")["pid"] == first.proc.pid  # type: ignore[union-attr]
        first.stop()


def test_a_socket_in_use_by_another_daemon_is_refused(root: Path) -> None:
    other = root / "other"
    other.mkdir()
    with running_daemon(root) as first:
        env = {
            "OPENCLAW_INFRA_STATE_DIR": str(other / "state"),
            "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        }
        second = DaemonProcess(other, env).start(wait=False)
        assert second.wait() == 1
        assert first.proc is not None
        assert f"infrad pid {first.proc.pid} (state dir {root / 'state'}) already serves" in (
            second.log()
        )
        assert not (other / "state").exists()
        assert first.call("version")
        first.stop()


def test_sighup_reloads_the_job_table(root: Path) -> None:
    env_file = root / "infra.env"
    env_file.write_text("OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE=every 1h\n")
    daemon = DaemonProcess(
        root, launcher=[sys.executable, "-m", "daemon.main", "--env-file", str(env_file)]
    ).start()
    try:
        assert daemon.call("jobs")["jobs"][0]["schedule"] == "every 1h"
        env_file.write_text("OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE=0 4 * * *\n")
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: daemon.call("jobs")["jobs"][0]["schedule"] == "0 4 * * *",
            what="the new schedule",
        )
        env_file.write_text("OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE=now and then\n")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.events("daemon.reload_failed"), what="the refused reload")
        assert daemon.call("jobs")["jobs"][0]["schedule"] == "0 4 * * *"
        error = daemon.error_of("reload")
        assert error.code is ErrorCode.BAD_SETTINGS
        assert "OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE" in error.message
        assert daemon.stop() == 0
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()


@pytest.fixture
def notify_socket(root: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(root / "notify"))
    sock.settimeout(20)
    try:
        yield sock
    finally:
        sock.close()


def test_systemd_is_told_ready_pinged_and_told_stopping(
    root: Path, notify_socket: socket.socket
) -> None:
    env = {"NOTIFY_SOCKET": str(root / "notify"), "WATCHDOG_USEC": "300000"}
    daemon = DaemonProcess(root, env)
    daemon.env.update(env)
    daemon.start()
    try:
        messages = [notify_socket.recv(4096).decode() for _ in range(3)]
        assert messages[0].startswith("READY=1\nSTATUS=")
        assert "WATCHDOG=1" in messages[1:]
        daemon.signal(signal.SIGTERM)
        seen: list[str] = []
        while not any(m.startswith("STOPPING=1") for m in seen):
            seen.append(notify_socket.recv(4096).decode())
        assert daemon.wait() == 0
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()


def test_state_and_socket_are_private(root: Path) -> None:
    with running_daemon(root) as daemon:
        assert oct((root / "state").stat().st_mode & 0o777) == oct(0o700)
        assert oct((root / "state" / "runs.sqlite").stat().st_mode & 0o777) == oct(0o600)
        assert oct((root / "s.sock").stat().st_mode & 0o777) == oct(0o600)
        assert os.stat(root / "state" / "infrad.lock").st_mode & 0o077 == 0
        daemon.stop()
        assert not (root / "s.sock").exists(), "a clean stop removes its socket"
