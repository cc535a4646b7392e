"""The control socket against bad input: every malformed request gets a clear error (or its
connection is dropped), and the daemon goes on serving everyone else.

The corpus writes exact bytes to the real daemon in a subprocess, so what is tested is what a
misbehaving client can really send. The peer-uid and connection-limit checks run an in-process
server, because only there can the allowed uid be set to somebody else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.errors import Unavailable
from daemon.protocol import MAX_LINE_BYTES, RequestId, request, success
from daemon.server import ControlServer, bind_private_socket
from tests.support import DaemonProcess, running_daemon

#: How long a test waits for a reply before calling the daemon hung; a guard, not a timing claim.
REPLY_TIMEOUT = 10.0


class RawConnection:
    """One connection on which a test writes exact bytes and reads reply lines."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(REPLY_TIMEOUT)
        try:
            self.sock.connect(os.fspath(path))
        except OSError:
            self.sock.close()
            raise
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        # The server may stop reading and hang up mid-way (too_large, forbidden); what it said
        # before hanging up is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def read_line(self) -> bytes:
        """The next line with its newline; what is left (b"" at a clean end) once the server
        hangs up."""
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                rest, self._buffer = self._buffer, b""
                return rest
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def reply(self) -> dict[str, Any]:
        return parse_reply(self.read_line())

    def is_closed_by_server(self) -> bool:
        return self.read_line() == b""


def parse_reply(line: bytes) -> dict[str, Any]:
    assert line.endswith(b"\n"), f"no complete reply line, got {line[:200]!r}"
    reply = json.loads(line)
    assert isinstance(reply, dict), reply
    assert reply["v"] == 1, reply
    return reply


def exchange(path: Path, data: bytes) -> dict[str, Any]:
    """Send ``data`` on a fresh connection and return the first reply."""
    with RawConnection(path) as conn:
        conn.send(data)
        return conn.reply()


def line_of(**fields: Any) -> bytes:
    """A request line with exactly these fields, however wrong they are."""
    return json.dumps(fields).encode() + b"\n"


def assert_error(reply: dict[str, Any], code: str, request_id: RequestId = None) -> None:
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["message"], reply
    assert reply["id"] == request_id, reply


def assert_still_serving(daemon: DaemonProcess) -> None:
    """A good request on a fresh connection is answered, and nothing crashed on the way."""
    assert daemon.proc is not None
    reply = exchange(daemon.socket, request("status", id="still-there"))
    assert reply["ok"] is True, reply
    assert reply["id"] == "still-there"
    assert reply["result"]["pid"] == daemon.proc.pid
    assert not new_crashes(daemon)


#: Per daemon log, how many crashes have been reported already: each is blamed on one test only.
_CRASHES_REPORTED: dict[Path, int] = {}


def new_crashes(daemon: DaemonProcess) -> list[dict[str, Any]]:
    """Errors the daemon logged while serving a connection, since the last look."""
    crashes = [
        event
        for event in daemon.events()
        if event.get("level") == "error" and event.get("logger") in ("asyncio", "daemon.server")
    ]
    reported = _CRASHES_REPORTED.get(daemon.log_path, 0)
    _CRASHES_REPORTED[daemon.log_path] = len(crashes)
    return crashes[reported:]


@pytest.fixture(scope="module")
def infrad() -> Iterator[DaemonProcess]:
    """One daemon for the module; every test leaves it serving, and checks that it does."""
    home = Path(tempfile.mkdtemp(prefix="ocs-", dir="/tmp"))
    home.chmod(0o755)  # looser than a socket's directory may be: the daemon must tighten it
    try:
        # The test process is one peer, and holds a hundred connections at once in one test.
        with running_daemon(home, env={"OPENCLAW_INFRA_SOCKET__MAX_PER_PEER": "200"}) as daemon:
            yield daemon
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- the corpus ------------------------------------------------------------------------------

STATUS = {"v": 1, "id": 9, "method": "status"}

