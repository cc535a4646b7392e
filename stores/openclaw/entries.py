"""What one transcript entry says, with the channel's and OpenClaw's housekeeping taken off.

Both layouts store the same entry objects, so both readers hand each one to an
``EntryInterpreter``, which returns the entry's ``Content`` (a user or assistant text, or a
compaction summary) or the ``SkipReason`` it carries no memory. It keeps one bit of state:
after OpenClaw's pre-compaction memory-flush prompt, the agent's reply (tool calls writing
``memory/``, then ``NO_REPLY`` or a short note) is housekeeping too, until the person speaks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from stores.openclaw.problems import SkipReason


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SUMMARY = "summary"


@dataclass(frozen=True)
class Names:
    """Who speaks when the entry does not say: the agent (IDENTITY.md) and its person (USER.md)."""

    assistant: str | None = None
    user: str | None = None


@dataclass(frozen=True)
class Content:
    entry_id: str
    parent_id: str | None
    timestamp: datetime
    role: Role
    speaker: str | None
    text: str


class BadEntry(ValueError):
    """A JSON object that is not a usable entry (no id, no timestamp)."""


METADATA_TYPES = frozenset(
    {
        "session",
        "model_change",
        "thinking_level_change",
        "custom",
        "custom_message",
        "label",
        "session_info",
    }
)
SUMMARY_TYPES = frozenset({"compaction", "branch_summary"})

HEARTBEAT_ACK = "HEARTBEAT_OK"
SILENT_REPLY = "NO_REPLY"
_HEARTBEAT_PROMPT = "Read HEARTBEAT.md if it exists"
_FLUSH_PROMPT = "Pre-compaction memory flush."

# "[Sun 2023-10-22 09:55 GMT+0] ", OpenClaw's envelope time before the person's text.
_TIME_PREFIX = re.compile(r"^\[[A-Za-z]{3} \d{4}-\d{2}-\d{2} \d{2}:\d{2}[^\]\n]*\] *")
# "Sender (untrusted metadata):", "Replied message (untrusted, for context):", ...
_BLOCK_HEADER = re.compile(
    r"^(?P<label>[^\n]{1,80}?) ?"
    r"\(untrusted(?: metadata|, for context|, chronological[^)\n]*)\):[ \t]*$"
)
# A sender that is only a phone number or a numeric chat id names nobody.
_NUMERIC_ID = re.compile(r"\+?[\d\s-]+")
_REPLY_TAG = re.compile(
    r"\[\[\s*(?:reply_to_current|reply_to\s*:[^\]\n]*|audio_as_voice)\s*\]\]", re.IGNORECASE
)


class EntryInterpreter:
    def __init__(self, names: Names, *, in_flush: bool = False) -> None:
        self.names = names
        self.in_flush = in_flush

    def interpret(self, entry: Mapping[str, Any]) -> Content | SkipReason:
        """Raises ``BadEntry`` for a message or summary without an id or a timestamp."""
        kind = entry.get("type")
        if not isinstance(kind, str):
            raise BadEntry(f"entry type is not a string: {kind!r}"[:200])
        if kind == "message":
            return self._message(entry)
        if kind in SUMMARY_TYPES:
            self.in_flush = False
            summary = entry.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                return SkipReason.EMPTY
            return _content(entry, Role.SUMMARY, None, summary.strip())
        if kind in METADATA_TYPES:
            return SkipReason.METADATA
        return SkipReason.UNKNOWN_TYPE

    def _message(self, entry: Mapping[str, Any]) -> Content | SkipReason:
        message = entry.get("message")
        if not isinstance(message, dict):
            raise BadEntry("message entry without a message object")
        role = message.get("role")
        if role in ("toolResult", "bashExecution"):
            return SkipReason.TOOL
        if role == "user":
            return self._user(entry, message)
        if role == "assistant":
            return self._assistant(entry, message)
        return SkipReason.UNKNOWN_TYPE

    def _user(self, entry: Mapping[str, Any], message: Mapping[str, Any]) -> Content | SkipReason:
        raw, blocks = _text_of(message.get("content"))
        sender, text = clean_user_text(raw)
        if text.startswith(_FLUSH_PROMPT):
            self.in_flush = True
            return SkipReason.MEMORY_FLUSH
        self.in_flush = False
        if text.startswith(_HEARTBEAT_PROMPT):
            return SkipReason.HEARTBEAT
        if not text:
            return _empty_reason(blocks)
        return _content(entry, Role.USER, sender or self.names.user, text)

    def _assistant(
        self, entry: Mapping[str, Any], message: Mapping[str, Any]
    ) -> Content | SkipReason:
        if message.get("stopReason") == "error":
            return SkipReason.ERROR
        if self.in_flush:
            return SkipReason.MEMORY_FLUSH
        raw, blocks = _text_of(message.get("content"))
        text = clean_assistant_text(raw)
        if text.strip(" .") == SILENT_REPLY:
            return SkipReason.NO_REPLY
        if HEARTBEAT_ACK in text:
            text = text.replace(HEARTBEAT_ACK, "").strip()
            if not text:
                return SkipReason.HEARTBEAT
        if not text:
            return _empty_reason(blocks)
        return _content(entry, Role.ASSISTANT, self.names.assistant, text)


def clean_user_text(text: str) -> tuple[str | None, str]:
    """The person's own words and their name, without OpenClaw's envelope.

    A channel message arrives as metadata blocks (a header line, then a fenced ``json`` block
    or a paragraph) and, in older versions, an ``[Sun 2023-10-22 09:55 GMT+0]`` time prefix.
    """
    sender: str | None = None
    conversation_sender: str | None = None
    rest = text.lstrip()
    while True:
        rest = _TIME_PREFIX.sub("", rest, count=1)
        header_end = rest.find("\n")
        header = _BLOCK_HEADER.match(rest[:header_end]) if header_end > 0 else None
        if header is None:
            break
        body, rest = _split_block(rest[header_end + 1 :])
        label = header.group("label").strip().lower()
        meta = _json_object(body)
        if label == "sender":
            sender = _first_str(meta, "name", "username", "label")
        elif label == "conversation info":
            conversation_sender = _sender_of(meta.get("sender"))
        rest = rest.lstrip()
    return sender or conversation_sender, rest.strip()


def clean_assistant_text(text: str) -> str:
    return _REPLY_TAG.sub("", text).strip()


def parse_timestamp(value: Any) -> datetime | None:
    """An entry's ISO timestamp (``...Z``) or a message's epoch milliseconds, as aware UTC."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _content(entry: Mapping[str, Any], role: Role, speaker: str | None, text: str) -> Content:
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        raise BadEntry(f"{entry.get('type')} entry without an id")
    message = entry.get("message")
    timestamp = parse_timestamp(entry.get("timestamp"))
    if timestamp is None and isinstance(message, dict):
        timestamp = parse_timestamp(message.get("timestamp"))
    if timestamp is None:
        raise BadEntry(f"entry {entry_id} has no usable timestamp")
    parent = entry.get("parentId")
    return Content(
        _utf8(entry_id),
        _utf8(parent) if isinstance(parent, str) else None,
        timestamp,
        role,
        _utf8(speaker) if speaker is not None else None,
        _utf8(text),
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> str:
    """Lone surrogates (``\\ud83d``: text cut in the middle of an emoji by a JavaScript
    writer) become U+FFFD: Python reads them from JSON, but SQLite cannot store them."""
    return _SURROGATE.sub("\ufffd", text)


def _text_of(content: Any) -> tuple[str, set[str]]:
    """The text blocks joined, and the kinds of block the message held."""
    if isinstance(content, str):
        return content, {"text"}
    if not isinstance(content, list):
        return "", set()
    texts: list[str] = []
    kinds: set[str] = set()
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        kinds.add(kind if isinstance(kind, str) else "")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
    return "\n\n".join(t for t in texts if t.strip()), kinds


def _empty_reason(kinds: set[str]) -> SkipReason:
    if kinds & {"toolCall", "toolUse", "tool_use"}:
        return SkipReason.TOOL
    if kinds & {"thinking", "redacted_thinking"}:
        return SkipReason.THINKING
    if "image" in kinds:
        return SkipReason.IMAGE
    return SkipReason.EMPTY


def _split_block(text: str) -> tuple[str, str]:
    """A metadata block's body and what follows: a fenced block to its fence, else a paragraph."""
    if text.startswith("```"):
        first = text.find("\n")
        close = text.find("\n```", first)
        if first < 0 or close < 0:
            return text, ""
        after = text.find("\n", close + 4)
        return text[first + 1 : close], "" if after < 0 else text[after + 1 :]
    end = text.find("\n\n")
    return (text, "") if end < 0 else (text[:end], text[end + 2 :])


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _first_str(meta: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _sender_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return _first_str(value, "name", "username")
    if isinstance(value, str) and value.strip() and not _NUMERIC_ID.fullmatch(value.strip()):
        return value.strip()
    return None
