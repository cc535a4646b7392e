"""Clients of the control socket: a blocking one for ``infractl`` and an asyncio one for tools.

Both turn an error reply back into the ``InfraError`` the server raised, and a missing or dead
daemon into ``Unavailable`` with a message that says what to do.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
from pathlib import Path
from typing import Any

from daemon.errors import Busy, Forbidden, InfraError, Internal, Unavailable, from_wire
from daemon.protocol import request


def _not_running(path: Path) -> Unavailable:
    return Unavailable(
        f"no daemon answering at {path}; start it with `infrad` "
        "(or `systemctl --user start openclaw-infra`), or pass --socket"
    )


def _cannot_connect(path: Path, exc: OSError) -> InfraError:
    """Why nothing answers at ``path``: every way a connect fails is one line for infractl.

    No socket, or one nobody listens on, is "no daemon"; a socket whose queue of connections
    waiting to be accepted is full has a daemon behind it that is too busy to take one more.
    """
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError | NotADirectoryError):
        return _not_running(path)
    if isinstance(exc, PermissionError):
        return Forbidden(f"not allowed to open {path}; is it another user's daemon?")
    if isinstance(exc, TimeoutError | BlockingIOError):
        return Busy(
            f"daemon busy: the daemon at {path} accepts no more connections right now; try again"
        )
    # e.g. a path longer than sockaddr_un allows: nothing can be listening there either.
    return Unavailable(f"cannot connect to {path}: {exc.strerror or exc}")


def _result(path: Path, line: bytes) -> Any:
    if not line:
        raise Unavailable(
            f"the daemon at {path} closed the connection without answering"
            " (stopping, or it dropped an idle connection); try again"
        )
    if not line.endswith(b"\n"):
        raise Unavailable(f"the daemon at {path} closed the connection mid-reply")
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise Internal(f"unreadable reply from {path}: {exc}") from None
    if not isinstance(reply, dict):
        raise Internal(f"unreadable reply from {path}: not an object")
    if reply.get("ok"):
        return reply.get("result")
    raise from_wire(reply.get("error") or {})


#: How the server's notice of an idle connection closed begins (``daemon.server``).
_IDLE_CLOSED = b'"id":null,"ok":false,"error":{"code":"timeout","message":"no request for'


class ControlClient:
    """One connection, requests answered in order. Usable as a context manager."""

    def __init__(self, path: Path, timeout: float | None = 30.0) -> None:
        self.path = path
        self._ids = itertools.count(1)
        self._connect(timeout)

    def _connect(self, timeout: float | None) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(os.fspath(self.path))
        except OSError as exc:
            self._sock.close()
            raise _cannot_connect(self.path, exc) from None
        self._reader = self._sock.makefile("rb")

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        if timeout is not None:
            self._sock.settimeout(timeout)
        line = self._exchange(method, params)
        if _IDLE_CLOSED in line:
            # The daemon closed this connection for being idle before it read the request, so
            # sending it again on a fresh connection cannot run anything twice.
            self.close()
            self._connect(self._sock.gettimeout())
            line = self._exchange(method, params)
        return _result(self.path, line)

    def _exchange(self, method: str, params: dict[str, Any] | None) -> bytes:
        try:
            # Hung up before reading the request: a refusal (busy, forbidden) it sent on
            # accepting is still there to read, and says why.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._sock.sendall(request(method, params, id=next(self._ids)))
            line: bytes = self._reader.readline()
        except TimeoutError:
            raise Unavailable(f"no reply from {self.path} in time") from None
        except ConnectionResetError:
            line = b""
        return line


class AsyncControlClient:
    """The same protocol from asyncio code: benchmarks, the bot's tests, other tools."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)

    async def connect(self) -> AsyncControlClient:
        import asyncio

        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                os.fspath(self.path), limit=2**24
            )
        except OSError as exc:
            raise _cannot_connect(self.path, exc) from None
        return self

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._writer.write(request(method, params, id=next(self._ids)))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._writer.drain()  # as in ControlClient.call: a refusal is there to read
        try:
            line = await self._reader.readline()
        except ConnectionResetError:
            line = b""
        return _result(self.path, line)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


def serving_daemon(path: Path, timeout: float = 5.0) -> dict[str, Any] | None:
    """What the daemon answering at ``path`` says of itself (its ``status``: pid, state_dir), or
    None when no daemon answers there (no socket, or one nobody listens on)."""
    try:
        client = ControlClient(path, timeout)
    except Unavailable:
        return None
    except InfraError as exc:  # busy, or another user's: somebody is there all the same
        return {"error": exc.message}
    with client:
        try:
            return dict(client.call("status"))
        except InfraError as exc:
            return {"error": exc.message}
