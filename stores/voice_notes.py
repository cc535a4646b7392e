"""Voice notes the person sent and what they said: ``voice.sqlite``.

The audio itself is not kept; the transcript is, with where it came from and the id of the
memory chunk it became, so a note can be found again and forgotten from memory on request.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stores.sqlite import Database, transaction
from stores.transcription import TranscriptionResult


@dataclass(frozen=True)
class VoiceNote:
    id: int
    at: datetime
    chat_id: int
    message_id: int
    user_id: int | None
    result: TranscriptionResult
    memory_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "user_id": self.user_id,
            **self.result.to_dict(),
            "memory_id": self.memory_id,
        }


SCHEMA = """
CREATE TABLE IF NOT EXISTS voice_notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    user_id    INTEGER,
    text       TEXT NOT NULL,
    language   TEXT,
    duration_s REAL,
    backend    TEXT NOT NULL,
    memory_id  TEXT
);
"""
SCHEMA_VERSION = 1


class VoiceNotes(Database):
    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def add(
        self,
        result: TranscriptionResult,
        *,
        at: datetime,
        chat_id: int,
        message_id: int,
        user_id: int | None,
    ) -> VoiceNote:
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO voice_notes (at, chat_id, message_id, user_id, text, language,"
                " duration_s, backend) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    at.astimezone(UTC).isoformat(),
                    chat_id,
                    message_id,
                    user_id,
                    result.text,
                    result.language,
                    result.duration_s,
                    result.backend,
                ),
            )
            return self._get(int(cursor.lastrowid or 0))

    def set_memory_id(self, note_id: int, memory_id: str) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "UPDATE voice_notes SET memory_id = ? WHERE id = ?", (memory_id, note_id)
            )

    def recent(self, limit: int = 20) -> list[VoiceNote]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM voice_notes ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_note(row) for row in rows]

    def _get(self, note_id: int) -> VoiceNote:
        row = self._conn.execute("SELECT * FROM voice_notes WHERE id = ?", (note_id,)).fetchone()
        return _note(row)


def _note(row: sqlite3.Row) -> VoiceNote:
    return VoiceNote(
        id=row["id"],
        at=datetime.fromisoformat(row["at"]),
        chat_id=row["chat_id"],
        message_id=row["message_id"],
        user_id=row["user_id"],
        result=TranscriptionResult(row["text"], row["language"], row["duration_s"], row["backend"]),
        memory_id=row["memory_id"],
    )
