"""The daemon over time, as a user runs it: a home that keeps growing, searches all the while.

    python bench/soak.py --minutes 5 [--clients 10] [--search-every 0.5] [--sample-every 15]

The real ``infrad`` (a subprocess) runs on a generated OpenClaw home of three agents in both
transcript layouts: ``main`` and ``family`` write legacy JSONL files (a line appended to the
live file), ``work`` writes OpenClaw's SQLite database (rows inserted the way OpenClaw does,
through ``daemon.sample.writer``). One turn a second, round robin, each with a unique marker.
Meanwhile ``--clients`` connections search over the socket.

Printed over time: the daemon's RSS and CPU (psutil if installed, else /proc), the size of the
run log and of the state directory, errors in the daemon's log. At the end, a before/after
table to paste into a note: freshness (from appending a turn until ``memory.search`` finds its
marker) and search latency, p50 and p95, and whether every marker appended was found.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.client import ControlClient
from daemon.errors import InfraError
from daemon.sample.session import SessionBuilder
from daemon.sample.writer import OpenClawWriter

AGENTS = {"main": "jsonl", "work": "sqlite", "family": "jsonl"}
TOPICS = [
    "the dentist moved the appointment",
    "book a table for two on Friday",
    "the quarterly report is due on the 5th",
    "water the tomatoes along the south fence",
    "Mira's new address in Lisbon",
    "the launch review moved to Thursday",
    "renew the car insurance before March",
    "pick up the parcel from the post office",
]


@dataclass
class Sample:
    at: float
    rss_mib: float
    cpu_s: float
    runs_bytes: int
    state_bytes: int
    log_errors: int
    chunks: int | None


@dataclass
class Shared:
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    written: dict[str, tuple[str, float]] = field(default_factory=dict)  # marker -> agent, t
    found: dict[str, float] = field(default_factory=dict)  # marker -> seconds to find
    searches_ms: list[float] = field(default_factory=list)
    client_errors: Counter[str] = field(default_factory=Counter)


class Home:
    """The growing OpenClaw home: one live session per agent, a turn appended at a time."""

    def __init__(self, root: Path) -> None:
        self.writer = OpenClawWriter(root)
        self.sessions: dict[str, SessionBuilder] = {}
        self.live: dict[str, Path] = {}
        now = datetime.now(UTC)
        for agent, layout in AGENTS.items():
            self.writer.add_agent(agent, agent.title(), "Dana")
            session = self.writer.new_session(agent, now - timedelta(minutes=5))
            session.user("Good morning; what is on today?")
            session.assistant("Nothing pressing yet.")
            self.sessions[agent] = session
            key = f"agent:{agent}:telegram:direct:5550001"
            if layout == "jsonl":
                self.live[agent] = self.writer.write_legacy(agent, key, session)
            else:
                self.writer.write_sqlite(agent, key, [session])

    def turn(self, agent: str, marker: str) -> None:
        session = self.sessions[agent]
        # Real times, not the builder's own clock, so the turns are "now" for the daemon.
        session._clock = datetime.now(UTC) - timedelta(seconds=50)
        before = len(session.entries)
        session.user(f"{random.choice(TOPICS)}; note {marker}")
        session.assistant(f"Noted ({marker}).")
        if AGENTS[agent] == "jsonl":
            lines = "".join(json.dumps(e) + "\n" for e in session.entries[before:])
            with self.live[agent].open("a") as handle:
                handle.write(lines)
        else:
            self.writer.append_sqlite(agent, f"agent:{agent}:telegram:direct:5550001", [session])


def write_turns(home: Home, shared: Shared) -> None:
    agents = list(AGENTS)
    n = 0
    while not shared.stop.is_set():
        agent = agents[n % len(agents)]
        marker = "zq" + uuid.uuid4().hex[:12]
        home.turn(agent, marker)
        with shared.lock:
            shared.written[marker] = (agent, time.monotonic())
        n += 1
        shared.stop.wait(1.0)


def find_markers(path: Path, shared: Shared) -> None:
    """Freshness: each marker searched for until found, oldest first."""
    client = ControlClient(path, timeout=60)
    while not shared.stop.is_set():
        with shared.lock:
            pending = [(m, a, t) for m, (a, t) in shared.written.items() if m not in shared.found]
        for marker, agent, written in sorted(pending, key=lambda p: p[2]):
            if _has(client, marker, agent, shared):
                with shared.lock:
                    shared.found[marker] = time.monotonic() - written
        shared.stop.wait(0.2)
    client.close()


def _has(client: ControlClient, marker: str, agent: str, shared: Shared) -> bool:
    try:
        found = client.call("memory.search", {"query": marker, "k": 3, "agent": agent})
    except InfraError as exc:
        shared.client_errors[f"freshness {exc.code.value}"] += 1
        return False
    return any(marker in r["text"] for r in found["results"])


def search_load(path: Path, shared: Shared, every: float) -> None:
    client = ControlClient(path, timeout=60)
    while not shared.stop.is_set():
        began = time.perf_counter()
        try:
            client.call("memory.search", {"query": random.choice(TOPICS), "k": 5})
        except InfraError as exc:
            shared.client_errors[exc.code.value] += 1
            client.close()
            client = ControlClient(path, timeout=60)
        else:
            with shared.lock:
                shared.searches_ms.append((time.perf_counter() - began) * 1000)
        shared.stop.wait(every)
    client.close()


class Probe:
    """RSS and CPU time of one process: psutil when installed, else /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._proc: Any = importlib.import_module("psutil").Process(pid)
        except ImportError:
            self._proc = None

    def rss_cpu(self) -> tuple[float, float]:
        if self._proc is not None:
            times = self._proc.cpu_times()
            return self._proc.memory_info().rss / 2**20, times.user + times.system
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss_kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return rss_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def log_errors(log: Path) -> list[str]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            if "Traceback" in line or "never retrieved" in line:
                found.append(line.strip()[:160])
            continue
        if isinstance(event, dict) and event.get("level") in ("error", "critical"):
            found.append(f"{event.get('logger')}: {event.get('event')}")
    return found


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sample(probe: Probe, root: Path, client: ControlClient) -> Sample:
    rss, cpu = probe.rss_cpu()
    state = root / "state"
    runs = sum(
        (state / name).stat().st_size
        for name in ("runs.sqlite", "runs.sqlite-wal")
        if (state / name).exists()
    )
    try:
        chunks = client.call("memory.stats").get("chunks")
    except InfraError:
        chunks = None
    return Sample(
        time.monotonic(),
        rss,
        cpu,
        runs,
        size_of(state),
        len(log_errors(root / "infrad.log")),
        chunks,
    )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--search-every", type=float, default=0.5, help="seconds, per client")
    parser.add_argument("--sample-every", type=float, default=15.0, help="seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
    home = Home(root / "openclaw")
    env = {
        **os.environ,
        "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
        "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        "OPENCLAW_INFRA_LOG_FORMAT": "json",
        "OPENCLAW_INFRA_SYNC__ANNOUNCE": "false",
    }
    with (root / "infrad.log").open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "infrad")], env=env, stdout=log, stderr=log
        )
    shared = Shared()
    try:
        return run(args, root, home, proc, shared)
    finally:
        shared.stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run(
    args: argparse.Namespace, root: Path, home: Home, proc: subprocess.Popen[bytes], shared: Shared
) -> int:
    socket = root / "s.sock"
    client = _connect(socket)
    _until(
        lambda: any(
            r["status"] == "success" for r in client.call("runs", {"job": "ingest"})["runs"]
        )
    )
    probe = Probe(proc.pid)
    threads = [
        threading.Thread(target=write_turns, args=(home, shared), daemon=True),
        threading.Thread(target=find_markers, args=(socket, shared), daemon=True),
        *(
            threading.Thread(
                target=search_load, args=(socket, shared, args.search_every), daemon=True
            )
            for _ in range(args.clients)
        ),
    ]
    first = sample(probe, root, client)
    samples = [first]
    print(f"soak: {args.minutes:g} min, {args.clients} search clients, daemon pid {proc.pid}")
    print(_header())
    print(_row(first, first))
    for thread in threads:
        thread.start()
    deadline = first.at + args.minutes * 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"the daemon exited with {proc.returncode}")
            return 1
        time.sleep(min(args.sample_every, max(0.0, deadline - time.monotonic())))
        samples.append(sample(probe, root, client))
        print(_row(samples[-1], first), flush=True)
    shared.stop.set()
    for thread in threads:
        thread.join(90)
    lost = _settle(client, shared)
    last = sample(probe, root, client)
    client.close()
    _report(args, first, last, shared, lost=lost, errors=log_errors(root / "infrad.log"))
    return 0 if not lost else 1