CORPUS = [
    pytest.param(b"\xff\xfe\n", "bad_request", None, id="invalid-utf8"),
    pytest.param(
        b'{"v":1,"id":3,"method":"status","params":{"x":"\xc3\x28"}}\n',
        "bad_request",
        None,
        id="invalid-utf8-inside-a-string",
    ),
    pytest.param(b'{"v":1,"id":3,"method":"st\xc0\xafatus"}\n', "bad_request", None, id="overlong"),
    pytest.param(b'{"v":1,"id":"\xed\xa0\x80"}\n', "bad_request", None, id="utf8-surrogate"),
    pytest.param(b"\xef\xbb\xbf" + line_of(**STATUS), "bad_request", None, id="byte-order-mark"),
    pytest.param(b"[1,2]\n", "bad_request", None, id="list"),
    pytest.param(b'"x"\n', "bad_request", None, id="string"),
    pytest.param(b"42\n", "bad_request", None, id="number"),
    pytest.param(b"null\n", "bad_request", None, id="null"),
    pytest.param(b"{}\n", "bad_request", None, id="empty-object"),
    pytest.param(b"{not json\n", "bad_request", None, id="not-json"),
    pytest.param(b'{"v":1,"id":4,"method":"status"\n', "bad_request", None, id="truncated"),
    pytest.param(line_of(**STATUS)[:-1] + b"x\n", "bad_request", None, id="trailing-garbage"),
    pytest.param(line_of(**STATUS)[:-1] * 2 + b"\n", "bad_request", None, id="two-on-a-line"),
    pytest.param(
        b'{"v":1,"id":1,"method":"status","params":' + b"[" * 20000 + b"\n",
        "bad_request",
        None,
        id="deep-nesting-unclosed",
    ),
    pytest.param(
        b'{"v":1,"id":1,"method":"status","params":{"x":' + b"[" * 20000 + b"]" * 20000 + b"}}\n",
        "bad_request",
        None,
        id="deep-nesting-balanced",
    ),
    pytest.param(
        b'{"v":1,"id":1,"method":"status","params":'
        + b'{"a":' * 10000
        + b"1"
        + b"}" * 10001
        + b"\n",
        "bad_request",
        None,
        id="deep-nesting-objects",
    ),
    pytest.param(line_of(id=5, method="status"), "bad_request", 5, id="missing-v"),
    pytest.param(line_of(v=2, id=6, method="status"), "unsupported_version", 6, id="v-2"),
    pytest.param(line_of(v=True, id=7, method="status"), "unsupported_version", 7, id="v-true"),
    pytest.param(line_of(v="1", id=7, method="status"), "unsupported_version", 7, id="v-string"),
    pytest.param(line_of(v=None, id=7, method="status"), "unsupported_version", 7, id="v-null"),
    pytest.param(line_of(v=1.5, id=7, method="status"), "unsupported_version", 7, id="v-float"),
    pytest.param(line_of(v=1, id=8), "bad_request", 8, id="missing-method"),
    pytest.param(line_of(v=1, id=8, method=""), "bad_request", 8, id="empty-method"),
    pytest.param(line_of(v=1, id=8, method=7), "bad_request", 8, id="method-number"),
    pytest.param(line_of(v=1, id="a", method="reboot"), "unknown_method", "a", id="unknown-method"),
    pytest.param(line_of(v=1, id=10, method="__init__"), "unknown_method", 10, id="dunder-method"),
    pytest.param(line_of(**STATUS, params=[1]), "bad_request", 9, id="params-list"),
    pytest.param(line_of(**STATUS, params="x"), "bad_request", 9, id="params-string"),
    pytest.param(line_of(**STATUS, params={"verbose": True}), "bad_request", 9, id="extra-param"),
    pytest.param(
        line_of(v=1, id=11, method="trigger", params={"job": "../../etc"}),
        "bad_request",
        11,
        id="trigger-path-job",
    ),
    pytest.param(
        line_of(v=1, id=11, method="trigger", params={"job": "he\u0000alth"}),
        "bad_request",
        11,
        id="trigger-nul-job",
    ),
    pytest.param(
        b'{"v":1,"id":11,"method":"trigger","params":{"job":"he\x00alth"}}\n',
        "bad_request",
        None,
        id="trigger-raw-nul-byte",
    ),
    pytest.param(
        line_of(v=1, id=11, method="trigger", params={"job": "health\n"}),
        "bad_request",
        11,
        id="trigger-newline-job",
    ),
    pytest.param(
        line_of(v=1, id=11, method="trigger", params={"job": "x" * 33}),
        "bad_request",
        11,
        id="trigger-long-job",
    ),
    pytest.param(
        line_of(v=1, id=11, method="trigger", params={"job": 42}),
        "bad_request",
        11,
        id="trigger-job-number",
    ),
    pytest.param(line_of(v=1, id=11, method="trigger"), "bad_request", 11, id="trigger-no-job"),
    pytest.param(
        line_of(v=1, id=12, method="trigger", params={"job": "nosuchjob"}),
        "unknown_job",
        12,
        id="trigger-unknown-job",
    ),
    pytest.param(
        line_of(v=1, id=12, method="runs", params={"job": "nosuchjob"}),
        "unknown_job",
        12,
        id="runs-unknown-job",
    ),
    pytest.param(
        line_of(v=1, id=13, method="runs", params={"job": "../../etc"}),
        "bad_request",
        13,
        id="runs-path-job",
    ),
    pytest.param(
        line_of(v=1, id=13, method="pause", params={"job": "../../etc"}),
        "bad_request",
        13,
        id="pause-path-job",
    ),
    pytest.param(
        line_of(v=1, id=13, method="resume", params={"job": "he\u0000alth"}),
        "bad_request",
        13,
        id="resume-nul-job",
    ),
    pytest.param(
        line_of(v=1, id=13, method="runs", params={"limit": 10**6}),
        "bad_request",
        13,
        id="runs-limit-too-big",
    ),
    # Numbers and durations past what date arithmetic or SQLite can hold: once `internal`.
    *(
        pytest.param(
            line_of(v=1, id=14, method="memory.search", params={"query": "x", name: value}),
            "bad_request",
            14,
            id=f"search-{name}-{value}",
        )
        for name, value in [
            ("since", "1e300"),
            ("since", "99999999d"),
            ("until", "1e300"),
            ("until", "99999999d"),
            ("recent", "1e-7"),
            ("recent", "1e300"),
            ("recent", "0.0000001s"),
            ("since", "0001-01-01T00:00:00+14:00"),
            ("since", "9" * 100),
        ]
    ),
    pytest.param(
        line_of(v=1, id=15, method="run", params={"run_id": 2**63}),
        "bad_request",
        15,
        id="run-2**63",
    ),
    pytest.param(
        line_of(v=1, id=15, method="mistake.list", params={"since": "99999999d"}),
        "bad_request",
        15,
        id="mistake-list-since-99999999d",
    ),
    pytest.param(
        line_of(
            v=1, id=15, method="mistake.add", params={"agent": "x", "text": "y", "lesson": "\ud800"}
        ),
        "bad_request",
        15,
        id="lone-surrogate-in-an-optional-field",
    ),
    pytest.param(
        line_of(v=1, id=15, method="trigger", params={"job": "health", "timeout": 1e-300}),
        "bad_request",
        15,
        id="trigger-timeout-1e-300",
    ),
    pytest.param(
        line_of(
            v=1,
            id=15,
            method="feedback.answer",
            params={"id": "a", "round": 2**63, "choice": "useful"},
        ),
        "bad_request",
        15,
        id="feedback-round-2**63",
    ),
    pytest.param(line_of(v=1, id=[1], method="status"), "bad_request", None, id="id-list"),
    pytest.param(line_of(v=1, id={"a": 1}, method="status"), "bad_request", None, id="id-object"),
    pytest.param(line_of(v=1, id=True, method="status"), "bad_request", None, id="id-bool"),
    pytest.param(line_of(v=1, id=1.5, method="status"), "bad_request", None, id="id-float"),
    pytest.param(
        b'{"v":1,"id":' + b"9" * 5000 + b',"method":"status"}\n',
        "bad_request",
        None,
        id="id-5000-digits",
    ),
]


