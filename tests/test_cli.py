"""``infractl`` as a user runs it: a subprocess, against no daemon or the real one."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from daemon import __version__
from daemon.cli.main import build_parser
from daemon.paths import default_state_dir
from jobs.registry import JOBS
from tests.support import REPO, DaemonProcess, running_daemon

#: What `infractl` must never pull in: it only speaks the socket protocol, so it starts fast.
HEAVY = frozenset(
    {
        "chromadb",
        "onnxruntime",
        "telegram",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "structlog",
        "apscheduler",
        "numpy",
        "rich",
        "anthropic",
        "shtab",
    }
)

STATUS_KEYS = {
    "version",
    "pid",
    "started_at",
    "uptime_s",
    "state_dir",
    "openclaw_state_dir",
    "socket",
    "timezone",
    "scheduler",
    "stopping",
    "jobs",
    "health",
}
JOB_KEYS = {
    "name",
    "description",
    "enabled",
    "paused",
    "schedule",
    "timeout_s",
    "next_run_at",
    "running_run_id",
    "last_status",
    "last_success_at",
    "consecutive_failures",
}
RUN_KEYS = {
    "run_id",
    "job",
    "trigger",
    "status",
    "scheduled_for",
    "started_at",
    "finished_at",
    "duration_ms",
    "error_type",
    "error_message",
    "stats",
}
HEALTH_KEYS = {"status", "checked_at", "checks"}
CHECK_KEYS = {"name", "status", "detail"}

SOCKET_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["jobs"],
    ["runs"],
    ["health"],
    ["trigger", "health"],
    ["trigger", "health", "--wait"],
    ["pause", "--all"],
    ["resume", "health"],
    ["reload"],
]

#: Runs infractl's main in a fresh interpreter and reports which top-level modules it loaded,
#: counting only those that importing and running infractl added (not what site loaded).
IMPORT_PROBE = """
import json, sys
before = {name.partition(".")[0] for name in sys.modules}
import daemon.cli.main
try:
    code = daemon.cli.main.main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
added = {name.partition(".")[0] for name in sys.modules} - before
with open(sys.argv[2], "w") as out:
    json.dump({"code": code, "added": sorted(added)}, out)
"""


def environ(root: Path, **extra: str) -> dict[str, str]:
    """This environment minus anything that would point infractl at another socket."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENCLAW_", "XDG_")) and k != "NOTIFY_SOCKET"
    }
    env["HOME"] = str(root / "home")
    env.update(extra)
    return env


