"""A local stand-in for the Telegram Bot API, for the real python-telegram-bot to talk to.

It speaks the protocol PTB uses: ``POST /bot<token>/<method>`` with form fields (PTB sends
nested objects such as ``reply_markup`` as JSON strings inside the form, and files as
multipart), answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ...,
"description": ...}``, long-polls ``getUpdates`` and serves files at ``/file/bot<token>/<path>``.
It refuses what Telegram refuses and a client bug would trip over: a wrong token (401), HTML
that does not parse, a message over 4096 characters, callback data over 64 bytes, an edit of
a message that does not exist, answering one callback query twice.

Tests enqueue updates (a message, a voice note, a button tap), script failures (5xx, a stall
longer than the client's timeout) and read every call back from ``calls``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tests.telegram_wire import (
    ApiError,
    checked_markup,
    checked_text,
    parse_body,
    parse_html,
    require,
)

TOKEN = "123456789:AAFakeTokenForTests_0123456789abcdefXYZ"
BOT_ID = 123456789
#: Longest a getUpdates waits here, whatever the client asked: tests stop in milliseconds.
MAX_POLL_S = 0.5


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    at: float
    result: Any = None
    #: The HTTP status of a refusal (or of a scripted failure); None when answered.
    error: int | None = None

    @property
    def text(self) -> str:
        """The message text as the recipient sees it (markup parsed)."""
        text = str(self.params.get("text", ""))
        if self.params.get("parse_mode") != "HTML" or self.error is not None:
            return text  # a refused message was never seen: its raw text, for the record
        return parse_html(text)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


@dataclass(frozen=True)
class Failure:
    """What to do instead of answering: an HTTP status, or a stall (for client timeouts)."""

    status: int = 500
    stall_s: float = 0.0
    description: str = "Internal Server Error"


@dataclass
class _Message:
    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    raw_html: str | None


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[tuple[int, int], _Message] = field(default_factory=dict)
    queries: dict[str, bool] = field(default_factory=dict)  # id -> answered
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (path, data)


class FakeTelegram:
    """``with FakeTelegram() as tg: tg.base_url``; ``port`` to bind a port chosen earlier."""

    def __init__(self, token: str = TOKEN, port: int = 0) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.file_downloads: list[str] = []
        #: method (or "*") -> failures to apply, in order, before answering normally again.
        self._failures: dict[str, deque[Failure]] = {}
        self._state = _State()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._ids = itertools.count(1)
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=lambda: self._server.serve_forever(poll_interval=0.01),
            name="fake-telegram",
            daemon=True,
        )

    def __repr__(self) -> str:
        return f"FakeTelegram({self.base_url}, {len(self.calls)} calls)"

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTelegram:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -------------------------------------------------------------------------

    def fail(self, method: str = "*", *failures: Failure) -> None:
        """The next requests of ``method`` ("*": any) meet these failures, in order."""
        with self._lock:
            self._failures.setdefault(method, deque()).extend(failures or [Failure()])

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def add_file(self, data: bytes, path: str = "voice/file_1.oga") -> str:
        file_id = f"file-{next(self._ids)}"
        with self._lock:
            self._state.files[file_id] = (path, data)
        return file_id

    def send_text(self, text: str, *, user_id: int, chat_id: int | None = None) -> int:
        """A message from a person (its message id); a leading /command is marked as
        Telegram marks it."""
        message = self._from_user(user_id, chat_id)
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._enqueue({"message": message})
        return int(message["message_id"])

    def send_voice(
        self, file_id: str, *, user_id: int, chat_id: int | None = None, duration: int = 3
    ) -> int:
        message = self._from_user(user_id, chat_id)
        size = len(self._state.files[file_id][1])
        message["voice"] = {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": size,
        }
        self._enqueue({"message": message})
        return int(message["message_id"])

    def tap(self, data: str, *, user_id: int, chat_id: int, message_id: int) -> str:
        """A tap on an inline button of one of the bot's messages; returns the query id."""
        query_id = f"q{next(self._ids)}"
        with self._lock:
            self._state.queries[query_id] = False
            sent = self._state.messages.get((chat_id, message_id))
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self._bot_user(),
            "text": sent.text if sent else "",
        }
        query = {
            "id": query_id,
            "from": _user(user_id),
            "message": message,
            "chat_instance": f"ci{chat_id}",
            "data": data,
        }
        self._enqueue({"callback_query": query})
        return query_id

    # --- reading back ----------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[Call]:
        return [c for c in self.calls_of("sendMessage") if c.params.get("chat_id") == chat_id]

    def message(self, chat_id: int, message_id: int) -> _Message | None:
        with self._lock:
            return self._state.messages.get((chat_id, message_id))

    def find(self, method: str, predicate: Callable[[Call], bool] = lambda c: True) -> Call | None:
        """The first call of ``method`` that matches, if any (for polling from async tests)."""
        return next((c for c in self.calls_of(method) if predicate(c)), None)

    def wait_for(
        self, method: str, predicate: Callable[[Call], bool] = lambda c: True, timeout: float = 15
    ) -> Call:
        """Blocking: for tests whose bot runs in another process (a guard against hangs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(method, predicate)
            if found is not None:
                return found
            time.sleep(0.01)
        raise AssertionError(f"no {method} call matched within {timeout}s; calls: {self.calls}")

    @property
    def pending_updates(self) -> int:
        with self._lock:
            return len(self._state.updates)

    # --- inside ----------------------------------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Infra", "username": "infra_test_bot"}

    def _from_user(self, user_id: int, chat_id: int | None) -> dict[str, Any]:
        chat = chat_id if chat_id is not None else user_id
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private" if chat == user_id else "group"},
            "from": _user(user_id),
        }

    def _enqueue(self, update: dict[str, Any]) -> int:
        with self._lock:
            update["update_id"] = next(self._update_ids)
            self._state.updates.append(update)
            self._lock.notify_all()
            return int(update["update_id"])

    def _failure(self, method: str) -> Failure | None:
        with self._lock:
            for key in (method, "*"):
                queue = self._failures.get(key)
                if queue:
                    return queue.popleft()
        return None

    def handle(self, token: str, method: str, params: dict[str, Any]) -> Any:
        """One API call, recorded: the result, or ``ApiError``."""
        at = time.monotonic()
        try:
            result = self._dispatch(token, method, params)
        except ApiError as exc:
            self.record(Call(method, params, at, error=exc.code))
            raise
        self.record(Call(method, params, at, result=result))
        return result

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _dispatch(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params)

    def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False}

    def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), MAX_POLL_S)
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                state = self._state
                state.updates = [u for u in state.updates if u["update_id"] >= offset]
                if state.updates or self._stopping.is_set():
                    return state.updates[:limit]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._lock.wait(left)

    def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = require(params, "chat_id")
        text = checked_text(params)
        markup = checked_markup(params.get("reply_markup"))
        message_id = next(self._message_ids)
        with self._lock:
            self._state.messages[(chat_id, message_id)] = _Message(
                chat_id, message_id, text, markup, params.get("text")
            )
        return self._message_json(chat_id, message_id, text, markup)

    def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        chat_id, message_id = require(params, "chat_id"), require(params, "message_id")
        text = checked_text(params)
        markup = checked_markup(params.get("reply_markup"))
        with self._lock:
            old = self._state.messages.get((chat_id, message_id))
            if old is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            if old.text == text and old.reply_markup == markup:
                raise ApiError(400, "Bad Request: message is not modified")
            old.text, old.reply_markup, old.raw_html = text, markup, params.get("text")
        return self._message_json(chat_id, message_id, text, markup)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        chat_id, message_id = require(params, "chat_id"), require(params, "message_id")
        markup = checked_markup(params.get("reply_markup"))
        with self._lock:
            old = self._state.messages.get((chat_id, message_id))
            if old is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            old.reply_markup = markup
        return self._message_json(chat_id, message_id, old.text, markup)

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        query_id = str(require(params, "callback_query_id"))
        with self._lock:
            if self._state.queries.get(query_id, True):
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is"
                    " invalid",
                )
            self._state.queries[query_id] = True
        return True

    def _api_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(require(params, "file_id"))
        with self._lock:
            found = self._state.files.get(file_id)
        if found is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = found
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data),
            "file_path": path,
        }

    def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    def download(self, token: str, path: str) -> bytes | None:
        if token != self.token:
            return None
        with self._lock:
            self.file_downloads.append(path)
            for stored, data in self._state.files.values():
                if stored == path:
                    return data
        return None

    def _message_json(
        self, chat_id: int, message_id: int, text: str, markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self._bot_user(),
            "text": text,
        }
        if markup:
            message["reply_markup"] = markup
        return message


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeTelegram

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) leaves a broken pipe behind: not an error."""


