"""Helpers for tests: settings in a temporary directory and the real daemon as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from daemon.client import ControlClient
from daemon.config.settings import Settings, load_settings
from daemon.errors import InfraError, Unavailable

REPO = Path(__file__).resolve().parent.parent


def settings_for(root: Path, **env: str) -> Settings:
    """Settings for a daemon living entirely under ``root`` (short enough for a socket path)."""
    environ = base_environ(root)
    environ.update(env)
    return load_settings(env_file=None, environ=environ)


def base_environ(root: Path) -> dict[str, str]:
    return {
        "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
        "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        "OPENCLAW_INFRA_TIMEZONE": "UTC",
        "OPENCLAW_INFRA_LOG_FORMAT": "json",
        "HOME": str(root / "home"),
    }


def openclaw_home(root: Path) -> Path:
    """An OpenClaw home with one agent, as `openclaw onboard` leaves it, unless the test brought
    its own: without one, health says (rightly) that nothing is read."""
    home = root / "openclaw"
    if not home.exists():
        (home / "agents" / "main" / "sessions").mkdir(parents=True)
    return home


def wait_for(
    condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll until ``condition()`` is truthy; the deadline guards against a hang, it is not a
    timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(interval)


class DaemonProcess:
    """``infrad`` (or a launcher around ``daemon.main.main``) running in a subprocess."""

    def __init__(
        self, root: Path, env: Mapping[str, str] | None = None, launcher: list[str] | None = None
    ) -> None:
        self.root = root
        self.socket = root / "s.sock"
        self.log_path = root / "infrad.log"
        self.env = {**os.environ, **base_environ(root), **(env or {})}
        self.env.pop("NOTIFY_SOCKET", None)
        self.env["PYTHONPATH"] = str(REPO)  # so that launchers in tests/ can be run with -m
        self.argv = launcher or [sys.executable, "-m", "daemon.main"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> DaemonProcess:
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        if Path(self.env["OPENCLAW_INFRA_OPENCLAW_STATE_DIR"]) == self.root / "openclaw":
            openclaw_home(self.root)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log, cwd=self.root)
        log.close()
        if wait:
            wait_for(self._answers, what=f"infrad on {self.socket}; log:\n{self.log()}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"infrad exited with {self.proc.returncode}:\n{self.log()}")
        try:
            self.call("version")
        except (Unavailable, OSError):
            return False
        return True

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        with ControlClient(self.socket, timeout=timeout) as client:
            return client.call(method, params)

    def error_of(self, method: str, params: dict[str, Any] | None = None) -> InfraError:
        try:
            self.call(method, params)
        except InfraError as exc:
            return exc
        raise AssertionError(f"{method} did not fail")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (name is None or record.get("event") == name):
                    found.append(record)
        return found


@contextlib.contextmanager
def running_daemon(
    root: Path, env: Mapping[str, str] | None = None, launcher: list[str] | None = None
) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(root, env, launcher).start()
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def infractl(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
