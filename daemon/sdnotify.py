"""systemd's notify protocol: READY, STATUS, STOPPING and watchdog pings over a datagram.

A no-op without ``NOTIFY_SOCKET``, so the same daemon runs under launchd, a terminal or tests.
The environment is read once, at start-up, by ``from_environ``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from datetime import timedelta

from daemon.logs import get_logger

log = get_logger(__name__)


class Notifier:
    def __init__(self, address: str | None, watchdog: timedelta | None = None) -> None:
        self.address = address
        self.watchdog = watchdog
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def __repr__(self) -> str:
        return f"Notifier(address={self.address!r}, watchdog={self.watchdog})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        address = environ.get("NOTIFY_SOCKET") or None
        watchdog = None
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        if usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            watchdog = timedelta(microseconds=int(usec))
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines; False (and a log line) if systemd could not be told."""
        if self._sock is None or not self.address:
            return False
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            self._sock.sendto(message, address)
        except OSError as exc:
            log.warning("sdnotify.failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.notify(STATUS=status)

    def stopping(self) -> bool:
        return self.notify(STOPPING="1", STATUS="stopping")

    def ping(self) -> bool:
        return self.notify(WATCHDOG="1")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
