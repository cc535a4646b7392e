"""What one transcript entry says, with the channel's and OpenClaw's housekeeping taken off.

Both layouts store the same entry objects, so both readers hand each one to an
``EntryInterpreter``, which returns the entry's ``Content`` (a user or assistant text, or a
compaction summary) or the ``SkipReason`` it carries no memory. The rules are OpenClaw's own
transcript indexer's: its polls and wake-ups (``[OpenClaw heartbeat poll]`` ...), silent replies,
the copies it keeps of delivered replies, and whole turns it started itself (a heartbeat, a
recalled memory, the pre-compaction memory flush) are not what anybody said. That last rule
needs one bit of state, the turn being skipped, which a reader keeps in its checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from stores.openclaw.problems import SkipReason
from stores.openclaw.wrappers import (
    clean_assistant_text,
    clean_user_text,
    is_silent_reply,
    sender_name,
)


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
    #: Characters left out of the middle of a turn longer than ``MAX_TURN_CHARS``.
    cut: int = 0


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
        "reset",  # a /new or /reset inside the same session (2026.9)
        "leaf",  # a control record moving the branch's head
    }
)
SUMMARY_TYPES = frozenset({"compaction", "branch_summary"})
#: Roles that are never a person or the agent talking.
QUIET_ROLES = {
    "toolResult": SkipReason.TOOL,
    "bashExecution": SkipReason.TOOL,
    "custom": SkipReason.METADATA,
    "hookMessage": SkipReason.METADATA,
}

HEARTBEAT_ACK = "HEARTBEAT_OK"
#: What one turn keeps at most: the head and the tail, the middle marked as cut.
MAX_TURN_CHARS = 12_000
_TAIL_CHARS = 3_000
#: OpenClaw's polls and wake-ups, stored as user text (the exec one has a second line).
_WAKE_PROMPTS = (
    "[OpenClaw heartbeat poll]",
    "[OpenClaw cron wake]",
    "[OpenClaw exec completion]",
    "[OpenClaw session event]",
)
_SESSION_PROMPTS = ("[OpenClaw session new]", "[OpenClaw session reset]")
_HEARTBEAT_PROMPTS = (
    "Read HEARTBEAT.md if it exists",
    "Follow the heartbeat monitor scratch context when provided.",
    "Run the following periodic tasks (only those due based on their intervals):",
)
_FLUSH_PROMPTS = ("Pre-compaction memory flush.",)
_FLUSH_PROMPT_OLD = re.compile(
    r"Save important context from this session to the daily memory file\.\s*STRICT RULES:",
    re.IGNORECASE,
)
_SYSTEM_ENVELOPE = re.compile(r"^System(?: \(untrusted\))?: \[[^\]]+\]\s*")
_CRON_PROMPT = re.compile(r"^\[cron:[^\]]+\]\s*")
_MEDIA_ONLY = "[User sent media without caption]"
#: Assistant copies OpenClaw writes itself: the reply as delivered, a gateway's injection.
_MIRROR_MODELS = frozenset({"delivery-mirror", "gateway-injected"})
_MIRROR_KINDS = frozenset(
    {
        "channel-final",
        "channel-final-suppressed",
        "message-tool-source-reply",
        "cron-direct-delivery-context",
    }
)
#: Whole turns OpenClaw started on its own, by the tool its provenance names.
_TURN_SOURCES = {
    "heartbeat": SkipReason.HEARTBEAT,
    "memory_search": SkipReason.RECALLED,
    "memory_get": SkipReason.RECALLED,
}


class EntryInterpreter:
    def __init__(self, names: Names, *, skipping: SkipReason | None = None) -> None:
        self.names = names
        #: The turn under way is OpenClaw's own (a heartbeat, a memory flush): its replies
        #: are skipped for the same reason until the person speaks again.
        self.skipping = skipping

    def interpret(self, entry: Mapping[str, Any]) -> Content | SkipReason:
        """Raises ``BadEntry`` for a message or summary without an id or a timestamp."""
        kind = entry.get("type")
        if not isinstance(kind, str):
            raise BadEntry(f"entry type is not a string: {kind!r}"[:200])
        if kind == "message":
            return self._message(entry)
        if kind in SUMMARY_TYPES:
            self.skipping = None
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
        if role in QUIET_ROLES:
            return QUIET_ROLES[role]
        if role == "user":
            return self._user(entry, message)
        if role == "assistant":
            return self._assistant(entry, message)
        return SkipReason.UNKNOWN_TYPE

    def _user(self, entry: Mapping[str, Any], message: Mapping[str, Any]) -> Content | SkipReason:
        provenance = _mapping(message.get("provenance"))
        self.skipping = None
        if provenance.get("kind") == "internal_system":
            self.skipping = _TURN_SOURCES.get(str(provenance.get("sourceTool")))
            if self.skipping is not None:
                return self.skipping
        if provenance.get("kind") == "inter_session":
            return SkipReason.SYSTEM
        raw, blocks = _text_of(message.get("content"))
        wrapped_sender, text = clean_user_text(raw)
        reason = _user_skip(text)
        if reason is SkipReason.MEMORY_FLUSH:
            self.skipping = reason
        if reason is not None:
            return reason
        if not text:
            return _empty_reason(blocks)
        sender = sender_name(_mapping(message.get("__openclaw"))) or wrapped_sender
        return _content(entry, Role.USER, sender or self.names.user, text)

    def _assistant(
        self, entry: Mapping[str, Any], message: Mapping[str, Any]
    ) -> Content | SkipReason:
        if self.skipping is not None:
            return self.skipping
        if _is_mirror(message):
            return SkipReason.MIRROR
        if message.get("stopReason") == "error":
            return SkipReason.ERROR
        raw, blocks = _text_of(message.get("content"))
        text = _assistant_words(raw)
        if isinstance(text, SkipReason):
            return text
        if not text:
            return _empty_reason(blocks)
        return _content(entry, Role.ASSISTANT, self.names.assistant, text)


def _assistant_words(raw: str) -> str | SkipReason:
    """The agent's words without tags, or why a reply says nothing (silent, a heartbeat ack)."""
    text = clean_assistant_text(raw)
    if is_silent_reply(text):
        return SkipReason.NO_REPLY
    if HEARTBEAT_ACK in text:
        text = text.replace(HEARTBEAT_ACK, "").strip()
        if not text:
            return SkipReason.HEARTBEAT
    return text


