"""The control channel's cost, as figures against baselines measured in the same run.

1. ``infractl status`` as a whole process (what a user or a script pays per call) against
   ``python -c pass`` (what any Python command pays), and ``infractl --version`` (import and
   argument parsing, no socket) between the two.
2. The socket round trip of ``status`` from persistent clients: one client calling back to back,
   then many clients at once; ``version`` (the cheapest method) is the protocol's floor.

It starts its own ``infrad`` on a private state directory and stops it at the end.

    python bench/control.py [--runs 30] [--calls 2000] [--clients 50] [--calls-per-client 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from daemon import __version__
from daemon.client import AsyncControlClient, ControlClient
from daemon.errors import Unavailable

BIN = Path(sys.executable).parent
INFRAD = BIN / "infrad"
INFRACTL = BIN / "infractl"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="process runs of each command")
    parser.add_argument("--calls", type=int, default=2000, help="calls by the single client")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument(
        "--calls-per-client", type=int, default=200, help="calls by each concurrent client"
    )
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs/calls first")
    args = parser.parse_args(argv)
    for name in ("runs", "calls", "clients", "calls_per_client"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# --- the daemon under test --------------------------------------------------------------------


@dataclass(frozen=True)
class Daemon:
    root: Path
    socket: Path
    env: dict[str, str]


def daemon_environ(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_INFRA_")}
    env.pop("NOTIFY_SOCKET", None)
    # An installed copy runs from cached bytecode; with PYTHONDONTWRITEBYTECODE every run would
    # compile daemon/*.py again and the figures would be of the compiler. The cache goes into
    # the benchmark's own directory, not beside the sources.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env.update(
        {
            "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
            "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
            "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
            "OPENCLAW_INFRA_TIMEZONE": "UTC",
            "OPENCLAW_INFRA_LOG_FORMAT": "json",
            "HOME": str(root / "home"),
        }
    )
    return env


@contextmanager
def running_daemon() -> Iterator[Daemon]:
    # A short path under /tmp: a Unix socket path is limited to about 100 bytes.
    root = Path(tempfile.mkdtemp(prefix="ocb-", dir="/tmp"))
    (root / "home").mkdir()
    daemon = Daemon(root, root / "s.sock", daemon_environ(root))
    log_path = root / "infrad.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen([str(INFRAD)], env=daemon.env, stdout=log, stderr=log, cwd=root)
    try:
        wait_until_answering(proc, daemon.socket, log_path)
        yield daemon
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def wait_until_answering(proc: subprocess.Popen[bytes], sock: Path, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"infrad exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with ControlClient(sock, timeout=5) as client:
                client.call("version")
        except Unavailable:
            time.sleep(0.02)
            continue
        return
    raise SystemExit(f"infrad did not answer on {sock} within 30 s:\n{log.read_text()}")


# --- whole processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessCase:
    label: str
    argv: list[str]


def time_process(case: ProcessCase, daemon: Daemon) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        case.argv,
        env=daemon.env,
        cwd=daemon.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{case.label} exited {done.returncode}: {done.stderr.decode().strip()}")
    return elapsed


def time_processes(
    cases: list[ProcessCase], daemon: Daemon, runs: int, warmup: int
) -> dict[str, list[float]]:
    """Round-robin over the cases, so that a slow patch of the machine hits them all alike."""
    for _ in range(warmup):
        for case in cases:
            time_process(case, daemon)
    times: dict[str, list[float]] = {case.label: [] for case in cases}
    for _ in range(runs):
        for case in cases:
            times[case.label].append(time_process(case, daemon))
    return times


# --- socket round trips ----------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTrips:
    label: str
    latencies_ns: list[int]
    wall_s: float

    @property
    def calls(self) -> int:
        return len(self.latencies_ns)

    def percentile_ms(self, p: int) -> float:
        cuts = statistics.quantiles(self.latencies_ns, n=100, method="inclusive")
        return cuts[p - 1] / 1e6

    @property
    def per_second(self) -> float:
        return self.calls / self.wall_s


async def call_repeatedly(client: AsyncControlClient, method: str, calls: int) -> list[int]:
    latencies = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        await client.call(method)
        latencies.append(time.perf_counter_ns() - start)
    return latencies


async def round_trips(
    sock: Path, label: str, method: str, *, clients: int, calls_each: int, warmup: int
) -> RoundTrips:
    """``clients`` connections, opened and warmed up before the clock starts, all calling
    ``method`` ``calls_each`` times back to back."""
    connected = [await AsyncControlClient(sock).connect() for _ in range(clients)]
    try:
        for client in connected:
            await call_repeatedly(client, method, warmup)
        start = time.perf_counter()
        per_client = await asyncio.gather(
            *(call_repeatedly(client, method, calls_each) for client in connected)
        )
        wall = time.perf_counter() - start
    finally:
        for client in connected:
            await client.close()
    return RoundTrips(label, [ns for one in per_client for ns in one], wall)


async def measure_round_trips(sock: Path, args: argparse.Namespace) -> list[RoundTrips]:
    warmup = max(args.warmup, 1) * 10
    single = {"clients": 1, "calls_each": args.calls, "warmup": warmup}
    return [
        await round_trips(sock, "version, 1 client (floor)", "version", **single),
        await round_trips(sock, "status, 1 client", "status", **single),
        await round_trips(
            sock,
            f"status, {args.clients} clients",
            "status",
            clients=args.clients,
            calls_each=args.calls_per_client,
            warmup=warmup,
        ),
    ]


# --- report -----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def print_processes(times: dict[str, list[float]], baseline: str, runs: int) -> None:
    base = statistics.median(times[baseline])
    print(f"\nwhole process, {runs} runs each, interleaved (ms)")
    header = f"{'command':<36} {'median':>8} {'p90':>8} {'min':>8}   vs baseline"
    print(header)
    print("-" * len(header))
    for label, samples in times.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10, method="inclusive")[8]
        if label == baseline:
            versus = "1.00x (baseline)"
        else:
            versus = f"{median / base:.2f}x  (+{(median - base) * 1000:.1f} ms)"
        print(f"{label:<36} {_ms(median)} {_ms(p90)} {_ms(min(samples))}   {versus}")


def print_round_trips(results: list[RoundTrips]) -> None:
    floor = results[0].percentile_ms(50)
    print("\nsocket round trip, persistent clients in one asyncio loop (ms)")
    header = (
        f"{'method, clients':<28} {'calls':>7} {'p50':>8} {'p99':>8} {'calls/s':>9}   p50 vs floor"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        p50, p99 = r.percentile_ms(50), r.percentile_ms(99)
        print(
            f"{r.label:<28} {r.calls:>7} {p50:8.3f} {p99:8.3f} {r.per_second:>9,.0f}"
            f"   {p50 / floor:.2f}x"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for program in (INFRAD, INFRACTL):
        if not os.access(program, os.X_OK):
            raise SystemExit(f"{program} is missing: install the project (pip install -e .)")
    print(
        f"openclaw-infra {__version__} control channel; Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )
    with running_daemon() as daemon:
        print(f"infrad {INFRAD}, socket {daemon.socket}")
        baseline = "python -c pass"
        cases = [
            ProcessCase(baseline, [sys.executable, "-c", "pass"]),
            ProcessCase("infractl --version", [str(INFRACTL), "--version"]),
            ProcessCase(
                "infractl --socket S status --json",
                [str(INFRACTL), "--socket", str(daemon.socket), "status", "--json"],
            ),
        ]
        times = time_processes(cases, daemon, args.runs, args.warmup)
        results = asyncio.run(measure_round_trips(daemon.socket, args))
    print_processes(times, baseline, args.runs)
    print_round_trips(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
