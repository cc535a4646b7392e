"""A scripted, loopback stand-in for an OpenAI-compatible chat-completions server.

OpenClaw talks to it as a custom provider (``api: "openai-completions"``, ``baseUrl:
http://127.0.0.1:<port>/v1``). It answers ``POST /v1/chat/completions`` (streaming SSE when
the request says ``"stream": true``, one JSON body otherwise) and ``GET /v1/models``.

Replies are SCRIPTED: a list of :class:`Rule`, the first whose ``match`` is found in the
text of the request's last user message wins. A rule holds one or more steps:

* :class:`Text` - a final assistant text, optionally with reasoning (``reasoning_content``
  in the stream, which OpenClaw stores as a ``thinking`` block);
* :class:`ToolCall` - an assistant message calling one function with JSON arguments. The
  next request of the same turn (OpenClaw sends the tool result back) gets the rule's next
  step, usually a Text. The step is the number of assistant tool-call messages in the turn.

A request whose system prompt is OpenClaw's compaction summariser ("You are a context
summarization assistant", user text wrapped in ``<conversation>``) gets ``compaction``
instead of the rule list. Anything unmatched gets ``default``.

Every request is appended to ``log_path`` (one JSON object a line: time, path, body, and the
reply chosen) so a failing run can be read afterwards.

Importable and stdlib only::

    from fake_model import FakeModel, Rule, Text, ToolCall
    fm = FakeModel([Rule("zebra", [Text("hello")])], log_path="/tmp/model.jsonl")
    fm.start(); print(fm.base_url); ...; fm.stop()

For an MCP round trip: ``Rule("recall-it", [ToolCall("memory_search", {"query": "x"}),
Text(tool_result_text)])`` where ``tool_result_text(ctx)`` builds the answer from
``ctx.last_tool_result``. A ToolCall's name is matched against the tools OpenClaw offered in
the request: an exact name first, else the one offered tool whose name ends with
``__<name>``, ``_<name>``, ``.<name>`` or ``-<name>`` (OpenClaw prefixes MCP tools with
their server name).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COMPACTION_SYSTEM_PREFIX = "You are a context summarization assistant"
#: OpenClaw appends a runtime-context user message holding this marker (2026.7: the sender
#: metadata; 2026.9: also "Conversation context ... selected for current message", which
#: quotes earlier turns). Such messages are never matched, or a directive of an earlier turn
#: would match again.
INTERNAL_CONTEXT_PREFIX = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"

__all__ = [
    "FakeModel",
    "RequestContext",
    "Rule",
    "Text",
    "ToolCall",
    "message_text",
]


@dataclass
class RequestContext:
    """What a step callable sees about the request it answers."""

    body: dict
    #: Text of every user message of the turn being answered (joined by newlines). While a
    #: rule is being matched this is the one text part being tried (newest first).
    last_user_text: str
    #: The user text parts of the turn, oldest first.
    user_texts: list[str]
    system_text: str
    tool_names: list[str]
    #: Text of the last ``role: tool`` message of the turn ("" if none).
    last_tool_result: str
    #: Index of the step being answered inside the matched rule.
    step_index: int
    is_compaction: bool


TextSource = str | Callable[[RequestContext], str]


@dataclass
class Text:
    """A final assistant reply. ``text``/``reasoning`` may be callables of the context."""

    text: TextSource
    reasoning: TextSource | None = None


@dataclass
class ToolCall:
    """An assistant message that calls one tool; OpenClaw runs it and asks again."""

    name: str
    arguments: dict | Callable[[RequestContext], dict] = field(default_factory=dict)
    #: Optional text sent alongside the call (most models send none).
    text: TextSource | None = None
    reasoning: TextSource | None = None


Step = Text | ToolCall


@dataclass
class Rule:
    """``match``: a substring of the last user message (or a predicate of the context)."""

    match: str | Callable[[RequestContext], bool]
    steps: Sequence[Step]
    name: str = ""
    #: How many times this rule has answered (for tests and the log).
    hits: int = 0

    def matches(self, ctx: RequestContext) -> bool:
        if callable(self.match):
            return bool(self.match(ctx))
        return self.match in ctx.last_user_text


def message_text(content: Any) -> str:
    """Flatten an OpenAI message ``content`` (string or list of parts) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return "\n".join(out)
    return str(content)


