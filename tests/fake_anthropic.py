"""A local stand-in for the Anthropic Messages API, for the real ``anthropic`` SDK to talk to.

It speaks the protocol the SDK expects (``POST /v1/messages``, ``x-api-key`` and
``anthropic-version`` headers, ``message`` objects with ``usage``, errors as
``{"type": "error", "error": {...}}`` with a ``request-id`` header) and refuses what the real API
refuses, so a client bug shows up here as it would in production. Every request is recorded for
assertions; replies are scripted per test, in order. Error replies carry ``retry-after-ms: 1``
(a header the SDK honours before its own backoff) so that retries cost no time in tests.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The error ``type`` the real API sends with each status.
#: API versions the fake knows. The SDK 2.x default (2026-10-21) refuses sampling parameters
#: (temperature, top_p, top_k) on every model, even at their defaults; 2023-06-01 still takes them.
CURRENT_VERSION = "2026-10-21"
LEGACY_VERSION = "2023-06-01"
API_VERSIONS = frozenset({CURRENT_VERSION, LEGACY_VERSION})
SAMPLING = ("temperature", "top_p", "top_k")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any

    @property
    def credential(self) -> str | None:
        """The key, from ``x-api-key`` (which wins, as on the real API) or a Bearer token."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    @property
    def system(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, list):  # the API also takes a list of text blocks
            return "".join(block.get("text", "") for block in system)
        return str(system)

    @property
    def temperature(self) -> float | None:
        value = self.body.get("temperature")
        return float(value) if value is not None else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def text_of(self, index: int) -> str:
        """The text of one message, whether sent as a string or as content blocks."""
        content = self.messages[index]["content"]
        if isinstance(content, str):
            return content
        return "".join(block.get("text", "") for block in content)

    @property
    def last_user_text(self) -> str:
        return self.text_of(len(self.messages) - 1)


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request: a message, or an HTTP error."""

    text: str = ""
    status: int = 200
    error_message: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str = "end_turn"
    #: Seconds to wait before answering (for client timeouts).
    delay: float = 0.0
    #: Put the credentials the client sent into the error message, like a careless proxy.
    echo_credentials: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


def text(
    value: str,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    stop_reason: str = "end_turn",
) -> Reply:
    return Reply(
        text=value, input_tokens=input_tokens, output_tokens=output_tokens, stop_reason=stop_reason
    )


def error(status: int, message: str = "", *, echo_credentials: bool = False) -> Reply:
    return Reply(
        status=status,
        error_message=message or ERROR_TYPES.get(status, "error").replace("_", " "),
        echo_credentials=echo_credentials,
    )


OVERLOADED = error(529, "Overloaded")
SERVER_ERROR = error(500, "Internal server error")

Script = Reply | Callable[[Recorded], Reply]


class FakeAnthropic:
    """A threaded HTTP server on 127.0.0.1; ``with FakeAnthropic() as fake: fake.base_url``."""

    def __init__(self, api_key: str = "sk-ant-fake-key-0123456789abcdef") -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        #: Requests that came when nothing was scripted: a test that forgot a reply.
        self.unscripted: list[Recorded] = []
        #: Answers every request once the script has run out (e.g. "always 500").
        self.otherwise: Script | None = None
        self._script: deque[Script] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            # A short poll, so that stopping takes milliseconds rather than the default 0.5 s.
            target=lambda: self._server.serve_forever(poll_interval=0.01),
            name="fake-anthropic",
            daemon=True,
        )

    def __repr__(self) -> str:
        return f"FakeAnthropic({self.base_url}, {len(self.requests)} requests)"

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: Script) -> None:
        """Queue replies; each request takes the next (a callable gets the request)."""
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    # --- called from the server's threads ---------------------------------------------------

    def _answer(self, recorded: Recorded) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(recorded)
            script = self._script.popleft() if self._script else self.otherwise
            if script is None:
                self.unscripted.append(recorded)
        request_id = f"req_fake_{next(self._ids):04d}"
        problem = _refusal(recorded, self.api_key)
        if problem is not None:
            return problem[0], {"request-id": request_id}, _error_body(*problem, request_id)
        if script is None:
            # Not retryable, so the test fails at once and `unscripted` says why.
            status, message = 400, "fake: no reply scripted for this request"
            headers = {"request-id": request_id, "x-should-retry": "false"}
            return status, headers, _error_body(status, message, request_id)
        reply = script(recorded) if callable(script) else script
        if reply.delay:
            self._stopping.wait(reply.delay)
        headers = {"request-id": request_id, **reply.headers}
        if reply.status != 200:
            message = reply.error_message
            if reply.echo_credentials:
                message += f" (request had authorization: {recorded.headers.get('authorization')})"
            headers.setdefault("retry-after-ms", "1")
            return reply.status, headers, _error_body(reply.status, message, request_id)
        return 200, headers, _message(recorded, reply, request_id)


def _refusal(recorded: Recorded, api_key: str) -> tuple[int, str] | None:
    """What the real API refuses before it looks at the model: (status, message)."""
    if recorded.method != "POST" or recorded.path.split("?")[0] != "/v1/messages":
        return 404, f"Not found: {recorded.method} {recorded.path}"
    if recorded.credential != api_key:
        return 401, "invalid x-api-key"
    version = recorded.headers.get("anthropic-version")
    if version is None:
        return 400, "anthropic-version: header is required"
    if version not in API_VERSIONS:
        return 400, f"anthropic-version: unknown version {version!r}"
    return _invalid_body(recorded.body, version)


def _invalid_body(body: Any, version: str) -> tuple[int, str] | None:
    if not isinstance(body, dict):
        return 400, "body: not a JSON object"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return 400, f"{name}: Field required"
    sampling = [name for name in SAMPLING if name in body]
    if sampling and version != LEGACY_VERSION:
        return 400, f"{sampling[0]}: Extra inputs are not permitted"
    temperature = body.get("temperature", 1.0)
    if not isinstance(temperature, (int, float)) or not 0.0 <= temperature <= 1.0:
        return 400, "temperature: must be between 0 and 1"
    return _invalid_messages(body["messages"])


def _invalid_messages(messages: Any) -> tuple[int, str] | None:
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        return 400, "messages: the first message must use the user role"
    roles = [m.get("role") for m in messages]
    if any(a == b for a, b in itertools.pairwise(roles)) or not set(roles) <= {"user", "assistant"}:
        return 400, "messages: roles must alternate between user and assistant"
    return None


def _error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": request_id,
    }


def _message(recorded: Recorded, reply: Reply, request_id: str) -> dict[str, Any]:
    prompt_words = len(json.dumps(recorded.body.get("messages", [])).split())
    prompt_words += len(recorded.system.split())
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": recorded.body.get("model"),
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens if reply.input_tokens is not None else prompt_words,
            "output_tokens": (
                reply.output_tokens if reply.output_tokens is not None else len(reply.text.split())
            ),
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) leaves a broken pipe behind: not an error."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Headers and body are two writes; with Nagle on, each answer waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = Recorded(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        status, headers, payload = self.server.fake._answer(recorded)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests are what tests look at."""


def running() -> Iterator[FakeAnthropic]:
    """For a pytest fixture: ``fake = pytest.fixture(running)`` or ``yield from running()``."""
    fake = FakeAnthropic().start()
    try:
        yield fake
    finally:
        fake.stop()
