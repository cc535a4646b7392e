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
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from daemon.errors import Busy, Forbidden, InfraError, Internal, Timeout, TooLarge, Unavailable
from daemon.logs import get_logger
from daemon.paths import ENV_PREFIX
from daemon.protocol import MAX_LINE_BYTES, RequestError, failure, parse_request, success
from stores.atomic import ensure_private_dir

log = get_logger(__name__)

Dispatch = Callable[[str, dict[str, Any]], Awaitable[Any]]

_LOCAL_PEERCRED = 0x001  # macOS <sys/un.h>; SOL_LOCAL is 0
_LOCAL_PEERPID = 0x002


def peer_credentials(sock: Any) -> tuple[int | None, int]:
    """(pid, uid) of the process at the other end: SO_PEERCRED on Linux, LOCAL_PEERCRED and
    LOCAL_PEERPID on macOS. The pid is None where the platform does not say."""
    if hasattr(socket, "SO_PEERCRED"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", raw)
        return int(pid), int(uid)
    if sys.platform == "darwin":
        raw = sock.getsockopt(0, _LOCAL_PEERCRED, 76)  # struct xucred
        _version, uid = struct.unpack_from("=II", raw)
        try:
            pid = struct.unpack("=i", sock.getsockopt(0, _LOCAL_PEERPID, 4))[0]
        except OSError:
            pid = None
        return pid, int(uid)
    raise OSError("cannot read peer credentials on this platform")


def peer_uid(sock: Any) -> int:
    """The uid of the process at the other end."""
    return peer_credentials(sock)[1]


@dataclass(frozen=True)
class ConnectionLimits:
    """Over either cap a new connection is answered ``busy`` and closed; a connection that sends
    no complete request line for ``idle_timeout`` seconds is closed, so that held connections
    cannot lock everyone else out."""

    max_connections: int = 256
    max_per_peer: int = 32
    idle_timeout: float = 300.0


class ControlServer:
    def __init__(
        self,
        path: Path,
        dispatch: Dispatch,
        *,
        allowed_uid: int | None = None,
        limits: ConnectionLimits | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.path = path
        self.dispatch = dispatch
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        limits = limits or ConnectionLimits()
        if max_connections is not None:
            limits = replace(limits, max_connections=max_connections)
        self.limits = limits
        self._server: asyncio.Server | None = None
        self._sock: socket.socket | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._per_peer: Counter[int | None] = Counter()
        self._peer_of: dict[asyncio.Task[None], int | None] = {}
        self._busy_logged: dict[str, float] = {}
        self._busy_refused: Counter[str] = Counter()
        self._inode: int | None = None

    @property
    def max_connections(self) -> int:
        return self.limits.max_connections

    def __repr__(self) -> str:
        return f"ControlServer({str(self.path)!r}, connections={len(self._connections)})"

    async def bind(self) -> None:
        """Claim the socket path (refusing one another daemon serves); ``start`` serves it.
        Apart, so that a daemon claims its socket before it starts anything else."""
        if self._sock is None:
            self._sock = await asyncio.to_thread(bind_private_socket, self.path)
            self._inode = self.path.stat().st_ino

    async def start(self) -> None:
        fits = fd_headroom(self.limits.max_connections)
        if fits < self.limits.max_connections:
            log.warning("socket.cap_lowered", max_connections=fits, reason="open-files limit")
            self.limits = replace(self.limits, max_connections=fits)
        await self.bind()
        self._server = await asyncio.start_unix_server(
            self._accept, sock=self._sock, limit=MAX_LINE_BYTES + 1
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
        elif self._sock is not None:
            self._sock.close()  # bound, never served
        self._unlink_if_ours()

    def _unlink_if_ours(self) -> None:
        if self._inode is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            refusal = self._admit(task, writer)
            if refusal is not None:
                await self._refuse(reader, writer, refusal)
            else:
                await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            if task in self._peer_of:
                peer = self._peer_of.pop(task)
                self._per_peer[peer] -= 1
                if self._per_peer[peer] <= 0:
                    del self._per_peer[peer]
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refusal: InfraError
    ) -> None:
        """Say why, then wait briefly for the client to hang up: closing with its request
        unread would reset the connection, and a client could lose the line that says why."""
        writer.write(failure(None, refusal))
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(REFUSAL_LINGER_S):
                while await reader.read(MAX_LINE_BYTES):
                    pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle = self.limits.idle_timeout
        while True:
            try:
                async with asyncio.timeout(idle):
                    line = await reader.readuntil(b"\n")
            except TimeoutError:
                log.info("socket.idle_closed", idle_s=idle)
                writer.write(failure(None, Timeout(f"no request for {idle:g}s; connection closed")))
                await writer.drain()
                return
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

    def _log_busy(self, reason: str, limit: int) -> None:
        """One line a minute per cap, with how many were refused: a flood stays one line."""
        now = time.monotonic()
        self._busy_refused[reason] += 1
        if now - self._busy_logged.get(reason, -BUSY_LOG_EVERY_S) >= BUSY_LOG_EVERY_S:
            log.warning(
                "socket.busy", reason=reason, limit=limit, refused=self._busy_refused[reason]
            )
            self._busy_logged[reason] = now
            self._busy_refused[reason] = 0

    def _admit(self, task: asyncio.Task[None], writer: asyncio.StreamWriter) -> InfraError | None:
        """Why this connection is refused, or None once it is counted against its peer's cap.
        A peer is a process (all of the user's, on a platform that does not give the pid)."""
        limits = self.limits
        if len(self._connections) > limits.max_connections:
            self._log_busy("max_connections", limits.max_connections)
            return Busy(
                f"daemon busy: {limits.max_connections} connections are open, the most it takes"
                f" ({ENV_PREFIX}SOCKET__MAX_CONNECTIONS); try again"
            )
        try:
            pid, uid = peer_credentials(writer.get_extra_info("socket"))
        except OSError as exc:
            log.warning("socket.peer_unknown", error=str(exc))
            return Forbidden("cannot tell who is connecting; refused")
        if uid != self.allowed_uid:
            log.warning("socket.refused", peer_uid=uid)
            return Forbidden(f"uid {uid} may not use this daemon")
        if self._per_peer[pid] >= limits.max_per_peer:
            self._log_busy("max_per_peer", limits.max_per_peer)
            return Busy(
                f"daemon busy: process {pid} already has {limits.max_per_peer} connections open,"
                f" the most one process may ({ENV_PREFIX}SOCKET__MAX_PER_PEER); close some"
            )
        self._per_peer[pid] += 1
        self._peer_of[task] = pid
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


#: How often a refusal for being over a cap is logged (with the count since the last line).
BUSY_LOG_EVERY_S = 60.0
#: How long a refused connection is held open for its client to read why and hang up.
REFUSAL_LINGER_S = 2.0
#: File descriptors kept for the daemon's own files (databases, Chroma, the watcher, logs).
FD_RESERVE = 256


def fd_headroom(connections: int) -> int:
    """How many connections fit under the open-files limit beside the daemon's own files, after
    raising the soft limit towards the hard one if need be. Past the limit ``accept`` fails and
    clients wait unanswered, which is worse than being told ``busy``."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = connections + FD_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= need:
        return connections
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return max(1, min(connections, soft - FD_RESERVE))


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
