"""Connections held open cannot lock the daemon's users out: over a cap a client is told
``busy`` (and ``infractl`` exits 15 saying so, never "no daemon"), and an idle connection is
closed after the idle timeout, which frees its place.

The caps run an in-process server, where a limit of a few connections is quick to reach; the
real daemon in a subprocess shows what ``infractl`` prints. Nothing here times anything: each
wait polls for its condition with a deadline that only guards against a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.client import ControlClient
from daemon.errors import Busy, InfraError, Unavailable
from daemon.protocol import request
from daemon.server import ConnectionLimits, ControlServer
from tests.support import REPO, DaemonProcess, infractl, running_daemon, wait_for
from tests.test_socket import RawConnection, assert_error


class Gate:
    """A dispatch whose ``slow`` method waits until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def dispatch(self, method: str, params: dict[str, Any]) -> Any:
        if method == "slow":
            await self.open.wait()
        return {"method": method}


@contextlib.asynccontextmanager
async def serving(path: Path, gate: Gate | None = None, **limits: Any) -> AsyncIterator[Path]:
    server = ControlServer(path, (gate or Gate()).dispatch, limits=ConnectionLimits(**limits))
    await server.start()
    try:
        yield path
    finally:
        await server.close()


@contextlib.contextmanager
def held(path: Path, count: int) -> Iterator[list[RawConnection]]:
    """``count`` connections, each answered once, so the server has counted them all."""
    connections: list[RawConnection] = []
    try:
        for n in range(count):
            conn = RawConnection(path)
            connections.append(conn)
            conn.send(request("version", id=n))
            assert conn.reply()["ok"] is True
        yield connections
    finally:
        for conn in connections:
            conn.close()


def outcome(path: Path) -> str:
    try:
        with ControlClient(path, timeout=10) as client:
            client.call("version")
    except InfraError as exc:
        return f"{exc.code.value}: {exc.message}"
    return "served"


async def test_over_the_cap_every_new_client_is_told_busy_never_no_daemon(root: Path) -> None:
    path = root / "s.sock"
    async with serving(path, max_connections=4, max_per_peer=100):

        def attempts() -> set[str]:
            with held(path, 4):
                # Many tries: a refusal sent before the request was read used to come back as
                # a broken pipe, which the client took for "no daemon".
                return {outcome(path).split(" (")[0] for _ in range(200)}

        seen = await asyncio.to_thread(attempts)
        assert seen == {"busy: daemon busy: 4 connections are open, the most it takes"}
        assert await asyncio.to_thread(outcome, path) == "served"  # the held ones are gone


