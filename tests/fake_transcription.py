"""A local OpenAI-compatible ``POST /audio/transcriptions`` for the transcriber to talk to.

It reads the multipart form the way the real endpoint does (``file``, ``model``,
``response_format``, ``language``), checks the bearer key, and answers ``verbose_json`` with
the text, language and duration, or plain ``json`` (text only). Requests are recorded; the
text and failures are scripted per test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-whisper-test-0123456789abcdef"


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]
    audio: bytes
    filename: str
    authorization: str | None


@dataclass
class FakeTranscription:
    text: str = "hello from a voice note"
    language: str = "en"
    duration: float = 3.5
    #: Refuse verbose_json, like services that only speak json.
    json_only: bool = False
    #: HTTP status to answer instead (once per entry).
    failures: list[int] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=lambda: self._server.serve_forever(poll_interval=0.01), daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def answer(self, upload: Upload) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.uploads.append(upload)
            failure = self.failures.pop(0) if self.failures else None
        if upload.authorization != f"Bearer {KEY}":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "auth"}}
        if failure is not None:
            return failure, {"error": {"message": f"failure {failure}", "type": "server_error"}}
        fmt = upload.fields.get("response_format", "json")
        if fmt == "verbose_json" and self.json_only:
            return 400, {"error": {"message": "response_format 'verbose_json' is not supported"}}
        if not upload.audio or "model" not in upload.fields:
            return 400, {"error": {"message": "file and model are required"}}
        if fmt == "verbose_json":
            return 200, {"text": self.text, "language": self.language, "duration": self.duration}
        return 200, {"text": self.text}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeTranscription


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/v1/audio/transcriptions":
            self._json(404, {"error": {"message": "not found"}})
            return
        header = f"Content-Type: {self.headers.get('content-type')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + raw)
        fields: dict[str, str] = {}
        audio, filename = b"", ""
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if name == "file":
                audio, filename = data, str(part.get_filename())
            else:
                fields[name] = data.decode()
        upload = Upload(fields, audio, filename, self.headers.get("authorization"))
        self._json(*self.server.fake.answer(upload))

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def running(**kwargs: Any) -> Iterator[FakeTranscription]:
    fake = FakeTranscription(**kwargs)
    fake._thread.start()
    try:
        yield fake
    finally:
        fake._server.shutdown()
        fake._server.server_close()
