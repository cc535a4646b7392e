"""The mistakes log: what went wrong, per agent, in ``mistakes.sqlite``.

Entries come from the person (``infractl mistake add``) or from the transcripts
(``stores.coordination.mistake_scan``). A detected entry keeps its source (session, entry id,
file and line or database row), the words of the entry and why the detector fired, so that
the weekly synthesis can quote it; it is stored once per (agent, session, entry), however
often the same transcripts are scanned. The store also remembers how far each agent's
transcripts have been scanned, and which agents each recommendation of the synthesis was about.

Blocking, like every store: the daemon calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from stores.sqlite import Database, transaction

MAX_QUOTE = 600


class MistakeRule(StrEnum):
    """What recorded a mistake: the person, or one of the detector's rules."""

    MANUAL = "manual"
    ASSISTANT_ERROR = "assistant_error"
    TOOL_ERROR = "tool_error"
    USER_CORRECTION = "user_correction"


@dataclass(frozen=True)
class MistakeEntry:
    id: str
    agent: str
    #: What went wrong, in a line: what the synthesis clusters by.
    text: str
    rule: MistakeRule
    #: Why it was recorded: the detector's reason, or "recorded by hand".
    reason: str
    #: When it happened (the entry's time; for a manual one, when it was recorded).
    at: datetime
    lesson: str | None = None
    session_id: str | None = None
    entry_id: str | None = None
    #: ``path:line`` of a transcript line, ``db#session:seq`` of a database row.
    source: str | None = None
    #: The source entry's own words, clipped.
    quote: str | None = None
    #: What came just before: the assistant turn a correction answered.
    context: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "text": self.text,
            "rule": self.rule.value,
            "reason": self.reason,
            "at": self.at.astimezone(UTC).isoformat(),
            "lesson": self.lesson,
            "session_id": self.session_id,
            "entry_id": self.entry_id,
            "source": self.source,
            "quote": self.quote,
            "context": self.context,
        }


def detected_id(agent: str, session_id: str, entry_id: str) -> str:
    return _digest("detected", agent, session_id, entry_id)


def manual_mistake(agent: str, text: str, now: datetime, lesson: str | None = None) -> MistakeEntry:
    text = " ".join(text.split())
    return MistakeEntry(
        id=_digest("manual", agent, text, now.astimezone(UTC).isoformat()),
        agent=agent,
        text=text,
        rule=MistakeRule.MANUAL,
        reason="recorded by hand",
        at=now.astimezone(UTC),
        lesson=" ".join(lesson.split()) if lesson else None,
    )


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


SCHEMA = """
CREATE TABLE IF NOT EXISTS mistakes (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    text        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL,
    lesson      TEXT,
    session_id  TEXT,
    entry_id    TEXT,
    source      TEXT,
    quote       TEXT,
    context     TEXT,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mistakes_by_time ON mistakes (at);
CREATE TABLE IF NOT EXISTS scanned (
    agent   TEXT PRIMARY KEY,
    through TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recommendation_agents (
    recommendation_id TEXT PRIMARY KEY,
    agents            TEXT NOT NULL,
    week              TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
"""
SCHEMA_VERSION = 1
_INSERT = (
    "INSERT OR IGNORE INTO mistakes (id, agent, text, rule, reason, at, lesson, session_id,"
    " entry_id, source, quote, context, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class MistakeStore(Database):
    """One connection, serialised by a lock; every change is one transaction."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def add(self, entries: Iterable[MistakeEntry], now: datetime) -> int:
        """Store the entries not stored yet; returns how many were new."""
        with self._lock, transaction(self._conn):
            return self._insert(entries, now)

    def record_scan(
        self, agent: str, entries: Iterable[MistakeEntry], through: datetime, now: datetime
    ) -> int:
        """What a scan found and how far it got, together."""
        with self._lock, transaction(self._conn):
            added = self._insert(entries, now)
            self._conn.execute(
                "INSERT INTO scanned (agent, through) VALUES (?, ?)"
                " ON CONFLICT (agent) DO UPDATE SET through = excluded.through",
                (agent, _iso(through)),
            )
            return added

    def scanned_through(self, agent: str) -> datetime | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT through FROM scanned WHERE agent = ?", (agent,)
            ).fetchone()
        return datetime.fromisoformat(row["through"]) if row else None

    def get(self, mistake_id: str) -> MistakeEntry | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM mistakes WHERE id = ?", (mistake_id,)
            ).fetchone()
        return _entry(row) if row else None

    def mistakes(
        self,
        *,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        rule: MistakeRule | None = None,
        limit: int = 500,
    ) -> list[MistakeEntry]:
        """Newest first."""
        clauses, args = [], []
        for column, op, value in (
            ("agent", "=", agent),
            ("at", ">=", _iso(since)),
            ("at", "<", _iso(until)),
            ("rule", "=", rule.value if rule else None),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM mistakes {where} ORDER BY at DESC, id LIMIT ?",  # noqa: S608 - fixed fragments
                (*args, limit),
            ).fetchall()
        return [_entry(r) for r in rows]

    def link_recommendation(self, rec_id: str, agents: Sequence[str], week: str) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO recommendation_agents (recommendation_id, agents, week)"
                " VALUES (?, ?, ?)",
                (rec_id, json.dumps(sorted(agents)), week),
            )

    def recommendation_agents(self) -> dict[str, tuple[str, ...]]:
        """Recommendation id -> the agents it was made for."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM recommendation_agents").fetchall()
        return {r["recommendation_id"]: tuple(json.loads(r["agents"])) for r in rows}

    def _insert(self, entries: Iterable[MistakeEntry], now: datetime) -> int:
        added = 0
        for e in entries:
            cursor = self._conn.execute(
                _INSERT,
                (
                    e.id,
                    e.agent,
                    e.text,
                    e.rule.value,
                    e.reason,
                    _iso(e.at),
                    e.lesson,
                    e.session_id,
                    e.entry_id,
                    e.source,
                    e.quote,
                    e.context,
                    _iso(now),
                ),
            )
            added += cursor.rowcount
        return added


def _entry(row: sqlite3.Row) -> MistakeEntry:
    return MistakeEntry(
        id=row["id"],
        agent=row["agent"],
        text=row["text"],
        rule=MistakeRule(row["rule"]),
        reason=row["reason"],
        at=datetime.fromisoformat(row["at"]),
        lesson=row["lesson"],
        session_id=row["session_id"],
        entry_id=row["entry_id"],
        source=row["source"],
        quote=row["quote"],
        context=row["context"],
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _iso(value: datetime | None) -> str | None:
    """UTC always, so that stored times compare as strings."""
    return value.astimezone(UTC).isoformat() if value is not None else None