@pytest.mark.parametrize(("data", "code", "request_id"), CORPUS)
def test_bad_input_gets_a_clear_error_and_the_daemon_keeps_serving(
    infrad: DaemonProcess, data: bytes, code: str, request_id: RequestId
) -> None:
    assert len(data) <= MAX_LINE_BYTES, "the corpus is of lines within the cap"
    with RawConnection(infrad.socket) as conn:
        conn.send(data)
        assert_error(conn.reply(), code, request_id)
        # The error ends the request, not the connection.
        conn.send(request("version", id="next"))
        assert conn.reply()["id"] == "next"
    assert_still_serving(infrad)


@pytest.mark.parametrize(
    ("data", "request_id"),
    [
        pytest.param(line_of(v=1, id="\ud800", method="version"), "\ud800", id="lone-surrogate-id"),
        pytest.param(line_of(v=1, id="日本🔑", method="version"), "日本🔑", id="unicode-id"),
        pytest.param(
            json.dumps({"v": 1, "id": "ü", "method": "version"}, ensure_ascii=False).encode()
            + b"\n",
            "ü",
            id="raw-utf8-id",
        ),
        pytest.param(line_of(v=1, id=-(2**63), method="version"), -(2**63), id="big-negative-id"),
        pytest.param(line_of(v=1, method="version"), None, id="no-id"),
        pytest.param(line_of(v=1, id=1, method="version", params=None), 1, id="params-null"),
        pytest.param(b'{"v":1,"id":2,"method":"version"}\r\n', 2, id="crlf"),
        pytest.param(b'  \t{"v":1,"id":3,"method":"version"}  \n', 3, id="surrounding-space"),
    ],
)
def test_odd_but_valid_requests_are_served(
    infrad: DaemonProcess, data: bytes, request_id: RequestId
) -> None:
    reply = exchange(infrad.socket, data)
    assert reply["ok"] is True, reply
    assert reply["id"] == request_id
    assert reply["result"]["protocol"] == 1
    assert_still_serving(infrad)


