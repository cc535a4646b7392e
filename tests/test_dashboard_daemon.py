"""The dashboard as a part of the supervisor: off unless configured, a port it cannot have
leaves the daemon up (health says why), and stopping the daemon closes it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import httpx
import pytest

from daemon.errors import NotConfigured, Unavailable
from daemon.supervisor import Supervisor
from tests.support import REPO, settings_for


async def _infractl(sock: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daemon.cli.main",
        "--socket",
        str(sock),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_off_by_default_and_infractl_names_the_setting(root: Path) -> None:
    async with Supervisor(settings_for(root)) as sup:
        assert sup.dashboard is None
        with pytest.raises(NotConfigured, match="OPENCLAW_INFRA_DASHBOARD__PORT"):
            await sup.api.call("dashboard.url", {})
        assert (await sup.api.call("status", {}))["dashboard"] is None
        code, out, err = await _infractl(sup.socket_path, "dashboard", "--print-url")
    assert code == 20
    assert out == ""
    assert err.count("\n") == 1
    assert "the dashboard is off; set OPENCLAW_INFRA_DASHBOARD__PORT" in err


async def test_a_port_in_use_leaves_the_daemon_up_and_says_why(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_for(root, OPENCLAW_INFRA_DASHBOARD__PORT=str(port))
        async with Supervisor(settings) as sup:
            with pytest.raises(Unavailable, match=f"cannot listen on 127.0.0.1:{port}"):
                await sup.api.call("dashboard.url", {})
            health = await sup.api.call("health", {})
            (check,) = [c for c in health["checks"] if c["name"] == "dashboard"]
            assert check["status"] == "degraded"
            assert str(port) in check["detail"]
            assert (await sup.api.call("version", {}))["pid"] == os.getpid()


async def test_port_zero_picks_a_free_port_and_stopping_closes_it(root: Path) -> None:
    sup = Supervisor(settings_for(root, OPENCLAW_INFRA_DASHBOARD__PORT="0"))
    await sup.start()
    try:
        url = (await sup.api.call("dashboard.url", {}))["url"]
        address = url.split("?")[0]
        assert (await sup.api.call("status", {}))["dashboard"] == address
        health = await sup.api.call("health", {})
        assert {"name": "dashboard", "status": "ok", "detail": f"listening on {address}"} in (
            health["checks"]
        )
        async with httpx.AsyncClient() as client:
            signed = await client.get(url, follow_redirects=True)
            assert signed.status_code == 200
            assert 'id="job-health"' in signed.text
    finally:
        await sup.stop()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(address)


async def test_every_start_has_a_new_token(root: Path) -> None:
    settings = settings_for(root, OPENCLAW_INFRA_DASHBOARD__PORT="0")
    urls = []
    for _ in range(2):
        async with Supervisor(settings) as sup:
            urls.append((await sup.api.call("dashboard.url", {}))["url"])
    first, second = (u.split("token=")[1] for u in urls)
    assert first != second
    async with Supervisor(settings) as sup:
        address = (await sup.api.call("dashboard.url", {}))["address"]
        async with httpx.AsyncClient() as client:
            stale = await client.get(f"{address}?token={first}")
        assert stale.status_code == 401, "a link from an earlier start must not open this one"


def test_the_dashboard_reaches_the_daemon_only_through_its_calls() -> None:
    """No second way to the data: the dashboard's modules import no store and no API module
    (``stores.counts``, words for numbers, holds no data)."""
    from tests.test_layout import _graph

    reached = {t for m, ts in _graph().items() if m.startswith("daemon.dashboard") for t in ts}
    assert reached
    forbidden = ("stores", "daemon.api", "daemon.supervisor")
    assert sorted(t for t in reached if t.startswith(forbidden) and t != "stores.counts") == []


async def test_connections_to_the_dashboard_send_without_delay() -> None:
    """asyncio sets TCP_NODELAY on an accepted connection only when the listening socket says
    TCP; without it every page waits on the browser's delayed ACK (40 ms)."""
    from daemon.dashboard.server import _bind

    accepted: asyncio.Queue[int] = asyncio.Queue()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    listening = _bind(0)
    server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname())
        assert await asyncio.wait_for(accepted.get(), 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