def infractl(
    root: Path, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m daemon.cli.main`` run in ``root`` (or ``cwd``), so no stray ./.env is read."""
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", *args],
        env=environ(root, **(env or {})),
        cwd=cwd or root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("infractl: ")
    return lines[0]


def loaded_modules(root: Path, argv: list[str]) -> tuple[Any, set[str], str]:
    """(exit status, modules infractl added, stdout) of ``daemon.cli.main.main(argv)``."""
    report = root / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, json.dumps(argv), str(report)],
        env=environ(root),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(report.read_text())
    return found["code"], set(found["added"]), done.stdout


@pytest.fixture
def daemon(root: Path) -> Iterator[DaemonProcess]:
    with running_daemon(root) as running:
        yield running


def ctl(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return infractl(daemon.root, "--socket", str(daemon.socket), *args)


def ctl_json(daemon: DaemonProcess, *args: str) -> Any:
    done = ctl(daemon, *args, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


def trigger_health(daemon: DaemonProcess) -> None:
    """A finished manual run, so that run history is not left to start-up timing."""
    done = ctl(daemon, "trigger", "health", "--wait")
    assert done.returncode == 0, done.stderr


# --- no daemon -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", SOCKET_COMMANDS, ids=" ".join)
def test_without_a_daemon_socket_commands_exit_3_naming_the_socket(
    root: Path, command: list[str]
) -> None:
    sock = root / "s.sock"
    done = infractl(root, *command, env={"OPENCLAW_INFRA_SOCKET_PATH": str(sock)})
    assert done.returncode == 3
    assert done.stdout == ""
    assert str(sock) in one_line(done.stderr)


def _stale_socket(path: Path) -> None:
    """A socket file nobody listens on, as a daemon killed with SIGKILL leaves behind."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()


@pytest.mark.parametrize(
    "leftover",
    ["stale socket", "regular file", "file as parent", "path too long"],
)
def test_a_socket_path_nobody_can_answer_on_is_one_line_and_exit_3(
    root: Path, leftover: str
) -> None:
    sock = root / "s.sock"
    if leftover == "stale socket":
        _stale_socket(sock)
    elif leftover == "regular file":
        sock.write_text("")
    elif leftover == "file as parent":
        (root / "plain").write_text("")
        sock = root / "plain" / "s.sock"
    else:
        sock = root / ("x" * 120) / "s.sock"
    done = infractl(root, "--socket", str(sock), "status")
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert str(sock) in one_line(done.stderr)


@pytest.mark.parametrize("source", ["flag", "environment", "state dir", "runtime dir", "default"])
def test_the_socket_named_is_the_one_the_settings_resolve_to(
    root: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args: list[str] = []
    env: dict[str, str] = {}
    if source == "flag":
        expected = root / "flag.sock"
        args = ["--socket", str(expected)]
    elif source == "environment":
        expected = root / "env.sock"
        env["OPENCLAW_INFRA_SOCKET_PATH"] = str(expected)
    elif source == "state dir":
        expected = root / "state" / "infrad.sock"
        env["OPENCLAW_INFRA_STATE_DIR"] = str(root / "state")
    elif source == "runtime dir":
        expected = root / "run" / "openclaw-infra" / "infrad.sock"
        env["XDG_RUNTIME_DIR"] = str(root / "run")
    else:
        monkeypatch.setenv("HOME", str(root / "home"))
        for name in ("XDG_STATE_HOME", "XDG_DATA_HOME"):
            monkeypatch.delenv(name, raising=False)
        expected = default_state_dir() / "infrad.sock"
        assert expected.is_relative_to(root / "home")
    done = infractl(root, *args, "status", env=env)
    assert done.returncode == 3
    assert f" {expected};" in one_line(done.stderr)


def test_version_works_without_a_daemon(root: Path) -> None:
    done = infractl(root, "version", env={"OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock")})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"infractl {__version__}\ninfrad   not running\n"
    assert done.stderr == ""


def test_version_json_works_without_a_daemon(root: Path) -> None:
    done = infractl(
        root, "version", "--json", env={"OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock")}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"infractl": __version__, "daemon": None}


def test_dash_dash_version(root: Path) -> None:
    done = infractl(root, "--version")
    assert done.returncode == 0
    assert done.stdout == f"infractl {__version__}\n"


def test_no_command_is_a_usage_error(root: Path) -> None:
    done = infractl(root)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "usage: infractl" in done.stderr


def test_config_example_is_the_committed_env_example(root: Path) -> None:
    done = infractl(root, "config", "example")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (REPO / ".env.example").read_text()


# --- against the running daemon ---------------------------------------------------------------


def test_status_json(daemon: DaemonProcess) -> None:
    data = ctl_json(daemon, "status")
    assert set(data) >= STATUS_KEYS
    assert daemon.proc is not None
    assert data["pid"] == daemon.proc.pid
    assert data["socket"] == str(daemon.socket)
    assert data["scheduler"] == "running"
    assert data["stopping"] is False
    assert [job["name"] for job in data["jobs"]] == list(JOBS)
    assert set(data["jobs"][0]) >= JOB_KEYS


