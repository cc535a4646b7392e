"""One session's entries as OpenClaw writes them: a header, messages with their envelopes
and noise (thinking, tool calls, heartbeats, memory flushes, compactions), chained by parentId.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def iso_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wrap_channel_text(text: str, sender: str, sender_id: str, when: datetime) -> str:
    """User text as the Telegram channel delivers it: a metadata block and a time prefix."""
    stamp = when.strftime("%a %Y-%m-%d %H:%M") + " GMT+0"
    return f"{_sender_block(sender, sender_id)}\n\n[{stamp}] {text}"


def wrap_conversation_text(
    text: str, sender: str, sender_id: str, when: datetime, message_id: str
) -> str:
    """User text as newer OpenClaw versions deliver it: conversation info first, no time prefix."""
    info = {
        "message_id": message_id,
        "sender_id": sender_id,
        "sender": sender,
        "timestamp": when.strftime("%a %Y-%m-%d %H:%M") + " GMT+0",
    }
    return (
        f"Conversation info (untrusted metadata):\n```json\n{json.dumps(info, indent=2)}\n```"
        f"\n\n{_sender_block(sender, sender_id)}\n\n{text}"
    )


def _sender_block(sender: str, sender_id: str) -> str:
    meta = {
        "label": f"{sender} ({sender_id})",
        "id": sender_id,
        "name": sender,
        "username": sender.lower(),
    }
    return f"Sender (untrusted metadata):\n```json\n{json.dumps(meta, indent=2)}\n```"


@dataclass
class SessionBuilder:
    """Entries of one session, in order; ids are 8 hex chars chained by parentId."""

    session_id: str
    started: datetime
    cwd: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    _clock: datetime | None = None
    _counter: int = 0

    def __post_init__(self) -> None:
        self._clock = self.started
        self.entries.append(
            {
                "type": "session",
                "version": 3,
                "id": self.session_id,
                "timestamp": iso_time(self.started),
                "cwd": self.cwd,
            }
        )
        self._add({"type": "model_change", "provider": "anthropic", "modelId": "claude-sonnet"})

    def _next_id(self) -> str:
        self._counter += 1
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.session_id}/{self._counter}").hex[:8]

    def _add(self, entry: dict[str, Any], gap: timedelta = timedelta(seconds=20)) -> str:
        assert self._clock is not None
        self._clock += gap
        parent = self.entries[-1].get("id") if len(self.entries) > 1 else None
        entry_id = self._next_id()
        self.entries.append(
            {**entry, "id": entry_id, "parentId": parent, "timestamp": iso_time(self._clock)}
        )
        return entry_id

    @property
    def now(self) -> datetime:
        assert self._clock is not None
        return self._clock

    def add(self, entry: dict[str, Any]) -> str:
        """Any entry, as given (an unknown type, an odd message); id, parent, time are added."""
        return self._add(entry)

    def user(
        self,
        text: str,
        sender: str = "Dana",
        sender_id: str = "5550001",
        *,
        wrapper: Literal["sender", "conversation", "none"] = "sender",
        image: bool = False,
    ) -> str:
        """A message from the person; ``wrapper`` picks the envelope of the OpenClaw version."""
        when = self.now + timedelta(seconds=30)
        if wrapper == "sender":
            text = wrap_channel_text(text, sender, sender_id, when)
        elif wrapper == "conversation":
            text = wrap_conversation_text(text, sender, sender_id, when, str(self._counter + 1))
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if image:
            content.insert(0, {"type": "image", "mimeType": "image/jpeg", "data": ""})
        return self._add(
            {
                "type": "message",
                "message": {"role": "user", "content": content, "timestamp": epoch_ms(when)},
            },
            timedelta(seconds=30),
        )

    def assistant(
        self, text: str, *, thinking: str | None = None, stop_reason: str = "stop"
    ) -> str:
        blocks: list[dict[str, Any]] = []
        if thinking:
            blocks.append({"type": "thinking", "thinking": thinking})
        if text:
            blocks.append({"type": "text", "text": f"[[reply_to_current]] {text}"})
        return self._add(
            {
                "type": "message",
                "message": {
                    "role": "assistant",
                    "content": blocks,
                    "model": "claude-sonnet",
                    "stopReason": stop_reason,
                    "timestamp": epoch_ms(self.now),
                    "usage": {
                        "input": 900,
                        "output": 60,
                        "totalTokens": 960,
                        "cost": {"total": 0.0041},
                    },
                },
            }
        )

    def tool(
        self, name: str, arguments: dict[str, Any], result: str, is_error: bool = False
    ) -> None:
        call_id = f"call_{self._counter}"
        self._add(
            {
                "type": "message",
                "message": {
                    "role": "assistant",
                    "stopReason": "toolUse",
                    "timestamp": epoch_ms(self.now),
                    "content": [
                        {"type": "toolCall", "id": call_id, "name": name, "arguments": arguments}
                    ],
                },
            }
        )
        self._add(
            {
                "type": "message",
                "message": {
                    "role": "toolResult",
                    "toolCallId": call_id,
                    "toolName": name,
                    "isError": is_error,
                    "content": [{"type": "text", "text": result}],
                    "timestamp": epoch_ms(self.now),
                },
            },
            timedelta(seconds=1),
        )

    def heartbeat(self) -> None:
        self._add(
            {
                "type": "message",
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "Read HEARTBEAT.md if it exists (workspace context). "
                            "Follow it strictly. If nothing needs attention, reply HEARTBEAT_OK.",
                        }
                    ],
                },
            }
        )
        self.assistant("HEARTBEAT_OK")

    def memory_flush(self, reply: str = "NO_REPLY") -> None:
        """OpenClaw's turn before a compaction: write durable notes to memory/, then reply."""
        day = f"{self.now:%Y-%m-%d}"
        self._add(
            {
                "type": "message",
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "Pre-compaction memory flush. Store durable memories now "
                            f"(use memory/{day}.md; create memory/ if needed). "
                            "If nothing to store, reply with NO_REPLY.",
                        }
                    ],
                },
            }
        )
        self.tool("write", {"path": f"memory/{day}.md", "content": "- notes"}, "ok")
        self.assistant(reply)

    def compaction(self, summary: str) -> str:
        kept = self.entries[-1]["id"]
        return self._add(
            {
                "type": "compaction",
                "summary": summary,
                "firstKeptEntryId": kept,
                "tokensBefore": 21000,
            }
        )

    def jsonl(self) -> str:
        return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries)
