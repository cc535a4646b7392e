"""Cross-agent signals: short typed notes from one agent to others, kept in ``signals.sqlite``.

A signal is added by ``infractl signal add`` (an agent's skill may call it) or read from the
drop file an agent writes in its workspace (``stores.coordination.drops``). Ids are stable: a signal
read twice from a drop file, or an open signal added again with the same words, is stored once.
A signal is open until it is resolved or expires; closed ones stay for the record.

Blocking, like every store: the daemon calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from stores.sqlite import Database, transaction

#: The target that addresses every agent but the sender.
ALL = "all"
DEFAULT_TTL = timedelta(days=7)
MAX_TEXT = 2000
_DURATION = re.compile(r"^\s*(\d{1,5})\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class SignalKind(StrEnum):
    FACT = "fact"
    DECISION = "decision"
    REQUEST = "request"
    WARNING = "warning"


class SignalPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """Higher is more pressing; what priorities sort by first."""
        return list(SignalPriority).index(self)


@dataclass(frozen=True)
class CrossAgentSignal:
    id: str
    kind: SignalKind
    text: str
    #: The agent it comes from.
    source: str
    #: Agent ids, or ``("all",)``.
    targets: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    priority: SignalPriority = SignalPriority.NORMAL
    #: ``cli``, or where in a drop file it was read (``.../memory/signals.jsonl:3``).
    origin: str = "cli"
    resolved_at: datetime | None = None
    resolution: str | None = None

    def addressed_to(self, agent: str) -> bool:
        """Named as a target, or sent to all by another agent."""
        return agent in self.targets or (ALL in self.targets and agent != self.source)

    def is_open(self, now: datetime) -> bool:
        return self.resolved_at is None and (self.expires_at is None or self.expires_at > now)

    def state(self, now: datetime) -> str:
        if self.resolved_at is not None:
            return "resolved"
        return "open" if self.is_open(now) else "expired"

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "text": self.text,
            "priority": self.priority.value,
            "from": self.source,
            "to": list(self.targets),
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "origin": self.origin,
            "resolved_at": _iso(self.resolved_at),
            "resolution": self.resolution,
        }
        if now is not None:
            out["state"] = self.state(now)
        return out


def signal_id(*parts: str) -> str:
    """Twelve hex digits: short enough to type after ``infractl signal resolve``."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def new_signal(
    *,
    source: str,
    targets: Iterable[str],
    kind: SignalKind,
    text: str,
    now: datetime,
    priority: SignalPriority = SignalPriority.NORMAL,
    expires_at: datetime | None = None,
    ttl: timedelta | None = DEFAULT_TTL,
    origin: str = "cli",
    id: str | None = None,
) -> CrossAgentSignal:
    """A signal made now; without ``expires_at`` it expires after ``ttl`` (None: never)."""
    wanted = normalise_targets(targets)
    text = " ".join(text.split())
    if expires_at is None and ttl is not None:
        expires_at = now + ttl
    return CrossAgentSignal(
        id=id or signal_id("cli", source, ",".join(wanted), kind.value, text, _iso(now) or ""),
        kind=kind,
        text=text,
        source=source,
        targets=wanted,
        created_at=now.astimezone(UTC),
        expires_at=expires_at.astimezone(UTC) if expires_at else None,
        priority=priority,
        origin=origin,
    )


def normalise_targets(targets: Iterable[str]) -> tuple[str, ...]:
    """Sorted, without repeats; ``all`` swallows any named agent."""
    wanted = sorted({t.strip().lower() for t in targets if t.strip()})
    return (ALL,) if ALL in wanted else tuple(wanted)