def test_jobs_json(daemon: DaemonProcess) -> None:
    data = ctl_json(daemon, "jobs")
    assert set(data) == {"jobs"}
    assert [job["name"] for job in data["jobs"]] == list(JOBS)
    for job in data["jobs"]:
        assert set(job) >= JOB_KEYS
        assert job["enabled"] is True
        assert job["paused"] is False


def test_runs_json(daemon: DaemonProcess) -> None:
    trigger_health(daemon)
    data = ctl_json(daemon, "runs", "--job", "health")
    assert set(data) == {"runs"}
    assert data["runs"], "the manual run is recorded"
    for run in data["runs"]:
        assert set(run) >= RUN_KEYS
        assert run["job"] == "health"
    assert data["runs"][0]["trigger"] == "manual"
    assert data["runs"][0]["status"] == "success"


def test_health_json(daemon: DaemonProcess) -> None:
    data = ctl_json(daemon, "health")
    assert set(data) >= HEALTH_KEYS
    assert data["status"] == "ok"
    assert data["checks"]
    for check in data["checks"]:
        assert set(check) >= CHECK_KEYS


@pytest.mark.parametrize(
    ("command", "row"),
    [
        ("status", r"health\s+enabled\s+every 5m"),
        ("jobs", r"health\s+enabled\s+every 5m"),
        ("runs", r"\d+\s+health\s+manual\s+success"),
    ],
)
def test_tables_show_the_health_job(daemon: DaemonProcess, command: str, row: str) -> None:
    trigger_health(daemon)
    done = ctl(daemon, command)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert re.search(rf"(?m)^{row}", done.stdout), done.stdout


def test_status_table_says_the_scheduler_runs(daemon: DaemonProcess) -> None:
    done = ctl(daemon, "status")
    assert done.returncode == 0, done.stderr
    assert "scheduler running" in done.stdout
    assert f"socket   {daemon.socket}" in done.stdout


def test_trigger_wait_prints_success(daemon: DaemonProcess) -> None:
    done = ctl(daemon, "trigger", "health", "--wait")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"health: run \d+ success in .*\n", done.stdout), done.stdout


def test_trigger_without_wait_says_it_started(daemon: DaemonProcess) -> None:
    done = ctl(daemon, "trigger", "health")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"health: run \d+ started .*\n", done.stdout), done.stdout


@pytest.mark.parametrize(
    "command", [["runs", "--job", "nosuchjob"], ["trigger", "nosuchjob"], ["pause", "nosuchjob"]]
)
def test_an_unknown_job_exits_13_with_one_line(daemon: DaemonProcess, command: list[str]) -> None:
    done = ctl(daemon, *command)
    assert done.returncode == 13
    assert done.stdout == ""
    assert "nosuchjob" in one_line(done.stderr)


def test_pause_and_resume_all(daemon: DaemonProcess) -> None:
    done = ctl(daemon, "pause", "--all")
    assert (done.returncode, done.stdout) == (0, f"paused: {', '.join(sorted(JOBS))}\n")
    assert ctl_json(daemon, "jobs")["jobs"][0]["paused"] is True
    done = ctl(daemon, "resume", "--all")
    assert (done.returncode, done.stdout) == (0, f"resumed: {', '.join(sorted(JOBS))}\n")
    assert ctl_json(daemon, "jobs")["jobs"][0]["paused"] is False


def test_health_exits_0_when_healthy(daemon: DaemonProcess) -> None:
    done = ctl(daemon, "health")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("health: ok\n")


def test_health_exits_4_when_degraded(root: Path) -> None:
    with running_daemon(root, {"OPENCLAW_INFRA_MIN_FREE_DISK_MB": str(2**40)}) as degraded:
        done = ctl(degraded, "health")
        assert done.returncode == 4, done.stderr
        assert done.stdout.startswith("health: degraded\n")
        assert ctl(degraded, "health", "--json").returncode == 4


