"""The dashboard's cost, as ratios against the raw socket call measured in the same run.

One ``infrad`` on the sample home (its first ingest done) with the dashboard on a free port.
Interleaved, round after round, so that a slow patch of the machine hits every case alike:

- the raw socket call ``memory.search`` on a persistent connection (the baseline);
- the same search through the dashboard: ``GET /memory?q=...`` on a persistent HTTP connection
  with the session cookie (``memory.stats`` and ``memory.search``, then the page rendered);
- ``infractl memory search QUERY --json`` as a whole process (what a person at a shell pays);
- page loads: ``GET /runs`` (the job table and every job's runs, the chart data, the page),
  ``GET /runs`` with its four static files revalidated as a browser does (304s), and the
  empty memory page.

    python bench/dashboard.py [--runs 40] [--warmup 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from daemon import __version__
from daemon.client import ControlClient
from daemon.errors import InfraError
from daemon.sample.home import write_sample_home

BIN = Path(sys.executable).parent
INFRAD = BIN / "infrad"
INFRACTL = BIN / "infractl"
QUERY = "Where does Mira live?"
K = 20
STATIC = ["uPlot.min.css", "dashboard.css", "uPlot.iife.min.js", "dashboard.js"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=40, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    return args


@dataclass(frozen=True)
class Daemon:
    root: Path
    socket: Path
    env: dict[str, str]


def daemon_environ(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_INFRA_")}
    env.pop("NOTIFY_SOCKET", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # figures of the program, not of the compiler
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env.update(
        {
            "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
            "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
            "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
            "OPENCLAW_INFRA_TIMEZONE": "UTC",
            "OPENCLAW_INFRA_LOG_FORMAT": "json",
            "OPENCLAW_INFRA_DASHBOARD__PORT": "0",
            "HOME": str(root / "home"),
        }
    )
    return env


@contextmanager
def running_daemon() -> Iterator[Daemon]:
    root = Path(tempfile.mkdtemp(prefix="ocb-", dir="/tmp"))  # short: a socket path is short
    (root / "home").mkdir()
    write_sample_home(root / "openclaw")
    daemon = Daemon(root, root / "s.sock", daemon_environ(root))
    log_path = root / "infrad.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen([str(INFRAD)], env=daemon.env, stdout=log, stderr=log, cwd=root)
    try:
        wait_for(lambda: _ingested(daemon), proc, log_path, "the first ingest")
        call(daemon, "pause", {"job": "ingest"})  # nothing else running while we measure
        yield daemon
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def call(daemon: Daemon, method: str, params: dict[str, Any] | None = None) -> Any:
    with ControlClient(daemon.socket, timeout=30) as client:
        return client.call(method, params)


def _ingested(daemon: Daemon) -> bool:
    runs = call(daemon, "runs", {"job": "ingest"})["runs"]
    return any(r["status"] == "success" for r in runs)


def wait_for(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"infrad exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if ready():
                return
        except InfraError:
            pass  # not answering yet
        time.sleep(0.05)
    raise SystemExit(f"infrad: no {what} within 120 s:\n{log.read_text()}")


def cases(
    daemon: Daemon, client: ControlClient, web: httpx.Client
) -> dict[str, Callable[[], None]]:
    search = {"query": QUERY, "k": K}

    def socket_search() -> None:
        assert client.call("memory.search", search)["results"]

    def dashboard_search() -> None:
        page = web.get("/memory", params={"q": QUERY})
        assert page.status_code == 200
        assert 'class="result"' in page.text

    def cli_search() -> None:
        done = subprocess.run(
            [str(INFRACTL), "memory", "search", QUERY, "-k", str(K), "--json"],
            env=daemon.env,
            cwd=daemon.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"infractl exited {done.returncode}: {done.stderr.decode().strip()}")

    def runs_page() -> None:
        assert web.get("/runs").status_code == 200

    tags = {name: web.get(f"/static/{name}").headers["etag"] for name in STATIC}

    def runs_page_and_assets() -> None:
        assert web.get("/runs").status_code == 200
        for name, tag in tags.items():
            assert web.get(f"/static/{name}", headers={"if-none-match": tag}).status_code == 304

    def memory_page() -> None:
        assert web.get("/memory").status_code == 200

    return {
        "socket memory.search": socket_search,
        "dashboard GET /memory?q=": dashboard_search,
        "infractl memory search (process)": cli_search,
        "dashboard GET /runs": runs_page,
        "dashboard /runs + 4 static (304)": runs_page_and_assets,
        "dashboard GET /memory (empty)": memory_page,
    }


def measure(work: dict[str, Callable[[], None]], runs: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for case in work.values():
            case()
    times: dict[str, list[float]] = {label: [] for label in work}
    for _ in range(runs):
        for label, case in work.items():
            start = time.perf_counter()
            case()
            times[label].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], baseline: str, runs: int) -> None:
    base = statistics.median(times[baseline])
    print(f"\n{runs} rounds, interleaved (ms)")
    header = f"{'case':<36} {'median':>8} {'p90':>8} {'min':>8}   vs socket search"
    print(header)
    print("-" * len(header))
    for label, samples in times.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10, method="inclusive")[8]
        versus = "1.00x (baseline)" if label == baseline else f"{median / base:.2f}x"
        print(
            f"{label:<36} {median * 1000:8.2f} {p90 * 1000:8.2f} {min(samples) * 1000:8.2f}"
            f"   {versus}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for program in (INFRAD, INFRACTL):
        if not os.access(program, os.X_OK):
            raise SystemExit(f"{program} is missing: install the project (pip install -e .)")
    print(
        f"openclaw-infra {__version__} dashboard; Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )
    with running_daemon() as daemon:
        url = call(daemon, "dashboard.url")["url"]
        address = url.split("?")[0]
        print(f"infrad on the sample home, dashboard at {address}; query {QUERY!r}, k={K}")
        with (
            ControlClient(daemon.socket, timeout=30) as client,
            httpx.Client(base_url=address.rstrip("/")) as web,
        ):
            signed = web.get(url, follow_redirects=True)  # the token traded for the cookie
            assert signed.status_code == 200
            times = measure(cases(daemon, client, web), args.runs, args.warmup)
    report(times, "socket memory.search", args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
