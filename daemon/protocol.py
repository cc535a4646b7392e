"""Wire format of the control socket: newline-delimited JSON, one request or reply per line.

request  {"v":1,"id":7,"method":"trigger","params":{"job":"summarize"}}
success  {"v":1,"id":7,"ok":true,"result":{...}}
failure  {"v":1,"id":7,"ok":false,"error":{"code":"unknown_job","message":"..."}}

Stdlib only: ``infractl`` and the server both import it.
"""

from __future__ import annotations

import json
from typing import Any

from daemon.errors import BadRequest, InfraError, TooLarge, UnsupportedVersion

VERSION = 1
MAX_LINE_BYTES = 64 * 1024

RequestId = int | str | None


def encode(message: dict[str, Any]) -> bytes:
    # A lone surrogate (an id sent as "\ud800", a path decoded with surrogateescape) cannot be
    # UTF-8; json.dumps leaves such characters only inside strings, where backslashreplace
    # writes them as the JSON escape that reads back as the same string.
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace") + b"\n"


def request(method: str, params: dict[str, Any] | None = None, *, id: RequestId = None) -> bytes:
    return encode({"v": VERSION, "id": id, "method": method, "params": params or {}})


def success(id: RequestId, result: Any) -> bytes:
    return encode({"v": VERSION, "id": id, "ok": True, "result": result})


def failure(id: RequestId, error: InfraError) -> bytes:
    return encode({"v": VERSION, "id": id, "ok": False, "error": error.to_wire()})


class ParsedRequest:
    __slots__ = ("id", "method", "params")

    def __init__(self, id: RequestId, method: str, params: dict[str, Any]) -> None:
        self.id = id
        self.method = method
        self.params = params

    def __repr__(self) -> str:
        return f"ParsedRequest(id={self.id!r}, method={self.method!r})"


def parse_request(line: bytes) -> ParsedRequest:
    """Validate one request line; every way it can be wrong becomes an ``InfraError``.

    The id is recovered as early as possible so that even a refused request is answered with
    the id its client is waiting for. Raises ``RequestError`` carrying that id.
    """
    if len(line) > MAX_LINE_BYTES:
        raise RequestError(None, TooLarge(f"request line over {MAX_LINE_BYTES} bytes"))
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(None, BadRequest(f"request is not UTF-8 (byte {exc.start})")) from None
    try:
        message = json.loads(text)
    except RecursionError:
        raise RequestError(None, BadRequest("request JSON is nested too deeply")) from None
    except ValueError as exc:
        raise RequestError(None, BadRequest(f"request is not JSON: {exc}")) from None
    if not isinstance(message, dict):
        raise RequestError(None, BadRequest("request must be a JSON object"))
    request_id = message.get("id")
    if not (request_id is None or isinstance(request_id, (int, str))) or isinstance(
        request_id, bool
    ):
        raise RequestError(None, BadRequest("'id' must be an integer, a string or null"))
    return _parse_fields(request_id, message)


def _parse_fields(request_id: RequestId, message: dict[str, Any]) -> ParsedRequest:
    if "v" not in message:
        raise RequestError(request_id, BadRequest("missing 'v' (protocol version)"))
    version = message["v"]
    if version != VERSION or isinstance(version, bool):
        raise RequestError(
            request_id,
            UnsupportedVersion(f"protocol version {version!r} not supported; this daemon speaks 1"),
        )
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise RequestError(request_id, BadRequest("'method' must be a non-empty string"))
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(request_id, BadRequest("'params' must be a JSON object"))
    return ParsedRequest(request_id, method, params)


class RequestError(Exception):
    """A request that cannot be served, with the id to answer it under."""

    def __init__(self, request_id: RequestId, error: InfraError) -> None:
        super().__init__(error.message)
        self.request_id = request_id
        self.error = error
