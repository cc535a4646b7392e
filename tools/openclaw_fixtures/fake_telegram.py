"""A loopback stand-in for the Telegram Bot API, for the real OpenClaw (grammY) to poll.

OpenClaw's Telegram channel is configured with ``channels.telegram.apiRoot`` set to
:attr:`FakeTelegram.api_root` (the Bot API *root*, without ``/bot<TOKEN>``). grammY then calls
``POST <apiRoot>/bot<TOKEN>/<method>`` with a JSON body (form bodies are accepted too).

What it does:

* ``getMe`` answers the configured bot; ``getUpdates`` long-polls (woken at once when a
  message is queued) and hands out the updates queued with :meth:`FakeTelegram.send_user_message`
  from a named user in a private chat;
* ``sendMessage`` / ``editMessageText`` / ``sendChatAction`` / ``setMessageReaction`` ...
  are recorded in :attr:`FakeTelegram.calls` and answered with plausible results, so
  :meth:`wait_for_bot_message` can wait for the agent's reply;
* any other method answers ``{"ok": true, "result": true}`` (``getWebhookInfo``,
  ``getMyCommands``, ``getChat`` get shaped answers) and is logged.

Every call is appended to ``log_path`` as one JSON line.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Call", "FakeTelegram", "TelegramUser"]

#: Longest a getUpdates waits here, whatever the client asked.
MAX_POLL_S = 5.0


@dataclass(frozen=True)
class TelegramUser:
    id: int
    first_name: str
    last_name: str = ""
    username: str = ""
    language_code: str = "en"

    def as_api(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def private_chat(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        return d


@dataclass
class Call:
    method: str
    params: dict
    at: float
    result: Any = None


@dataclass
class _State:
    updates: list[dict] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[int, int], dict] = field(default_factory=dict)


class FakeTelegram:
    def __init__(
        self,
        token: str = "7000000001:AAFixtureBotTokenNotReal_abcdefghijk",
        *,
        bot_id: int | None = None,
        bot_username: str = "fixture_wren_bot",
        bot_first_name: str = "Fixture Bot",
        log_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_id = bot_id if bot_id is not None else int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.log_path = Path(log_path) if log_path else None
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._cond = threading.Condition()
        self._state = _State()
        self._update_ids = itertools.count(100001)
        self._message_ids = itertools.count(501)
        self._bot_message_ids = itertools.count(9001)

    # ----------------------------------------------------------------- lifecycle
    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def api_root(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> FakeTelegram:
        self._server = ThreadingHTTPServer((self._host, self._port), _make_handler(self))
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="fake-telegram", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting
    def bot_user(self) -> dict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def send_user_message(self, user: TelegramUser, text: str) -> dict:
        """Queue an inbound private-chat text message from ``user``; returns the update."""
        with self._cond:
            msg = {
                "message_id": next(self._message_ids),
                "from": user.as_api(),
                "chat": user.private_chat(),
                "date": int(time.time()),
                "text": text,
            }
            if text.startswith("/"):
                cmd = text.split(maxsplit=1)[0]
                msg["entities"] = [{"offset": 0, "length": len(cmd), "type": "bot_command"}]
            upd = {"update_id": next(self._update_ids), "message": msg}
            self._state.updates.append(upd)
            self._state.messages[(user.id, msg["message_id"])] = msg
            self._cond.notify_all()
        self._log({"t": time.time(), "direction": "inbound", "update": upd})
        return upd

    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._state.calls)

    def bot_messages(self, chat_id: int | None = None) -> list[Call]:
        """sendMessage calls (optionally for one chat)."""
        return [
            c
            for c in self.calls
            if c.method == "sendMessage"
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    def mark(self) -> int:
        """A position in :attr:`calls`, for :meth:`wait_for_bot_message`."""
        with self._cond:
            return len(self._state.calls)

    def wait_for_bot_message(
        self, chat_id: int, *, since: int = 0, timeout: float = 60.0, contains: str | None = None
    ) -> Call | None:
        """Wait until the bot sends (or edits) a message into ``chat_id`` after ``since``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for c in self._state.calls[since:]:
                    if (
                        c.method in ("sendMessage", "editMessageText")
                        and str(c.params.get("chat_id")) == str(chat_id)
                        and (contains is None or contains in str(c.params.get("text", "")))
                    ):
                        return c
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    def polled_since(self, since: int) -> bool:
        """Whether OpenClaw called getUpdates after position ``since`` (the channel is live)."""
        return any(c.method == "getUpdates" for c in self.calls[since:])

    # ----------------------------------------------------------------- API
    def _log(self, record: dict) -> None:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self._cond, self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _record(self, method: str, params: dict, result: Any) -> None:
        with self._cond:
            self._state.calls.append(Call(method, params, time.time(), result))
            self._cond.notify_all()
        if method != "getUpdates" or result:
            self._log({"t": time.time(), "method": method, "params": params, "result": result})

    def handle(self, method: str, params: dict) -> tuple[int, dict]:
        m = method
        if m == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        if m == "getMe":
            res: Any = self.bot_user()
        elif m in ("sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendAudio"):
            res = self._bot_message(params)
        elif m == "editMessageText":
            res = self._edit_message(params)
        elif m == "getWebhookInfo":
            res = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        elif m == "getMyCommands":
            res = []
        elif m == "getChat":
            cid = params.get("chat_id")
            res = {"id": int(cid) if str(cid).lstrip("-").isdigit() else 0, "type": "private"}
        elif m == "getMyName":
            res = {"name": self.bot_first_name}
        elif m in ("getMyDescription",):
            res = {"description": ""}
        elif m in ("getMyShortDescription",):
            res = {"short_description": ""}
        elif m == "getFile":
            res = {"file_id": params.get("file_id"), "file_unique_id": "x", "file_size": 0}
        else:
            res = True
        self._record(m, params, res)
        return 200, {"ok": True, "result": res}

    def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, MAX_POLL_S)
        with self._cond:
            if offset:
                # Telegram forgets confirmed updates.
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
            while True:
                pending = [u for u in self._state.updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if pending or left <= 0 or self._server is None:
                    break
                self._cond.wait(min(left, 0.5))
        limit = int(params.get("limit") or 100)
        pending = pending[:limit]
        self._record("getUpdates", {k: v for k, v in params.items()}, pending)
        return pending

    def _bot_message(self, params: dict) -> dict:
        chat_id = params.get("chat_id")
        try:
            cid = int(chat_id)
        except (TypeError, ValueError):
            cid = 0
        msg = {
            "message_id": next(self._bot_message_ids),
            "from": {
                k: v
                for k, v in self.bot_user().items()
                if k in ("id", "is_bot", "first_name", "username")
            },
            "chat": {"id": cid, "type": "private"},
            "date": int(time.time()),
        }
        if "text" in params:
            msg["text"] = params["text"]
        if "caption" in params:
            msg["caption"] = params["caption"]
        with self._cond:
            self._state.messages[(cid, msg["message_id"])] = msg
        return msg

    def _edit_message(self, params: dict) -> dict:
        try:
            cid = int(params.get("chat_id"))
            mid = int(params.get("message_id"))
        except (TypeError, ValueError):
            return True  # inline message
        with self._cond:
            msg = dict(
                self._state.messages.get((cid, mid))
                or {
                    "message_id": mid,
                    "chat": {"id": cid, "type": "private"},
                    "date": int(time.time()),
                }
            )
            msg["text"] = params.get("text", msg.get("text", ""))
            msg["edit_date"] = int(time.time())
            self._state.messages[(cid, mid)] = msg
        return msg


def _parse_body(content_type: str, raw: bytes) -> dict:
    if not raw:
        return {}
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            val = json.loads(raw)
            return val if isinstance(val, dict) else {}
        except ValueError:
            return {}
    if ctype == "application/x-www-form-urlencoded":
        out = {}
        for k, v in parse_qs(raw.decode("utf-8", "replace")).items():
            out[k] = _maybe_json(v[-1])
        return out
    if ctype == "multipart/form-data":
        boundary = content_type.split("boundary=", 1)[-1].strip().strip('"').encode()
        out = {}
        for part in raw.split(b"--" + boundary):
            if b"\r\n\r\n" not in part:
                continue
            head, _, body = part.partition(b"\r\n\r\n")
            name = None
            for line in head.decode("utf-8", "replace").split("\r\n"):
                if line.lower().startswith("content-disposition") and 'name="' in line:
                    name = line.split('name="', 1)[1].split('"', 1)[0]
                    if "filename=" in line:
                        name = None  # skip files
            if name:
                out[name] = _maybe_json(body.rstrip(b"\r\n").decode("utf-8", "replace"))
        return out
    return {}


def _maybe_json(v: str) -> Any:
    if v[:1] in ("{", "["):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _make_handler(tg: FakeTelegram):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            return

        def _reply(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            parts = [p for p in path.split("/") if p]
            if len(parts) < 2 or not parts[0].startswith("bot"):
                self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                return
            token, method = parts[0][3:], parts[1]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            params = _parse_body(self.headers.get("Content-Type", ""), raw)
            if "?" in self.path:
                for k, v in parse_qs(self.path.split("?", 1)[1]).items():
                    params.setdefault(k, _maybe_json(v[-1]))
            if token != tg.token:
                tg._log({"t": time.time(), "method": method, "refused": "bad token"})
                self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                return
            status, obj = tg.handle(method, params)
            self._reply(status, obj)

        do_POST = _dispatch
        do_GET = _dispatch

    return Handler