def test_a_reply_carrying_an_unencodable_string_is_still_sent() -> None:
    """A path decoded with surrogateescape must not make every `status` fail."""
    path = os.fsdecode(b"/srv/\xff")
    assert json.loads(success(1, {"state_dir": path}))["result"]["state_dir"] == path


# --- size --------------------------------------------------------------------------------------

OVERSIZED = [
    pytest.param(b'{"v":1,"id":1,"method":"status","params":{"x":"' + b"a" * 100_000, id="long"),
    pytest.param(b'{"v":1,"id":1,"method":"status","params":' + b"[" * 100_000, id="deep"),
]


@pytest.mark.parametrize("newline", [b"", b"\n"], ids=["unterminated", "terminated"])
@pytest.mark.parametrize("data", OVERSIZED)
def test_an_oversized_line_is_too_large_and_its_connection_closed(
    infrad: DaemonProcess, data: bytes, newline: bytes
) -> None:
    with RawConnection(infrad.socket) as conn:
        conn.send(data + newline)
        assert_error(conn.reply(), "too_large")
        assert conn.is_closed_by_server()
    assert_still_serving(infrad)


def _padded(size: int) -> bytes:
    """A `version` request exactly ``size`` bytes long, newline included."""
    line = request("version", id=1)
    return line[:-2] + b" " * (size - len(line)) + line[-2:]


def test_the_cap_is_64_kib_with_the_newline(infrad: DaemonProcess) -> None:
    reply = exchange(infrad.socket, _padded(MAX_LINE_BYTES))
    assert reply["ok"] is True, reply
    assert_error(exchange(infrad.socket, _padded(MAX_LINE_BYTES + 1)), "too_large")
    assert_still_serving(infrad)


# --- how clients behave ------------------------------------------------------------------------


def test_a_request_sent_one_byte_at_a_time_is_answered(infrad: DaemonProcess) -> None:
    with RawConnection(infrad.socket) as conn:
        for request_id in (1, 2):
            for byte in request("version", id=request_id):
                conn.send(bytes([byte]))
                time.sleep(0.001)  # so the daemon reads the pieces apart; nothing is timed
            reply = conn.reply()
            assert reply["ok"] is True, reply
            assert reply["id"] == request_id
    assert_still_serving(infrad)


def test_a_half_sent_request_does_not_hold_up_the_others(infrad: DaemonProcess) -> None:
    data = request("version", id="slow")
    with RawConnection(infrad.socket) as slow:
        slow.send(data[:10])
        assert_still_serving(infrad)
        slow.send(data[10:])
        assert slow.reply()["id"] == "slow"


@pytest.mark.parametrize("cut", [1, 20, -1], ids=["one-byte", "half", "all-but-newline"])
def test_a_client_that_disconnects_mid_request_is_dropped(infrad: DaemonProcess, cut: int) -> None:
    with RawConnection(infrad.socket) as conn:
        conn.send(request("status", id=1)[:cut])
    assert_still_serving(infrad)


def test_a_client_that_leaves_without_reading_its_replies_is_dropped(
    infrad: DaemonProcess,
) -> None:
    with RawConnection(infrad.socket) as conn:
        conn.send(b"".join(request("status", id=i) for i in range(200)))
    assert_still_serving(infrad)