def test_version_names_the_running_daemon(daemon: DaemonProcess) -> None:
    done = ctl(daemon, "version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith(f"infrad   {__version__} (protocol 1, pid ")


# --- finding the socket through settings -------------------------------------------------------


def test_env_file_given_with_the_flag_finds_the_daemon(daemon: DaemonProcess) -> None:
    root = daemon.root
    settings = root / "conf" / "infra.env"
    settings.parent.mkdir()
    settings.write_text(f"OPENCLAW_INFRA_SOCKET_PATH={daemon.socket}\n")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    done = infractl(root, "--env-file", str(settings), "status", "--json", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["socket"] == str(daemon.socket)
    # Without the file the default socket is tried, so it was the file that found the daemon.
    done = infractl(root, "status", cwd=elsewhere)
    assert done.returncode == 3
    assert str(daemon.socket) not in done.stderr


def test_dot_env_in_the_working_directory_finds_the_daemon(daemon: DaemonProcess) -> None:
    here = daemon.root / "project"
    here.mkdir()
    (here / ".env").write_text(f"OPENCLAW_INFRA_SOCKET_PATH={daemon.socket}\n")
    done = infractl(daemon.root, "status", "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["socket"] == str(daemon.socket)


def test_environment_beats_the_env_file_and_the_flag_beats_both(daemon: DaemonProcess) -> None:
    root = daemon.root
    settings = root / "infra.env"
    settings.write_text(f"OPENCLAW_INFRA_SOCKET_PATH={daemon.socket}\n")
    other = root / "other.sock"
    done = infractl(
        root, "--env-file", str(settings), "status", env={"OPENCLAW_INFRA_SOCKET_PATH": str(other)}
    )
    assert done.returncode == 3
    assert str(other) in one_line(done.stderr)
    done = infractl(
        root,
        "--env-file",
        str(settings),
        "--socket",
        str(daemon.socket),
        "status",
        env={"OPENCLAW_INFRA_SOCKET_PATH": str(other)},
    )
    assert done.returncode == 0, done.stderr


# --- infractl stays light ---------------------------------------------------------------------


def test_the_probe_sees_deferred_imports(daemon: DaemonProcess) -> None:
    """The table is drawn with rich, imported on first use: the probe must notice that, or
    the checks below would prove nothing."""
    code, added, out = loaded_modules(daemon.root, ["--socket", str(daemon.socket), "status"])
    assert code == 0
    assert "health" in out
    assert "rich" in added


@pytest.mark.parametrize(
    "argv", [["--version"], ["version"], ["version", "--json"], ["status"], ["--help"]]
)
def test_infractl_imports_nothing_heavy_without_a_daemon(root: Path, argv: list[str]) -> None:
    code, added, _ = loaded_modules(root, ["--socket", str(root / "s.sock"), *argv])
    assert code in (0, 2, 3)
    assert "daemon" in added
    assert added & HEAVY == set()


def test_status_json_imports_nothing_heavy(daemon: DaemonProcess) -> None:
    code, added, out = loaded_modules(
        daemon.root, ["--socket", str(daemon.socket), "status", "--json"]
    )
    assert code == 0
    assert json.loads(out)["socket"] == str(daemon.socket)
    assert added & HEAVY == set()


@pytest.mark.parametrize("command", ["jobs", "runs", "health"])
def test_other_json_commands_import_nothing_heavy(daemon: DaemonProcess, command: str) -> None:
    code, added, out = loaded_modules(
        daemon.root, ["--socket", str(daemon.socket), command, "--json"]
    )
    assert code == 0
    json.loads(out)
    assert added & HEAVY == set()


def test_forget_by_path_sends_the_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    parse = build_parser().parse_args
    relative = parse(["memory", "forget", "--path", "memory/2026-03-10.md"])
    assert relative.path == str(tmp_path / "memory" / "2026-03-10.md")
    home = parse(["memory", "forget", "--path", "~/notes/x.md"])
    assert home.path == str(tmp_path / "home" / "notes" / "x.md")
