"""Every multi-pass LLM result, kept so that ``infractl`` can show what was asked, what each
pass wrote, what the critic found and what it cost.

The rows hold text derived from the person's conversations, so the file is private (0600, like
every database here) and the source material itself is not stored: only the prompt, the
passes and the answer. Blocking: the daemon calls these methods through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stores.sqlite import Database, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_results (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    mode        TEXT NOT NULL,
    run_id      INTEGER,
    prompt      TEXT NOT NULL,
    system      TEXT NOT NULL DEFAULT '',
    draft       TEXT,
    critique    TEXT,
    refined     TEXT,
    final       TEXT,
    usage       TEXT NOT NULL DEFAULT '{}',
    latency_ms  REAL,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS llm_results_by_purpose ON llm_results (purpose, id);
"""
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LLMResultRecord:
    """One row. ``critique`` and ``usage`` are the JSON the caller gave, parsed back."""

    id: int
    created_at: datetime
    purpose: str
    mode: str
    prompt: str
    system: str = ""
    run_id: int | None = None
    draft: str | None = None
    critique: dict[str, Any] | None = None
    refined: str | None = None
    final: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "purpose": self.purpose,
            "mode": self.mode,
            "run_id": self.run_id,
            "prompt": self.prompt,
            "system": self.system,
            "draft": self.draft,
            "critique": self.critique,
            "refined": self.refined,
            "final": self.final,
            "usage": self.usage,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


class LLMHistory(Database):
    """The ``llm.sqlite`` database. One connection, serialised by a lock."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def record(
        self,
        *,
        created_at: datetime,
        purpose: str,
        mode: str,
        prompt: str,
        system: str = "",
        run_id: int | None = None,
        draft: str | None = None,
        critique: dict[str, Any] | None = None,
        refined: str | None = None,
        final: str | None = None,
        usage: dict[str, Any] | None = None,
        latency_ms: float | None = None,
        error: str | None = None,
    ) -> LLMResultRecord:
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO llm_results (created_at, purpose, mode, run_id, prompt, system,"
                " draft, critique, refined, final, usage, latency_ms, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created_at.isoformat(),
                    purpose,
                    mode,
                    run_id,
                    prompt,
                    system,
                    draft,
                    json.dumps(critique) if critique is not None else None,
                    refined,
                    final,
                    json.dumps(usage or {}),
                    latency_ms,
                    error,
                ),
            )
            return self._get(int(cursor.lastrowid or 0))

    def get(self, result_id: int) -> LLMResultRecord:
        with self._lock:
            return self._get(result_id)

    def recent(self, limit: int = 20, purpose: str | None = None) -> list[LLMResultRecord]:
        """Newest first; only those made for ``purpose`` if given."""
        with self._lock:
            if purpose is None:
                rows = self._conn.execute(
                    "SELECT * FROM llm_results ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT * FROM llm_results WHERE purpose = ? ORDER BY id DESC LIMIT ?",
                    (purpose, limit),
                ).fetchall()
        return [_row_to_record(row) for row in rows]

    def prune(self, before: datetime, limit: int = 1000) -> int:
        """Forget up to ``limit`` results made before ``before``, oldest first; how many went."""
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "DELETE FROM llm_results WHERE id IN (SELECT id FROM llm_results"
                " WHERE julianday(created_at) < julianday(?) ORDER BY id LIMIT ?)",
                (before.isoformat(), limit),
            )
            return cursor.rowcount

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM llm_results").fetchone()[0])

    def _get(self, result_id: int) -> LLMResultRecord:
        row = self._conn.execute("SELECT * FROM llm_results WHERE id = ?", (result_id,)).fetchone()
        if row is None:
            raise KeyError(f"no LLM result {result_id}")
        return _row_to_record(row)


def _row_to_record(row: sqlite3.Row) -> LLMResultRecord:
    return LLMResultRecord(
        id=row["id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        purpose=row["purpose"],
        mode=row["mode"],
        run_id=row["run_id"],
        prompt=row["prompt"],
        system=row["system"],
        draft=row["draft"],
        critique=json.loads(row["critique"]) if row["critique"] is not None else None,
        refined=row["refined"],
        final=row["final"],
        usage=json.loads(row["usage"]),
        latency_ms=row["latency_ms"],
        error=row["error"],
    )
