"""The control socket: a Unix stream socket speaking the newline-delimited JSON protocol.

Only the user the daemon runs as may talk to it: the directory is 0700, the socket is bound
under a temporary name, made 0600 and only then renamed into place (so it is never reachable
with looser permissions), and every connection's peer uid is checked. A bad request of any
kind gets an error reply; nothing a client sends can stop the server serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from daemon.errors import Busy, Forbidden, InfraError, Internal, TooLarge, Unavailable
from daemon.logs import get_logger
from daemon.protocol import MAX_LINE_BYTES, RequestError, failure, parse_request, success
from stores.atomic import ensure_private_dir

log = get_logger(__name__)

Dispatch = Callable[[str, dict[str, Any]], Awaitable[Any]]

_LOCAL_PEERCRED = 0x001  # macOS <sys/un.h>; SOL_LOCAL is 0


def peer_uid(sock: Any) -> int:
    """The uid of the process at the other end (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS)."""
    if hasattr(socket, "SO_PEERCRED"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        return int(uid)
    if sys.platform == "darwin":
        raw = sock.getsockopt(0, _LOCAL_PEERCRED, 76)  # struct xucred
        _version, uid = struct.unpack_from("=II", raw)
        return int(uid)
    raise OSError("cannot read peer credentials on this platform")


class ControlServer:
    def __init__(
        self,
        path: Path,
        dispatch: Dispatch,
        *,
        allowed_uid: int | None = None,
        max_connections: int = 256,
    ) -> None:
        self.path = path
        self.dispatch = dispatch
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._inode: int | None = None

    def __repr__(self) -> str:
        return f"ControlServer({str(self.path)!r}, connections={len(self._connections)})"

    async def start(self) -> None:
        sock = await asyncio.to_thread(bind_private_socket, self.path)
        self._inode = self.path.stat().st_ino
        self._server = await asyncio.start_unix_server(
            self._accept, sock=sock, limit=MAX_LINE_BYTES + 1
        )
        log.info("socket.listening", path=str(self.path))

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        await self.stop_accepting()
        for task in list(self._connections):
            task.cancel("the daemon is stopping")
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._unlink_if_ours()

    def _unlink_if_ours(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        refusal = self._refusal(writer)
        if refusal is not None:
            writer.write(failure(None, refusal))
            await writer.drain()
            return
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return  # the client went away, perhaps mid-line: nothing to answer
            except asyncio.LimitOverrunError:
                writer.write(failure(None, TooLarge(f"request line over {MAX_LINE_BYTES} bytes")))
                await writer.drain()
                return  # the rest of that line cannot be framed; the client must reconnect
            if not line.strip():
                continue
            writer.write(await self._respond(line))
            await writer.drain()

    def _refusal(self, writer: asyncio.StreamWriter) -> InfraError | None:
        if len(self._connections) > self.max_connections:
            return Busy(f"too many connections (limit {self.max_connections}); try again")
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
        except OSError as exc:
            log.warning("socket.peer_unknown", error=str(exc))
            return Forbidden("cannot tell who is connecting; refused")
        if uid != self.allowed_uid:
            log.warning("socket.refused", peer_uid=uid)
            return Forbidden(f"uid {uid} may not use this daemon")
        return None

    async def _respond(self, line: bytes) -> bytes:
        try:
            request = parse_request(line)
        except RequestError as exc:
            return failure(exc.request_id, exc.error)
        try:
            result = await self.dispatch(request.method, request.params)
            return success(request.id, result)
        except InfraError as exc:
            return failure(request.id, exc)
        except Exception as exc:
            log.error("socket.internal_error", method=request.method, exc_info=exc)
            return failure(request.id, Internal(f"{request.method} failed; see the daemon log"))


def bind_private_socket(path: Path) -> socket.socket:
    """Bind a listening socket at ``path`` that is 0600 from the moment it is reachable."""
    ensure_private_dir(path.parent)
    _clear_stale(path)
    temporary = path.parent / f".s{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(temporary))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return sock


def _clear_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise Unavailable(f"{path} exists and is not a socket; move it away or set another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(os.fspath(path))
    except OSError:
        path.unlink()  # nobody listening: left behind by a daemon that died
        return
    finally:
        probe.close()
    raise Unavailable(f"another daemon is already serving {path}")