def _resolve(src: TextSource | None, ctx: RequestContext) -> str | None:
    if src is None:
        return None
    return src(ctx) if callable(src) else src


class FakeModel:
    """The server. ``script`` is a list of :class:`Rule`; first match wins."""

    def __init__(
        self,
        script: Sequence[Rule] = (),
        *,
        log_path: str | Path | None = None,
        model_ids: Sequence[str] = ("fixture-model",),
        default: Step | None = None,
        compaction: Step | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        chunk_size: int = 24,
    ) -> None:
        self.script: list[Rule] = list(script)
        self.log_path = Path(log_path) if log_path else None
        self.model_ids = list(model_ids)
        self.default: Step = default or Text("Noted.")
        self.compaction: Step = compaction or Text(
            "## Goal\nContinue the conversation.\n\n## Progress\nNothing notable."
        )
        self.chunk_size = chunk_size
        self.requests: list[dict] = []
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- lifecycle
    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI ``baseUrl`` to configure (ends in ``/v1``)."""
        return f"http://{self._host}:{self.port}/v1"

    def start(self) -> FakeModel:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting
    def add(self, rule: Rule) -> None:
        with self._lock:
            self.script.append(rule)

    def completions(self) -> list[dict]:
        """The chat-completions requests received so far (bodies)."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    # ----------------------------------------------------------------- logic
    def context_for(self, body: dict) -> RequestContext:
        messages = body.get("messages") or []
        system_parts = [
            message_text(m.get("content"))
            for m in messages
            if m.get("role") in ("system", "developer")
        ]
        # The turn being answered: everything after the last final assistant answer (an
        # assistant message without tool calls). OpenClaw sends the person's text and then,
        # in 2026.9, an extra internal-context user message, so all user texts of the turn
        # are matched, not only the last one.
        start = 0
        for i, m in enumerate(messages):
            if m.get("role") == "assistant" and not m.get("tool_calls"):
                start = i + 1
        turn = messages[start:]
        # Each text part separately (OpenClaw re-sends an unanswered earlier message as one
        # more part of the next user message), oldest first.
        user_texts = []
        for m in turn:
            if m.get("role") != "user":
                continue
            content = m.get("content")
            parts = content if isinstance(content, list) else [content]
            for part in parts:
                t = message_text([part] if isinstance(part, dict) else part)
                if t and INTERNAL_CONTEXT_PREFIX not in t:
                    user_texts.append(t)
        if not user_texts:  # e.g. a request that ends on an assistant message
            user_texts = [
                message_text(m.get("content")) for m in messages if m.get("role") == "user"
            ][-1:]
        last_user_text = "\n".join(user_texts)
        step_index = sum(1 for m in turn if m.get("role") == "assistant" and m.get("tool_calls"))
        tool_results = [message_text(m.get("content")) for m in turn if m.get("role") == "tool"]
        tools = []
        for t in body.get("tools") or []:
            fn = t.get("function") if isinstance(t, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                tools.append(fn["name"])
        system_text = "\n".join(system_parts)
        is_compaction = system_text.startswith(COMPACTION_SYSTEM_PREFIX) or (
            COMPACTION_SYSTEM_PREFIX in system_text and "<conversation>" in last_user_text
        )
        return RequestContext(
            body=body,
            last_user_text=last_user_text,
            user_texts=user_texts,
            system_text=system_text,
            tool_names=tools,
            last_tool_result=tool_results[-1] if tool_results else "",
            step_index=step_index,
            is_compaction=is_compaction,
        )

    def choose(self, ctx: RequestContext) -> tuple[str, Step]:
        if ctx.is_compaction:
            return "compaction", self.compaction
        # The newest user text wins: rules are tried against it first, then older parts of
        # the turn (e.g. a recovery prompt after an unanswered message, or a re-sent text).
        with self._lock:
            for text in reversed(ctx.user_texts or [ctx.last_user_text]):
                sub = dataclasses.replace(ctx, last_user_text=text)
                for rule in self.script:
                    if rule.matches(sub):
                        rule.hits += 1
                        steps = list(rule.steps)
                        step = steps[min(ctx.step_index, len(steps) - 1)]
                        if ctx.step_index >= len(steps) and isinstance(step, ToolCall):
                            step = self.default  # never loop on tool calls
                        label = rule.name or (rule.match if isinstance(rule.match, str) else "rule")
                        return f"{label}#{ctx.step_index}", step
        return "default", self.default

    def resolve_tool_name(self, name: str, offered: list[str]) -> str:
        if not offered or name in offered:
            return name
        for sep in ("__", "_", ".", "-", ":"):
            cands = [t for t in offered if t.endswith(sep + name)]
            if len(cands) == 1:
                return cands[0]
        return name

    def render(self, ctx: RequestContext, step: Step) -> dict:
        """The assistant message for ``step``: {content, reasoning, tool_calls, finish}."""
        reasoning = _resolve(step.reasoning, ctx)
        if isinstance(step, ToolCall):
            args = step.arguments(ctx) if callable(step.arguments) else step.arguments
            call = {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": self.resolve_tool_name(step.name, ctx.tool_names),
                    "arguments": json.dumps(args, ensure_ascii=False),
                },
            }
            return {
                "content": _resolve(step.text, ctx),
                "reasoning": reasoning,
                "tool_calls": [call],
                "finish": "tool_calls",
            }
        return {
            "content": _resolve(step.text, ctx) or "",
            "reasoning": reasoning,
            "tool_calls": None,
            "finish": "stop",
        }

    def log(self, record: dict) -> None:
        with self._lock:
            self.requests.append(record)
            if self.log_path:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def _usage(body: dict, reply: dict) -> dict:
    prompt = max(1, len(json.dumps(body.get("messages") or [])) // 4)
    completion = max(1, len((reply.get("content") or "") + (reply.get("reasoning") or "")) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _make_handler(fm: FakeModel):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # silence stderr
            return

        def _send_json(self, status: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            fm.log({"t": time.time(), "method": "GET", "path": self.path, "body": None})
            if path.endswith("/models"):
                self._send_json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": m, "object": "model", "created": 0, "owned_by": "fixture"}
                            for m in fm.model_ids
                        ],
                    },
                )
            else:
                self._send_json(404, {"error": {"message": f"no route {path}"}})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send_json(400, {"error": {"message": "bad json"}})
                return
            if not path.endswith("/chat/completions"):
                fm.log({"t": time.time(), "method": "POST", "path": self.path, "body": body})
                self._send_json(404, {"error": {"message": f"no route {path}"}})
                return
            ctx = fm.context_for(body)
            label, step = fm.choose(ctx)
            reply = fm.render(ctx, step)
            fm.log(
                {
                    "t": time.time(),
                    "method": "POST",
                    "path": self.path,
                    "stream": bool(body.get("stream")),
                    "chosen": label,
                    "last_user_text": ctx.last_user_text[-2000:],
                    "reply": reply,
                    "body": body,
                }
            )
            model = body.get("model") or (fm.model_ids[0] if fm.model_ids else "fixture-model")
            cid = f"chatcmpl-{next(fm._ids)}"
            created = int(time.time())
            if body.get("stream"):
                self._stream(body, reply, model, cid, created)
            else:
                msg: dict[str, Any] = {"role": "assistant", "content": reply["content"]}
                if reply["reasoning"]:
                    msg["reasoning_content"] = reply["reasoning"]
                if reply["tool_calls"]:
                    msg["tool_calls"] = reply["tool_calls"]
                self._send_json(
                    200,
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "message": msg, "finish_reason": reply["finish"]}],
                        "usage": _usage(body, reply),
                    },
                )

        def _stream(self, body: dict, reply: dict, model: str, cid: str, created: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

            def chunk(delta: dict, finish: str | None = None, **extra: Any) -> None:
                obj = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                obj.update(extra)
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.wfile.flush()

            n = fm.chunk_size
            chunk({"role": "assistant", "content": ""})
            reasoning = reply["reasoning"] or ""
            for i in range(0, len(reasoning), n):
                chunk({"reasoning_content": reasoning[i : i + n]})
            content = reply["content"] or ""
            for i in range(0, len(content), n):
                chunk({"content": content[i : i + n]})
            for idx, call in enumerate(reply["tool_calls"] or []):
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": idx,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                chunk(
                    {
                        "tool_calls": [
                            {"index": idx, "function": {"arguments": call["function"]["arguments"]}}
                        ]
                    }
                )
            chunk({}, reply["finish"])
            opts = body.get("stream_options") or {}
            if opts.get("include_usage"):
                obj = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": _usage(body, reply),
                }
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler
