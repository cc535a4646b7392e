"""What an agent pays to search through MCP, against the raw socket call in the same run.

One ``infrad`` on the sample home (its first ingest done, ingest paused). Interleaved, round
after round, so that a slow patch of the machine hits every case alike:

- ``memory.search`` over the socket on a persistent connection (the baseline);
- the ``memory_search`` tool of ``infractl mcp --agent main``, called by the MCP SDK's own
  client over stdio on a session opened once (what an agent host pays per call);
- the ``memory_get`` tool around the first result;
- once, outside the rounds: starting ``infractl mcp`` until its tools are listed (what a host
  pays when it starts a session).

    python bench/mcp_calls.py [--runs 100] [--warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dashboard import Daemon, running_daemon
from mcp import Client, StdioServerParameters

from daemon import __version__
from daemon.client import AsyncControlClient

QUERY = "Where does Mira live?"
K = 5


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=100, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured rounds first")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    return args


def server(daemon: Daemon) -> StdioServerParameters:
    argv = ["-m", "daemon.cli", "--socket", str(daemon.socket), "mcp", "--agent", "main"]
    return StdioServerParameters(command=sys.executable, args=argv)


async def bench(daemon: Daemon, runs: int, warmup: int) -> dict[str, list[float]]:
    started = time.perf_counter()
    async with Client(server(daemon), mode="legacy") as mcp:
        tools = await mcp.list_tools()
        startup = time.perf_counter() - started
        assert any(t.name == "memory_search" for t in tools.tools)
        socket = await AsyncControlClient(daemon.socket).connect()
        try:
            first = (await socket.call("memory.search", {"query": QUERY, "k": K}))["results"][0]
            source = first["source"]
            around = {
                "session_id": source["session_id"],
                "entry_id": source["entry_ids"][0],
                "agent": source["agent_id"],
            }

            async def socket_search() -> None:
                assert (await socket.call("memory.search", {"query": QUERY, "k": K}))["results"]

            async def tool_search() -> None:
                result = await mcp.call_tool("memory_search", {"query": QUERY, "k": K})
                assert not result.is_error

            async def tool_get() -> None:
                result = await mcp.call_tool("memory_get", around)
                assert not result.is_error

            work: dict[str, Callable[[], Awaitable[None]]] = {
                "socket memory.search": socket_search,
                "MCP memory_search": tool_search,
                "MCP memory_get": tool_get,
            }
            times = await measure(work, runs, warmup)
        finally:
            await socket.close()
    times["infractl mcp start + list_tools"] = [startup]
    return times


async def measure(
    work: dict[str, Callable[[], Awaitable[None]]], runs: int, warmup: int
) -> dict[str, list[float]]:
    for _ in range(warmup):
        for case in work.values():
            await case()
    times: dict[str, list[float]] = {label: [] for label in work}
    for _ in range(runs):
        for label, case in work.items():
            start = time.perf_counter()
            await case()
            times[label].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], runs: int) -> None:
    base = statistics.median(times["socket memory.search"])
    print(f"openclaw-infra {__version__}; {runs} rounds, interleaved (ms)")
    print(f"{'case':34} {'p50':>8} {'p95':>8}  {'p50 vs socket':>13}")
    for label, values in times.items():
        p50 = statistics.median(values)
        p95 = _p95(values)
        print(f"{label:34} {p50 * 1000:8.2f} {p95 * 1000:8.2f}  {p50 / base:12.2f}x")


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20)[-1]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with running_daemon() as daemon:
        times: dict[str, Any] = asyncio.run(bench(daemon, args.runs, args.warmup))
    report(times, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
