"""How soon a new turn is searchable: append it to a live transcript, poll memory.search.

    python bench/freshness.py [--trials 10]

A real daemon runs on the sample OpenClaw home with the file watcher on and the scheduled
ingest an hour away, so only the watcher can make a turn searchable in time. Each trial
appends one user turn with a unique word and measures, from the write, when a search first
returns it. The baseline is the same search for a word that is already there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.client import ControlClient
from daemon.errors import InfraError
from daemon.sample.home import write_sample_home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fresh-", dir="/tmp"))
    home = write_sample_home(root / "openclaw")
    env = {
        **os.environ,
        "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(home),
        "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        "OPENCLAW_INFRA_JOBS__INGEST__SCHEDULE": "every 1h",
        "OPENCLAW_INFRA_LOG_LEVEL": "warning",
    }
    with (root / "infrad.log").open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "infrad")], env=env, stdout=log, stderr=log
        )
    try:
        client = _connect(root / "s.sock")
        _until(
            lambda: any(
                r["status"] == "success" for r in client.call("runs", {"job": "ingest"})["runs"]
            )
        )
        (live,) = (home / "agents" / "main" / "sessions").glob("*.jsonl")
        baseline = [_timed_search(client, "dentist appointment") for _ in range(20)]
        latencies = [_trial(client, live) for _ in range(args.trials)]
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"new turn searchable after (ms), {args.trials} trials: "
        f"p50 {statistics.median(latencies):.0f}, max {max(latencies):.0f}"
    )
    print(
        f"baseline, one search of what is already there: p50 {statistics.median(baseline):.1f} ms"
    )
    return 0


def _connect(path: Path) -> ControlClient:
    deadline = time.monotonic() + 60
    while True:
        try:
            return ControlClient(path)
        except InfraError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _until(condition: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)


def _timed_search(client: ControlClient, query: str) -> float:
    began = time.perf_counter()
    client.call("memory.search", {"query": query, "k": 3})
    return (time.perf_counter() - began) * 1000


def _trial(client: ControlClient, live: Path) -> float:
    word = "zq" + uuid.uuid4().hex[:10]
    last = json.loads(live.read_text().splitlines()[-1])
    now = datetime.now(UTC)
    entry = {
        "type": "message",
        "id": uuid.uuid4().hex[:8],
        "parentId": last["id"],
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": {
            "role": "user",
            "timestamp": int(now.timestamp() * 1000),
            "content": [{"type": "text", "text": f"the code word is {word}"}],
        },
    }
    began = time.perf_counter()
    with live.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    _until(
        lambda: any(
            word in r["text"]
            for r in client.call("memory.search", {"query": word, "k": 3})["results"]
        )
    )
    return (time.perf_counter() - began) * 1000


if __name__ == "__main__":
    sys.exit(main())
