"""Secrets given to the daemon never come back out: not in logs, errors, status or health."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from daemon.sample.home import write_sample_home
from tests.support import base_environ, running_daemon, wait_for

KEY = "sk-test-Zq8vR2mLx4Tn6Wc9Yb1Kd3Hf5Gj7"


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(root: Path) -> dict[str, str]:
    return {
        "OPENCLAW_INFRA_EMBEDDER__KIND": "openai",
        "OPENCLAW_INFRA_EMBEDDER__MODEL": "text-embedding-3-small",
        "OPENCLAW_INFRA_EMBEDDER__BASE_URL": f"http://127.0.0.1:{_dead_port()}/v1",
        "OPENCLAW_INFRA_EMBEDDER__API_KEY": KEY,
        "OPENCLAW_INFRA_LOG_FORMAT": "json",
        "OPENCLAW_INFRA_LOG_LEVEL": "debug",
    }


def test_check_config_masks_the_key(root: Path) -> None:
    env = {**base_environ(root), **_env(root), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "daemon.main", "--check-config", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["OPENCLAW_INFRA_EMBEDDER__API_KEY"] == "**********"
    assert KEY not in result.stdout + result.stderr


def test_a_failing_embedder_service_never_leaks_its_key(root: Path) -> None:
    write_sample_home(root / "openclaw")
    with running_daemon(root, _env(root)) as daemon:
        wait_for(
            lambda: any(
                r["status"] == "failed" for r in daemon.call("runs", {"job": "ingest"})["runs"]
            ),
            what="the ingest run to fail on the unreachable embedder",
        )
        run = daemon.call("runs", {"job": "ingest"})["runs"][0]
        assert run["error_message"]
        answers = [
            daemon.call("status"),
            daemon.call("health"),
            daemon.call("jobs"),
            daemon.call("runs", {"limit": 100}),
            daemon.call("memory.stats"),
        ]
        daemon.stop()
    everything = json.dumps(answers) + daemon.log()
    assert KEY not in everything
    assert KEY[8:] not in everything, "not even a part of it"