def test_a_client_that_stops_writing_still_gets_its_reply(infrad: DaemonProcess) -> None:
    """What `echo ... | socat - UNIX:...` does: the request, then end of input."""
    with RawConnection(infrad.socket) as conn:
        conn.send(request("version", id=1))
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.reply()["id"] == 1
        assert conn.is_closed_by_server()
    assert_still_serving(infrad)


def test_pipelined_requests_are_answered_in_order(infrad: DaemonProcess) -> None:
    with RawConnection(infrad.socket) as conn:
        conn.send(
            request("version", id=1)
            + b"[1,2]\n"
            + b"\n   \n"  # blank lines are skipped, not answered
            + request("status", id="two")
            + request("reboot", id=3)
        )
        first, second, third, fourth = (conn.reply() for _ in range(4))
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.is_closed_by_server(), "no more replies than requests"
    assert (first["ok"], first["id"]) == (True, 1)
    assert_error(second, "bad_request")
    assert (third["ok"], third["id"]) == (True, "two")
    assert_error(fourth, "unknown_method", 3)
    assert_still_serving(infrad)


async def test_a_hundred_concurrent_clients_are_all_served(infrad: DaemonProcess) -> None:
    """All connected at once, every third sending garbage: each gets its own answer."""
    connections = await asyncio.gather(
        *(asyncio.open_unix_connection(os.fspath(infrad.socket), limit=2**20) for _ in range(100))
    )
    try:
        for n, (_, writer) in enumerate(connections):
            writer.write(
                b'{"v":1,"id":' + b"[" * n + b"\n" if n % 3 == 0 else request("status", id=n)
            )
        lines = await asyncio.gather(*(reader.readline() for reader, _ in connections))
    finally:
        for _, writer in connections:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for _, writer in connections))
    for n, line in enumerate(lines):
        reply = parse_reply(line)
        if n % 3 == 0:
            assert_error(reply, "bad_request")
        else:
            assert (reply["ok"], reply["id"]) == (True, n), reply
    await asyncio.to_thread(assert_still_serving, infrad)


# --- where the socket lives and who may use it ---------------------------------------------------


def test_the_daemon_socket_is_0600_in_a_0700_directory(infrad: DaemonProcess) -> None:
    info = infrad.socket.lstat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(infrad.socket.parent.stat().st_mode) == 0o700  # the fixture made it 0755
    assert not [p.name for p in infrad.socket.parent.iterdir() if p.name.startswith(".s")]


def test_bind_private_socket_is_private_whatever_the_umask(root: Path) -> None:
    path = root / "run" / "s.sock"
    previous = os.umask(0)
    try:
        sock = bind_private_socket(path)
    finally:
        os.umask(previous)
    with contextlib.closing(sock):
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as client:
            client.connect(os.fspath(path))


def test_bind_private_socket_tightens_an_existing_directory(root: Path) -> None:
    (root / "run").mkdir(mode=0o755)
    with contextlib.closing(bind_private_socket(root / "run" / "s.sock")):
        assert stat.S_IMODE((root / "run").stat().st_mode) == 0o700


