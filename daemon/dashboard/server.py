"""The dashboard's server: uvicorn, inside the daemon's event loop, on 127.0.0.1 only.

``uvicorn.Server.serve()`` would install its own SIGINT/SIGTERM handlers over the daemon's, so
the lifecycle is driven by hand, as uvicorn spells it out: ``startup()`` on a socket bound here
(port 0 becomes a free port, known at once), and on stop ``shutdown()``, which stops accepting,
lets open requests finish within the grace period and cancels the rest. Without ``main_loop()``
nothing ticks ten times a second; what it would refresh (the Date and Server headers) is off.
A dashboard that cannot bind leaves the daemon up and says why in health and in
``dashboard.url``, as the memory store does.
"""

from __future__ import annotations

import socket
from datetime import tzinfo

import uvicorn

from daemon.config.settings import Settings
from daemon.dashboard.access import Access
from daemon.dashboard.app import build_app
from daemon.dashboard.pages import ApiCall
from daemon.logs import get_logger
from jobs.checks import HealthCheck, HealthStatus

log = get_logger(__name__)

HOST = "127.0.0.1"
#: Open requests get this long to finish when the daemon stops.
STOP_GRACE_S = 3


class Dashboard:
    def __init__(self, port: int, call: ApiCall, zone: tzinfo) -> None:
        self.wanted_port = port
        self.call = call
        self.zone = zone
        self.port: int | None = None
        self.access: Access | None = None
        self.error: str | None = None
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f"Dashboard(port={self.port or self.wanted_port}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> str | None:
        return f"http://{HOST}:{self.port}/" if self.running else None

    @property
    def url(self) -> str | None:
        """The access link: the address with this start's token."""
        if not self.running or self.access is None:
            return None
        return f"{self.address}?token={self.access.token}"

    async def start(self) -> None:
        try:
            sock = _bind(self.wanted_port)
        except OSError as exc:
            self.error = f"cannot listen on {HOST}:{self.wanted_port}: {exc.strerror or exc}"
            log.error("dashboard.unavailable", error=self.error)
            return
        self.port = int(sock.getsockname()[1])
        self.access = Access.new(self.port)
        config = uvicorn.Config(
            build_app(self.call, self.access, self.zone),
            log_config=None,  # the daemon's own logging, redaction included
            access_log=False,  # request lines hold the access token
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=STOP_GRACE_S,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server, self._socket = server, sock
        log.info("dashboard.listening", address=self.address)

    async def stop(self) -> None:
        server, sock = self._server, self._socket
        if server is None:
            return
        self._server = self._socket = None
        await server.shutdown(sockets=[sock] if sock else None)
        log.info("dashboard.stopped")

    def health_check(self) -> HealthCheck:
        if self.running:
            return HealthCheck("dashboard", HealthStatus.OK, f"listening on {self.address}")
        if self.error:
            return HealthCheck("dashboard", HealthStatus.DEGRADED, self.error)
        return HealthCheck("dashboard", HealthStatus.OK, "not started")


def _bind(port: int) -> socket.socket:
    # IPPROTO_TCP named, not implied: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says TCP, and without it a response's headers and body in two
    # writes meet the peer's delayed ACK: 40 ms added to every page.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def open_dashboard(settings: Settings, call: ApiCall) -> Dashboard | None:
    """The dashboard, ready to start, or None when the setting leaves it off."""
    if settings.dashboard.port is None:
        log.info("dashboard.off", reason="no OPENCLAW_INFRA_DASHBOARD__PORT")
        return None
    return Dashboard(settings.dashboard.port, call, settings.zone)