_API_PATH = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")
_FILE_PATH = re.compile(r"^/file/bot([^/]+)/(.+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = unquote(self.path.split("?")[0])  # PTB quotes file paths (the token's ':')
        file_match = _FILE_PATH.match(path)
        if file_match is not None:
            data = fake.download(*file_match.groups())
            self._reply(200 if data is not None else 404, data or b"Not Found", "audio/ogg")
            return
        match = _API_PATH.match(path)
        if match is None:
            self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = match.groups()
        failure = fake._failure(method)
        if failure is not None:
            fake.record(Call(method, {}, time.monotonic(), error=failure.status))
            if failure.stall_s:
                fake._stopping.wait(failure.stall_s)
            else:
                self._json(failure.status, _error(failure.status, failure.description))
                return
        try:
            params = parse_body(self.headers.get("content-type", ""), raw)
            result = fake.handle(token, method, params)
        except ApiError as exc:
            self._json(exc.code, _error(exc.code, exc.description))
            return
        self._json(200, {"ok": True, "result": result})

    def _json(self, status: int, payload: Any) -> None:
        self._reply(status, json.dumps(payload).encode(), "application/json")

    def _reply(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client went away (it timed out): nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are what tests look at."""


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


def running() -> Iterator[FakeTelegram]:
    """For a pytest fixture: ``yield from running()``."""
    fake = FakeTelegram().start()
    try:
        yield fake
    finally:
        fake.stop()