def test_the_socket_is_0600_before_it_has_its_name(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No chmod race: it is bound elsewhere and only renamed into place once private."""
    path = root / "s.sock"
    seen: list[tuple[int, bool]] = []
    rename = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append((stat.S_IMODE(os.lstat(src).st_mode), os.path.lexists(dst)))
        rename(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    with contextlib.closing(bind_private_socket(path)):
        pass
    assert seen == [(0o600, False)]


def _leave_stale_socket(path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(path))
    dead.close()  # the file stays behind, with nobody listening


def test_a_stale_socket_is_replaced(root: Path) -> None:
    path = root / "s.sock"
    _leave_stale_socket(path)
    with (
        contextlib.closing(bind_private_socket(path)),
        contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as client,
    ):
        client.connect(os.fspath(path))  # the stale one would refuse: nobody listens there


def test_a_live_socket_is_refused(root: Path) -> None:
    path = root / "s.sock"
    with contextlib.closing(bind_private_socket(path)):
        live = path.lstat().st_ino
        with pytest.raises(Unavailable, match="already serving"):
            bind_private_socket(path)
        assert path.lstat().st_ino == live
        assert not [p.name for p in root.iterdir() if p.name.startswith(".s")]


def test_something_else_in_the_way_is_refused(root: Path) -> None:
    path = root / "s.sock"
    path.write_text("not a socket")
    with pytest.raises(Unavailable, match="not a socket"):
        bind_private_socket(path)
    assert path.read_text() == "not a socket"


def test_a_daemon_killed_hard_leaves_a_socket_the_next_one_replaces(root: Path) -> None:
    with running_daemon(root) as first:
        first.kill()
    assert stat.S_ISSOCK(first.socket.lstat().st_mode)
    with running_daemon(root) as second:
        assert_still_serving(second)


def test_a_second_daemon_on_a_served_socket_refuses_before_starting_anything(
    infrad: DaemonProcess, root: Path
) -> None:
    """Another state directory, the same socket: refused at once, naming the daemon that serves
    it, before it has made a state directory, opened a store or run a job."""
    assert infrad.proc is not None
    second = DaemonProcess(
        root,
        env={
            "OPENCLAW_INFRA_SOCKET_PATH": os.fspath(infrad.socket),
            "OPENCLAW_INFRA_STATE_DIR": os.fspath(root / "second-state"),
        },
    )
    second.start(wait=False)
    try:
        assert second.wait() == 1
    finally:
        if second.proc is not None and second.proc.poll() is None:
            second.kill()
    said = second.log().strip()
    assert said.count("\n") == 0, said
    assert said.startswith("infrad: cannot start: "), said
    assert f"pid {infrad.proc.pid}" in said
    assert os.fspath(infrad.root / "state") in said
    assert os.fspath(infrad.socket) in said
    assert not (root / "second-state").exists()
    assert_still_serving(infrad)


def test_a_stale_socket_does_not_stop_a_daemon_from_starting(root: Path) -> None:
    _leave_stale_socket(root / "s.sock")
    with running_daemon(root) as daemon:
        assert_still_serving(daemon)


# --- in process: the peer's uid and the connection limit -----------------------------------------


async def _dispatch(method: str, params: dict[str, Any]) -> Any:
    if method == "boom":
        raise RuntimeError("a detail for the log only")
    return {"method": method, "params": params}


@contextlib.asynccontextmanager
async def _serving(path: Path, **options: Any) -> AsyncIterator[ControlServer]:
    server = ControlServer(path, _dispatch, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_another_uid_is_forbidden(root: Path) -> None:
    with capture_logs() as logs:
        async with _serving(root / "s.sock", allowed_uid=os.getuid() + 1) as server:
            reply = await asyncio.to_thread(exchange, server.path, request("version", id=1))
    assert_error(reply, "forbidden")  # refused before its request was read, so no id
    assert f"uid {os.getuid()}" in reply["error"]["message"]
    assert {"event": "socket.refused", "peer_uid": os.getuid(), "log_level": "warning"} in logs


async def test_the_own_uid_is_served(root: Path) -> None:
    async with _serving(root / "s.sock", allowed_uid=os.getuid()) as server:
        reply = await asyncio.to_thread(exchange, server.path, request("version", id=1))
    assert reply == {"v": 1, "id": 1, "ok": True, "result": {"method": "version", "params": {}}}


async def test_a_failing_method_is_an_internal_error_and_the_connection_goes_on(
    root: Path,
) -> None:
    def failing_then_good(path: Path) -> list[dict[str, Any]]:
        with RawConnection(path) as conn:
            conn.send(request("boom", id=1) + request("version", id=2))
            return [conn.reply(), conn.reply()]

    with capture_logs() as logs:
        async with _serving(root / "s.sock") as server:
            failed, served = await asyncio.to_thread(failing_then_good, server.path)
    assert_error(failed, "internal", 1)
    assert "a detail for the log only" not in failed["error"]["message"]
    assert (served["ok"], served["id"]) == (True, 2)
    assert [e["method"] for e in logs if e["event"] == "socket.internal_error"] == ["boom"]


async def test_connections_over_the_limit_are_told_busy(root: Path) -> None:
    def hold_one_and_try_another(path: Path) -> tuple[dict[str, Any], ...]:
        with RawConnection(path) as held:
            held.send(request("version", id=1))
            first = held.reply()  # now the server counts it
            refused = exchange(path, request("version", id=2))
            held.send(request("version", id=3))
            return first, refused, held.reply()

    async with _serving(root / "s.sock", max_connections=1) as server:
        first, refused, again = await asyncio.to_thread(hold_one_and_try_another, server.path)
    assert (first["ok"], again["ok"]) == (True, True)
    assert_error(refused, "busy")