def _settle(client: ControlClient, shared: Shared) -> list[str]:
    """Every marker appended, searched for until found or two minutes have passed."""
    deadline = time.monotonic() + 120
    pending = [m for m in shared.written if m not in shared.found]
    while pending and time.monotonic() < deadline:
        for marker in list(pending):
            if _has(client, marker, shared.written[marker][0], shared):
                shared.found[marker] = time.monotonic() - shared.written[marker][1]
                pending.remove(marker)
        time.sleep(0.5)
    return pending


def _header() -> str:
    return "   min   RSS MiB   CPU %   run log KiB   state MiB   chunks   log errors"


def _row(now: Sample, first: Sample) -> str:
    elapsed = now.at - first.at
    cpu = 100 * (now.cpu_s - first.cpu_s) / elapsed if elapsed > 0 else 0.0
    return (
        f"{elapsed / 60:6.1f}   {now.rss_mib:7.1f}   {cpu:5.1f}   {now.runs_bytes / 1024:11.0f}"
        f"   {now.state_bytes / 2**20:9.1f}   {now.chunks if now.chunks is not None else '-':>6}"
        f"   {now.log_errors:10d}"
    )


def _report(
    args: argparse.Namespace,
    first: Sample,
    last: Sample,
    shared: Shared,
    *,
    lost: list[str],
    errors: list[str],
) -> None:
    fresh = [s * 1000 for s in shared.found.values()]
    searches = shared.searches_ms
    cpu = 100 * (last.cpu_s - first.cpu_s) / max(1e-9, last.at - first.at)
    print()
    every = f"{args.clients} clients searching every {args.search_every:g}s"
    print(f"### soak, {args.minutes:g} min, {every}")
    print()
    print("| | before | after |")
    print("|---|---|---|")
    print(f"| daemon RSS | {first.rss_mib:.0f} MiB | {last.rss_mib:.0f} MiB |")
    print(f"| daemon CPU (mean over the run) | | {cpu:.0f}% of one core |")
    kib, mib = (
        (f.runs_bytes / 1024 for f in (first, last)),
        (f.state_bytes / 2**20 for f in (first, last)),
    )
    print("| run log (runs.sqlite + wal) | {:.0f} KiB | {:.0f} KiB |".format(*kib))
    print("| state directory | {:.1f} MiB | {:.1f} MiB |".format(*mib))
    print(f"| memory chunks | {first.chunks} | {last.chunks} |")
    print(f"| errors in the daemon log | {first.log_errors} | {last.log_errors} |")
    print()
    print("| | count | p50 | p95 | max |")
    print("|---|---|---|---|---|")
    print(
        f"| freshness (append -> found), ms | {len(fresh)} | {pct(fresh, 0.5):.0f} |"
        f" {pct(fresh, 0.95):.0f} | {max(fresh, default=float('nan')):.0f} |"
    )
    print(
        f"| memory.search, ms | {len(searches)} | {pct(searches, 0.5):.1f} |"
        f" {pct(searches, 0.95):.1f} | {max(searches, default=float('nan')):.1f} |"
    )
    print()
    print(f"markers appended {len(shared.written)}, found {len(shared.found)}, lost {len(lost)}")
    if shared.client_errors:
        print(f"client-side errors: {dict(shared.client_errors)}")
    for line, count in Counter(errors).most_common(10):
        print(f"daemon log: {count} x {line}")
    if searches:
        print(f"search mean {statistics.fmean(searches):.1f} ms over {len(searches)} searches")


def _connect(path: Path) -> ControlClient:
    deadline = time.monotonic() + 120
    while True:
        try:
            return ControlClient(path, timeout=60)
        except InfraError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _until(condition: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