def _user_skip(text: str) -> SkipReason | None:
    """Why a user text is OpenClaw's, not the person's; None when it is the person's."""
    first_line = text.split("\n", 1)[0].strip()
    if first_line in _WAKE_PROMPTS or text.startswith(_HEARTBEAT_PROMPTS):
        return SkipReason.HEARTBEAT
    if text.startswith(_FLUSH_PROMPTS) or _FLUSH_PROMPT_OLD.search(text[:400]):
        return SkipReason.MEMORY_FLUSH
    if text in _SESSION_PROMPTS or _SYSTEM_ENVELOPE.match(text) or _CRON_PROMPT.match(text):
        return SkipReason.SYSTEM
    if text == _MEDIA_ONLY:
        return SkipReason.IMAGE
    return None


def _is_mirror(message: Mapping[str, Any]) -> bool:
    if message.get("provider") == "openclaw" and message.get("model") in _MIRROR_MODELS:
        return True
    return _mapping(message.get("openclawDeliveryMirror")).get("kind") in _MIRROR_KINDS


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


def cut_to_size(text: str) -> tuple[str, int]:
    """A turn of at most ``MAX_TURN_CHARS``: its head and its tail, the cut marked between."""
    if len(text) <= MAX_TURN_CHARS:
        return text, 0
    head = MAX_TURN_CHARS - _TAIL_CHARS
    cut = len(text) - MAX_TURN_CHARS
    marker = f"\n\n[… {cut:,} characters left out …]\n\n"
    return text[:head] + marker + text[-_TAIL_CHARS:], cut


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
    kept, cut = cut_to_size(_utf8(text))
    return Content(
        _utf8(entry_id),
        _utf8(parent) if isinstance(parent, str) else None,
        timestamp,
        role,
        _utf8(speaker) if speaker is not None else None,
        kept,
        cut,
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
