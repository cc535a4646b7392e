"""infractl against one running daemon: a run already under way, a reload with bad settings,
an unknown agent, forgetting with a count first, -q and -v."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import EXIT_STATUS, ErrorCode
from tests.support import DaemonProcess, running_daemon, wait_for
from tests.test_cli import environ

GATED = [sys.executable, "-m", "tests.gated_daemon"]
INFRACTL = [sys.executable, "-m", "daemon.cli.main"]


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    root = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    env_file = root / "infra.env"
    env_file.write_text("OPENCLAW_INFRA_LOG_LEVEL=INFO\n")
    env = {"GATED_STARTED": str(root / "started"), "GATED_GATE": str(root / "gate")}
    try:
        with running_daemon(root, env, [*GATED, "--env-file", str(env_file)]) as running:
            running.call("memory.add", {"text": "The spare key is under the blue pot"})
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ctl(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", "--socket", str(daemon.socket), *args],
        env=environ(daemon.root),
        cwd=daemon.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_trigger_wait_reports_the_run_already_under_way(daemon: DaemonProcess) -> None:
    started = daemon.call("trigger", {"job": "gated"})
    wait_for((daemon.root / "started").exists, what="the gated run to begin")
    refused = ctl(daemon, "trigger", "gated")
    assert refused.returncode == EXIT_STATUS[ErrorCode.BUSY]
    assert refused.stderr == (
        f"infractl: gated is already running (run {started['run_id']});"
        " `infractl trigger gated --wait` waits for it and reports its result,"
        " `infractl runs --job gated` shows it\n"
    )
    waiting = subprocess.Popen(
        [*INFRACTL, "--socket", str(daemon.socket), "trigger", "gated", "--wait"],
        env=environ(daemon.root),
        cwd=daemon.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: daemon.events("trigger.joined"), what="the wait to join the run")
        (daemon.root / "gate").touch()
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"gated: run {started['run_id']} (manual) was already under way"
    assert lines[1].startswith(f"gated: run {started['run_id']} success in ")


def test_a_reload_with_bad_settings_is_its_own_exit_status(daemon: DaemonProcess) -> None:
    env_file = daemon.root / "infra.env"
    good = env_file.read_text()
    env_file.write_text("OPENCLAW_INFRA_LOG_LEVEL=loud\n")
    try:
        done = ctl(daemon, "reload")
    finally:
        env_file.write_text(good)
    assert done.returncode == EXIT_STATUS[ErrorCode.BAD_SETTINGS] == 21
    assert done.stderr.startswith("infractl: settings not reloaded, the daemon keeps its current")
    assert "OPENCLAW_INFRA_LOG_LEVEL" in done.stderr
    assert ctl(daemon, "reload").returncode == 0


@pytest.mark.parametrize("command", [["memory", "search", "key"], ["memory", "reindex"]])
def test_an_unknown_agent_is_said_to_be_unknown(daemon: DaemonProcess, command: list[str]) -> None:
    done = ctl(daemon, *command, "--agent", "nosuch")
    assert done.returncode == EXIT_STATUS[ErrorCode.BAD_REQUEST]
    assert done.stderr == "infractl: no agent nosuch; OpenClaw knows main\n"


def test_forget_counts_first_with_dry_run(daemon: DaemonProcess) -> None:
    daemon.call("memory.add", {"text": "Dana's badge number is 4411", "agent": "main"})
    done = ctl(daemon, "memory", "forget", "--agent", "main", "--dry-run")
    assert (done.returncode, done.stdout) == (0, "would forget 1 memory\n")
    assert daemon.call("memory.forget", {"agent": "main", "dry_run": True})["removed"] == 1


def test_forget_asks_on_a_terminal_and_a_no_keeps_everything(daemon: DaemonProcess) -> None:
    daemon.call("memory.add", {"text": "The garage code is 1234", "agent": "main"})
    there = daemon.call("memory.forget", {"agent": "main", "dry_run": True})["removed"]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*INFRACTL, "--socket", str(daemon.socket), "memory", "forget", "--agent", "main"],
        env=environ(daemon.root),
        cwd=daemon.root,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    try:
        asked = b""
        while b"[y/N]" not in asked:
            asked += os.read(master, 1024)
        os.write(master, b"n\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"forget {there} memories (agent main)? [y/N]".encode() in asked
    assert proc.returncode == 1
    assert out == ""
    assert daemon.call("memory.forget", {"agent": "main", "dry_run": True})["removed"] == there


def test_quiet_leaves_out_confirmations_and_verbose_names_the_socket(
    daemon: DaemonProcess,
) -> None:
    quiet = ctl(daemon, "pause", "summarize", "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    loud = ctl(daemon, "-v", "resume", "summarize")
    assert loud.stdout == "resumed: summarize\n"
    assert loud.stderr.startswith(f"infractl: resume at {daemon.socket}: ")
    failing = ctl(daemon, "-v", "trigger", "nosuchjob")
    assert failing.stderr.splitlines()[-1] == "infractl: error unknown_job, exit 13"
