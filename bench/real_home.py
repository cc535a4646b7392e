"""A real OpenClaw home, as a running OpenClaw keeps it: how often the daemon ingests when
nothing changes, and how soon a turn OpenClaw appends is searchable.

    python bench/real_home.py tests/fixtures/openclaw/v2026.9.6 [--idle 60] [--trials 20]
    python bench/real_home.py HOME --source /path/to/another/checkout   # the same, another version

HOME is a fixture folder (``state/`` and ``manifest.json``, as tools/openclaw_fixtures writes
them) or an OpenClaw state directory; it is copied, never changed. Every agent database is
held open in WAL mode by this process, as a running OpenClaw holds it. The daemon runs with its
default schedule (ingest every minute) and the file watcher on. It prints:

- idle: ingest runs started in ``--idle`` seconds after the first ingest, by trigger, per minute,
  and how much the run history grew; the baseline is the start-up run itself;
- freshness: for ``--trials`` user turns appended to the live session the way OpenClaw appends
  them (the next ``seq`` of ``transcript_events``), the time from the commit until
  ``memory.search`` returns it; the baseline is one search of what is already there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.client import ControlClient
from daemon.errors import InfraError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("home", type=Path, help="a fixture folder or an OpenClaw state directory")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds to watch a quiet home")
    parser.add_argument("--trials", type=int, default=20, help="turns appended, one at a time")
    parser.add_argument("--source", type=Path, help="run the daemon of this checkout instead")
    args = parser.parse_args()
    if args.idle <= 0 or args.trials < 0:
        parser.error("--idle must be positive and --trials at least 0")
    root = Path(tempfile.mkdtemp(prefix="real-", dir="/tmp"))
    try:
        home = _copy(args.home, root / "openclaw")
        held = [_hold(db) for db in sorted(home.glob("agents/*/agent/openclaw-agent.sqlite"))]
        proc = _start(root, home, args.source)
        try:
            client = _connect(root / "s.sock", proc)
            _until(lambda: _runs(client, "success"), what="the first ingest")
            idle = _idle(client, root, args.idle)
            fresh = [_trial(client, conn) for conn in held[:1] for _ in range(args.trials)]
            baseline = [_timed_search(client, "storage code") for _ in range(20)]
            client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            for conn in held:
                conn.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _report(args, idle, fresh, baseline)
    return 0


def _copy(source: Path, home: Path) -> Path:
    """The state directory copied; a fixture's absolute paths moved as a copied home's are."""
    manifest = source / "manifest.json"
    shutil.copytree(source / "state" if manifest.is_file() else source, home)
    if manifest.is_file():
        written = json.loads(manifest.read_text())["sandbox_state_dir"]
        for path in home.rglob("*.json"):
            text = path.read_text(errors="replace")
            if written in text:
                path.write_text(text.replace(written, str(home)))
    return home


def _hold(database: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA ignore_check_constraints = ON")  # OpenClaw's CHECKs need newer SQLite
    return conn


def _start(root: Path, home: Path, source: Path | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_INFRA_")}
    env.update(
        {
            "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
            "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(home),
            "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
            "OPENCLAW_INFRA_TIMEZONE": "UTC",
            "OPENCLAW_INFRA_LOG_LEVEL": "warning",
            "HOME": str(root),
        }
    )
    argv = [str(Path(sys.executable).parent / "infrad")]
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
        argv = [sys.executable, "-m", "daemon.main"]
    with (root / "infrad.log").open("w") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=root)


def _idle(client: ControlClient, root: Path, seconds: float) -> dict[str, Any]:
    before = {r["run_id"] for r in client.call("runs", {"job": "ingest", "limit": 1000})["runs"]}
    size = _history_size(root)
    time.sleep(seconds)  # measuring a quiet home: nothing to wait for but the time itself
    runs = client.call("runs", {"job": "ingest", "limit": 1000})["runs"]
    started = [r for r in runs if r["run_id"] not in before and r["status"] != "skipped"]
    return {
        "seconds": seconds,
        "started": Counter(r["trigger"] for r in started),
        "grew": _history_size(root) - size,
    }


def _history_size(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "state").glob("runs.sqlite*"))


def _trial(client: ControlClient, conn: sqlite3.Connection) -> float:
    word = "zq" + uuid.uuid4().hex[:10]
    session_id, seq, parent = conn.execute(
        "SELECT e.session_id, e.seq, json_extract(e.event_json, '$.id') FROM transcript_events e"
        " JOIN session_nodes n ON n.current_session_id = e.session_id"
        " WHERE e.event_json IS NOT NULL ORDER BY e.seq DESC LIMIT 1"
    ).fetchone()
    now = datetime.now(UTC)
    entry = json.dumps(
        {
            "type": "message",
            "id": str(uuid.uuid4()),
            "parentId": parent,
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "message": {
                "role": "user",
                "content": f"the storage code word is {word}",
                "timestamp": int(now.timestamp() * 1000),
            },
        }
    )
    began = time.perf_counter()
    conn.execute(
        "INSERT INTO transcript_events (session_id, seq, event_json, created_at, event_utf8_bytes)"
        " VALUES (?, ?, ?, ?, ?)",
        (session_id, seq + 1, entry, int(now.timestamp() * 1000), len(entry.encode())),
    )
    _until(
        lambda: any(
            word in r["text"]
            for r in client.call("memory.search", {"query": word, "k": 3})["results"]
        ),
        what=f"turn {word}",
    )
    return (time.perf_counter() - began) * 1000


def _timed_search(client: ControlClient, query: str) -> float:
    began = time.perf_counter()
    client.call("memory.search", {"query": query, "k": 3})
    return (time.perf_counter() - began) * 1000


def _runs(client: ControlClient, status: str) -> bool:
    return any(r["status"] == status for r in client.call("runs", {"job": "ingest"})["runs"])


def _connect(path: Path, proc: subprocess.Popen[bytes]) -> ControlClient:
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"infrad exited with {proc.returncode}")
        try:
            return ControlClient(path)
        except InfraError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _until(condition: Any, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _report(
    args: argparse.Namespace, idle: dict[str, Any], fresh: list[float], baseline: list[float]
) -> None:
    minutes = idle["seconds"] / 60
    started = sum(idle["started"].values())
    by = ", ".join(f"{t} {n}" for t, n in sorted(idle["started"].items())) or "none"
    print(f"home {args.home} (daemon of {args.source or 'this checkout'})")
    print(
        f"idle {idle['seconds']:.0f}s: {started} ingest runs started ({by}):"
        f" {started / minutes:.1f} a minute; run history grew {idle['grew'] / 1024:.1f} KiB"
    )
    if fresh:
        p95 = statistics.quantiles(fresh, n=20)[-1] if len(fresh) > 1 else fresh[0]
        print(
            f"freshness, {len(fresh)} turns appended as OpenClaw appends them: p50"
            f" {statistics.median(fresh):.0f} ms, p95 {p95:.0f} ms, max {max(fresh):.0f} ms"
            f" ({statistics.median(fresh) / statistics.median(baseline):.0f}x one search,"
            f" p50 {statistics.median(baseline):.1f} ms)"
        )


if __name__ == "__main__":
    sys.exit(main())
