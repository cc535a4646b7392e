"""Writing an OpenClaw home the way OpenClaw writes one: agents, workspaces, both transcript
layouts with the noise real transcripts carry (session headers, model changes, tool calls,
thinking, heartbeats, compactions). ``infrad --sample`` and the tests build their homes with it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

_SCHEMA = """
CREATE TABLE session_nodes (
  session_key TEXT NOT NULL PRIMARY KEY, current_session_id TEXT NOT NULL,
  entry_json TEXT NOT NULL, entry_valid INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL
);
CREATE TABLE session_windows (
  session_id TEXT NOT NULL PRIMARY KEY, session_key TEXT NOT NULL, previous_session_id TEXT,
  reason TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE transcript_events (
  session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT,
  event_zstd BLOB, created_at INTEGER NOT NULL, PRIMARY KEY (session_id, seq)
);
PRAGMA user_version = 4;
"""


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso(when: datetime) -> str:
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
                "timestamp": _iso(self.started),
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
            {**entry, "id": entry_id, "parentId": parent, "timestamp": _iso(self._clock)}
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
                "message": {"role": "user", "content": content, "timestamp": _ms(when)},
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
                    "timestamp": _ms(self.now),
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
                    "timestamp": _ms(self.now),
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
                    "timestamp": _ms(self.now),
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


class OpenClawWriter:
    """Writes agents, workspaces and transcripts under an OpenClaw state directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.agents: list[str] = []

    def workspace(self, agent: str) -> Path:
        return self.home / ("workspace" if agent == "main" else f"workspace-{agent}")

    def add_agent(self, agent: str, name: str, user: str, memory: str = "") -> Path:
        ws = self.workspace(agent)
        (ws / "memory").mkdir(parents=True, exist_ok=True)
        (ws / "IDENTITY.md").write_text(f"# IDENTITY.md - Who Am I?\n\n- **Name:** {name}\n")
        (ws / "USER.md").write_text(f"# USER.md - About Your Human\n\n- **Name:** {user}\n")
        (ws / "MEMORY.md").write_text(f"# MEMORY.md\n\n{memory}")
        self.agents.append(agent)
        self._write_config()
        return ws

    def _write_config(self) -> None:
        listed = "".join(f'      {{ id: "{agent}" }},\n' for agent in self.agents)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "openclaw.json").write_text(
            "// OpenClaw configuration (JSON5)\n{\n  agents: {\n    list: [\n"
            + listed
            + "    ],\n  },\n}\n"
        )

    def new_session(self, agent: str, started: datetime) -> SessionBuilder:
        sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{agent}/{started.isoformat()}"))
        return SessionBuilder(sid, started, str(self.workspace(agent)))

    def write_legacy(
        self,
        agent: str,
        session_key: str,
        live: SessionBuilder,
        archived: list[SessionBuilder] | None = None,
        deleted: list[SessionBuilder] | None = None,
    ) -> Path:
        """``live`` as ``<id>.jsonl`` in ``sessions.json``; the others as reset/deleted archives."""
        sessions = self.home / "agents" / agent / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        for state, olds in (("reset", archived or []), ("deleted", deleted or [])):
            for old in olds:
                stamp = _iso(old.now).replace(":", "-")
                (sessions / f"{old.session_id}.jsonl.{state}.{stamp}").write_text(old.jsonl())
        live_path = sessions / f"{live.session_id}.jsonl"
        live_path.write_text(live.jsonl())
        index = {
            session_key: {
                "sessionId": live.session_id,
                "updatedAt": _ms(live.now),
                "sessionFile": str(live_path),
                "chatType": "direct",
                "lastChannel": "telegram",
            }
        }
        (sessions / "sessions.json").write_text(json.dumps(index, indent=2))
        return live_path

    def write_sqlite(
        self, agent: str, session_key: str, chain: list[SessionBuilder], compress: bool = False
    ) -> Path:
        db_path = self.database(agent)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db_path)
        try:
            conn.executescript(_SCHEMA)
            self._insert_chain(conn, session_key, chain, compress)
            conn.commit()
        finally:
            conn.close()
        return db_path

    def database(self, agent: str) -> Path:
        return self.home / "agents" / agent / "agent" / "openclaw-agent.sqlite"

    def append_sqlite(
        self, agent: str, session_key: str, chain: list[SessionBuilder], compress: bool = False
    ) -> Path:
        """What the builders of ``chain`` gained since they were written: new rows, new sessions."""
        db_path = self.database(agent)
        conn = sqlite3.connect(db_path)
        try:
            self._insert_chain(conn, session_key, chain, compress)
            conn.commit()
        finally:
            conn.close()
        return db_path

    def _insert_chain(
        self,
        conn: sqlite3.Connection,
        session_key: str,
        chain: list[SessionBuilder],
        compress: bool,
    ) -> None:
        previous = None
        for index, session in enumerate(chain):
            conn.execute(
                "INSERT OR IGNORE INTO session_windows VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.session_id,
                    session_key,
                    previous,
                    "initial" if index == 0 else "reset",
                    _ms(session.started),
                    _ms(session.now),
                ),
            )
            for seq, entry in enumerate(session.entries):
                self._insert_event(conn, session.session_id, seq, entry, compress)
            previous = session.session_id
        conn.execute(
            "INSERT OR REPLACE INTO session_nodes VALUES (?, ?, ?, 1, ?)",
            (
                session_key,
                chain[-1].session_id,
                json.dumps({"sessionId": chain[-1].session_id}),
                _ms(chain[-1].now),
            ),
        )

    @staticmethod
    def _insert_event(
        conn: sqlite3.Connection, session_id: str, seq: int, entry: dict[str, Any], compress: bool
    ) -> None:
        text = json.dumps(entry, ensure_ascii=False)
        created = _ms(datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")))
        if compress:
            import zstandard

            blob = zstandard.ZstdCompressor().compress(text.encode())
            conn.execute(
                "INSERT OR IGNORE INTO transcript_events VALUES (?, ?, NULL, ?, ?)",
                (session_id, seq, blob, created),
            )
        else:
            conn.execute(
                "INSERT OR IGNORE INTO transcript_events VALUES (?, ?, ?, NULL, ?)",
                (session_id, seq, text, created),
            )