async def test_one_process_over_its_own_cap_is_busy_while_others_are_served(root: Path) -> None:
    path = root / "s.sock"
    other_process = (
        "import sys; from pathlib import Path; from daemon.client import ControlClient;"
        "print(ControlClient(Path(sys.argv[1])).call('version')['method'])"
    )
    async with serving(path, max_connections=100, max_per_peer=3):

        def attempts() -> tuple[str, str]:
            with held(path, 3):
                mine = outcome(path)
                theirs = subprocess.run(
                    [sys.executable, "-c", other_process, os.fspath(path)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                    cwd=REPO,
                )
                return mine, theirs.stdout.strip()

        mine, theirs = await asyncio.to_thread(attempts)
    assert mine.startswith(f"busy: daemon busy: process {os.getpid()} already has 3"), mine
    assert theirs == "version"


async def test_an_idle_connection_is_told_and_closed(root: Path) -> None:
    path = root / "s.sock"
    with capture_logs() as logs:
        async with serving(path, idle_timeout=0.2):

            def idle() -> tuple[dict[str, Any], bool]:
                with RawConnection(path) as conn:
                    return conn.reply(), conn.is_closed_by_server()

            said, closed = await asyncio.to_thread(idle)
    assert_error(said, "timeout")
    assert "no request for 0.2s" in said["error"]["message"]
    assert closed
    assert any(e["event"] == "socket.idle_closed" for e in logs)


async def test_a_client_whose_idle_connection_was_closed_asks_again_on_a_new_one(
    root: Path,
) -> None:
    """A long-lived client (a tool that keeps one connection) is not broken by the timeout."""
    path = root / "s.sock"
    server = ControlServer(path, Gate().dispatch, limits=ConnectionLimits(idle_timeout=0.2))
    await server.start()
    try:

        def call_twice() -> list[Any]:
            with ControlClient(path) as client:
                first = client.call("version")
                wait_for(lambda: not server._connections, what="the idle connection to close")
                return [first, client.call("status")]

        assert await asyncio.to_thread(call_twice) == [{"method": "version"}, {"method": "status"}]
    finally:
        await server.close()


async def test_a_request_being_answered_is_not_idle(root: Path) -> None:
    """A slow method outlives the idle timeout: its connection waits for the answer."""
    path = root / "s.sock"
    gate = Gate()
    async with serving(path, gate, idle_timeout=0.2):

        def slow_then_idle_elsewhere() -> dict[str, Any]:
            with RawConnection(path) as slow:
                slow.send(request("slow", id="slow"))
                # Another connection, idle from now on, is closed: the timeout has passed.
                with RawConnection(path) as other:
                    assert_error(other.reply(), "timeout")
                    assert other.is_closed_by_server()
                loop.call_soon_threadsafe(gate.open.set)
                return slow.reply()

        loop = asyncio.get_running_loop()
        reply = await asyncio.to_thread(slow_then_idle_elsewhere)
    assert (reply["ok"], reply["id"]) == (True, "slow")


async def test_idle_connections_holding_every_place_are_closed_and_free_it(root: Path) -> None:
    path = root / "s.sock"
    async with serving(path, max_connections=3, max_per_peer=100, idle_timeout=0.3):

        def locked_out_then_served() -> tuple[str, str]:
            with held(path, 3):
                first = outcome(path)
                wait_for(lambda: outcome(path) == "served", timeout=20, what="a free place")
                return first, outcome(path)

        first, later = await asyncio.to_thread(locked_out_then_served)
    assert first.startswith("busy: daemon busy:"), first
    assert later == "served"


def test_a_full_accept_queue_is_busy_not_no_daemon(root: Path) -> None:
    """A daemon too stalled to accept: its socket exists and is listened on."""
    path = root / "s.sock"
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as listener:
        listener.bind(os.fspath(path))
        listener.listen(0)
        queued = []
        with contextlib.suppress(BlockingIOError):
            for _ in range(64):
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                queued.append(conn)
                conn.setblocking(False)
                conn.connect(os.fspath(path))
        try:
            with pytest.raises(Busy, match=r"daemon busy: .* accepts no more connections"):
                ControlClient(path, timeout=0.5)
        finally:
            for conn in queued:
                conn.close()
    with pytest.raises(Unavailable, match="no daemon answering"):
        ControlClient(path, timeout=0.5)  # nobody listens now: that is "no daemon"


# --- the real daemon and infractl ----------------------------------------------------------------


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    import shutil
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="ocl-", dir="/tmp"))
    env = {
        "OPENCLAW_INFRA_SOCKET__MAX_CONNECTIONS": "8",
        "OPENCLAW_INFRA_SOCKET__MAX_PER_PEER": "100",
        "OPENCLAW_INFRA_SOCKET__IDLE_TIMEOUT": "2s",
    }
    try:
        with running_daemon(home, env=env) as daemon:
            yield daemon
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_infractl_says_daemon_busy_and_exits_15_then_gets_in_once_idle_ones_close(
    capped: DaemonProcess,
) -> None:
    env = {"OPENCLAW_INFRA_SOCKET_PATH": os.fspath(capped.socket)}
    with held(capped.socket, 8):
        busy = infractl("status", env=env)
        assert busy.returncode == 15, busy.stderr
        assert busy.stderr.startswith("infractl: daemon busy: 8 connections are open"), busy.stderr
        assert "no daemon" not in busy.stderr
        # The held connections say nothing more: the daemon closes them, and lets us in.
        wait_for(
            lambda: infractl("status", "--json", env=env).returncode == 0,
            timeout=30,
            what="the idle connections to be closed",
        )
    assert capped.events("socket.idle_closed")


def test_infractl_without_a_daemon_still_says_no_daemon(root: Path) -> None:
    done = infractl("status", env={"OPENCLAW_INFRA_SOCKET_PATH": os.fspath(root / "s.sock")})
    assert done.returncode == 3
    assert "no daemon answering" in done.stderr