def parse_expiry(value: str, now: datetime, tz: Any = UTC) -> datetime | None:
    """``3d`` / ``12h`` / ``2w`` from now, an ISO date (its end in ``tz``) or date-time, or
    ``never`` (None). Raises ``ValueError``."""
    text = value.strip()
    if text.lower() == "never":
        return None
    match = _DURATION.match(text.lower())
    if match:
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = datetime.fromisoformat(text).replace(tzinfo=tz)
        return (day + timedelta(days=1)).astimezone(UTC)
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    priority    TEXT NOT NULL,
    source      TEXT NOT NULL,
    targets     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    origin      TEXT NOT NULL,
    resolved_at TEXT,
    resolution  TEXT
);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals (created_at);
CREATE TABLE IF NOT EXISTS drop_files (
    agent TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS signals_by_resolution ON signals (resolved_at);
CREATE TABLE IF NOT EXISTS forgotten (id TEXT PRIMARY KEY) WITHOUT ROWID;
"""
#: 2: ``forgotten``, the ids of pruned signals read from drop files.
SCHEMA_VERSION = 2
_ALL = "SELECT * FROM signals ORDER BY created_at DESC, id"
_OPEN = (
    "SELECT * FROM signals WHERE resolved_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
    " ORDER BY created_at DESC, id"
)


class SignalStore(Database):
    """One connection, serialised by a lock; every change is one transaction."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def add(self, signal: CrossAgentSignal, now: datetime) -> tuple[CrossAgentSignal, bool]:
        """Store ``signal``; returns the stored one and whether it is new. A signal whose id is
        known, or an open one with the same sender, targets, kind and words, is not added."""
        with self._lock, transaction(self._conn):
            return self._add(signal, now)

    def add_from_drop(
        self,
        agent: str,
        signals: Iterable[CrossAgentSignal],
        state: Mapping[str, Any] | None,
        now: datetime,
    ) -> int:
        """Signals read from ``agent``'s drop file and where the read stopped, together: a
        crash between the two can neither lose nor repeat a line. Returns how many were new."""
        added = 0
        with self._lock, transaction(self._conn):
            for signal in signals:
                added += self._add(signal, now)[1]
            if state is not None:
                self._conn.execute(
                    "INSERT INTO drop_files (agent, state) VALUES (?, ?)"
                    " ON CONFLICT (agent) DO UPDATE SET state = excluded.state",
                    (agent, json.dumps(state)),
                )
        return added

    def drop_state(self, agent: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT state FROM drop_files WHERE agent = ?", (agent,)
            ).fetchone()
        return dict(json.loads(row["state"])) if row else None

    def get(self, signal_id: str) -> CrossAgentSignal | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM signals WHERE id = ?", (signal_id,)).fetchone()
        return _signal(row) if row else None

    def resolve(self, signal_id: str, now: datetime, note: str | None = None) -> CrossAgentSignal:
        """Close a signal (a request done, a warning dealt with). Resolving it again changes
        nothing. Raises ``KeyError`` for an unknown id."""
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "UPDATE signals SET resolved_at = ?, resolution = ?"
                " WHERE id = ? AND resolved_at IS NULL",
                (_iso(now), note, signal_id),
            )
            row = self._conn.execute("SELECT * FROM signals WHERE id = ?", (signal_id,)).fetchone()
        if row is None:
            raise KeyError(signal_id)
        return _signal(row)

    def signals(
        self,
        now: datetime,
        *,
        to: str | None = None,
        source: str | None = None,
        include_closed: bool = False,
        limit: int = 500,
    ) -> list[CrossAgentSignal]:
        """Newest first: those addressed to ``to`` and/or sent by ``source``; open ones only
        unless ``include_closed``."""
        query = _ALL if include_closed else _OPEN
        with self._lock:
            rows = self._conn.execute(query, () if include_closed else (_iso(now),)).fetchall()
        found = []
        for signal in map(_signal, rows):
            if to is not None and not signal.addressed_to(to):
                continue
            if source is None or signal.source == source:
                found.append(signal)
            if len(found) >= limit:
                break
        return found

    def prune(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` signals resolved, or expired, before ``before``; how many went.
        Open ones are never deleted. The ids of those read from a drop file are kept, so that
        reading the file again from its start (it was replaced) does not bring them back."""
        cutoff = _iso(before)
        with self._lock, transaction(self._conn):
            rows = self._conn.execute(
                "SELECT id, origin FROM signals WHERE resolved_at < ?"
                " UNION SELECT id, origin FROM signals"
                " WHERE resolved_at IS NULL AND expires_at < ? LIMIT ?",
                (cutoff, cutoff, limit),
            ).fetchall()
            self._conn.executemany(
                "INSERT OR IGNORE INTO forgotten (id) VALUES (?)",
                [(row["id"],) for row in rows if row["origin"] != "cli"],
            )
            self._conn.executemany("DELETE FROM signals WHERE id = ?", [(r["id"],) for r in rows])
        return len(rows)

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM signals").fetchone()[0])

    def _add(self, signal: CrossAgentSignal, now: datetime) -> tuple[CrossAgentSignal, bool]:
        row = self._conn.execute("SELECT * FROM signals WHERE id = ?", (signal.id,)).fetchone()
        if row is not None:
            return _signal(row), False
        if self._conn.execute("SELECT 1 FROM forgotten WHERE id = ?", (signal.id,)).fetchone():
            return signal, False  # closed long ago and pruned: not news again
        twin = self._open_twin(signal, now)
        if twin is not None:
            return twin, False
        self._conn.execute(
            "INSERT INTO signals (id, kind, text, priority, source, targets, created_at,"
            " expires_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                signal.id,
                signal.kind.value,
                signal.text,
                signal.priority.value,
                signal.source,
                json.dumps(list(signal.targets)),
                _iso(signal.created_at),
                _iso(signal.expires_at),
                signal.origin,
            ),
        )
        return replace(signal, resolved_at=None, resolution=None), True

    def _open_twin(self, signal: CrossAgentSignal, now: datetime) -> CrossAgentSignal | None:
        rows = self._conn.execute(
            "SELECT * FROM signals WHERE source = ? AND kind = ? AND text = ? AND targets = ?"
            " AND resolved_at IS NULL",
            (signal.source, signal.kind.value, signal.text, json.dumps(list(signal.targets))),
        ).fetchall()
        return next((s for s in map(_signal, rows) if s.is_open(now)), None)


def _signal(row: sqlite3.Row) -> CrossAgentSignal:
    return CrossAgentSignal(
        id=row["id"],
        kind=SignalKind(row["kind"]),
        text=row["text"],
        source=row["source"],
        targets=tuple(json.loads(row["targets"])),
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=_parse(row["expires_at"]),
        priority=SignalPriority(row["priority"]),
        origin=row["origin"],
        resolved_at=_parse(row["resolved_at"]),
        resolution=row["resolution"],
    )


def _iso(value: datetime | None) -> str | None:
    """UTC always, so that stored times compare as strings."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
