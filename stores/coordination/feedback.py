"""Recommendations the daemon sent and what the person answered: ``feedback.sqlite``.

A recommendation is stored before it is delivered (``pending``), so that one made while
Telegram is unreachable, or with no bot at all, is kept and delivered later. Each delivery is
a *round*: buttons carry the round they were sent with, so a tap on the buttons of an earlier
round (a snoozed recommendation that has since come back) is recognised as stale. A choice is
recorded once per round; a second tap, or the same callback replayed, changes nothing.

Blocking, like every store: the daemon calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from stores.sqlite import Database, transaction

#: Short, so that ``fb:<id>:<round>:<choice>:<tag>`` stays within Telegram's 64 bytes.
RECOMMENDATION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
SNOOZE = timedelta(days=1)


class RecommendationState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    ANSWERED = "answered"
    SNOOZED = "snoozed"
    ARCHIVED = "archived"


class Choice(StrEnum):
    USEFUL = "useful"
    NOT_USEFUL = "not_useful"
    ARCHIVE = "archive"
    SNOOZE = "snooze"


_STATE_AFTER = {
    Choice.USEFUL: RecommendationState.ANSWERED,
    Choice.NOT_USEFUL: RecommendationState.ANSWERED,
    Choice.ARCHIVE: RecommendationState.ARCHIVED,
    Choice.SNOOZE: RecommendationState.SNOOZED,
}


class ChoiceOutcome(StrEnum):
    RECORDED = "recorded"
    #: No such recommendation (a forgotten database, or an id never issued).
    UNKNOWN = "unknown"
    #: A button of an earlier delivery, or of one that is not out.
    STALE = "stale"
    #: This round was answered already: a second tap or a replayed callback.
    ALREADY = "already"


@dataclass(frozen=True)
class Delivery:
    chat_id: int
    message_id: int
    round: int


@dataclass(frozen=True)
class Recommendation:
    id: str
    title: str
    body: str
    source_job: str
    created_at: datetime
    state: RecommendationState = RecommendationState.PENDING
    #: How many times it has gone out; the buttons of the latest round are the live ones.
    round: int = 0
    sent_at: datetime | None = None
    snooze_until: datetime | None = None
    choice: Choice | None = None
    answered_at: datetime | None = None
    deliveries: tuple[Delivery, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "source_job": self.source_job,
            "created_at": self.created_at.isoformat(),
            "state": self.state.value,
            "round": self.round,
            "sent_at": _iso(self.sent_at),
            "snooze_until": _iso(self.snooze_until),
            "choice": self.choice.value if self.choice else None,
            "answered_at": _iso(self.answered_at),
            "deliveries": [
                {"chat_id": d.chat_id, "message_id": d.message_id, "round": d.round}
                for d in self.deliveries
            ],
        }


@dataclass(frozen=True)
class FeedbackEntry:
    recommendation_id: str
    choice: Choice
    user_id: int | None
    at: datetime
    round: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendation_id": self.recommendation_id,
            "choice": self.choice.value,
            "user_id": self.user_id,
            "at": self.at.isoformat(),
            "round": self.round,
        }


@dataclass(frozen=True)
class ChoiceResult:
    outcome: ChoiceOutcome
    recommendation: Recommendation | None = None
    entry: FeedbackEntry | None = None


@dataclass(frozen=True)
class FeedbackStats:
    recommendations: int
    by_state: dict[str, int] = field(default_factory=dict)
    by_choice: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "recommendations": self.recommendations,
            "by_state": self.by_state,
            "by_choice": self.by_choice,
            "by_source": self.by_source,
        }
        delivered = self.recommendations - self.by_state.get(RecommendationState.PENDING, 0)
        answered = delivered - self.by_state.get(RecommendationState.SENT, 0)
        out["delivered"] = delivered
        out["answered"] = answered
        return out


SCHEMA = """
CREATE TABLE IF NOT EXISTS recommendations (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    source_job   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    state        TEXT NOT NULL,
    round        INTEGER NOT NULL DEFAULT 0,
    sent_at      TEXT,
    snooze_until TEXT,
    choice       TEXT,
    answered_at  TEXT
);
CREATE INDEX IF NOT EXISTS recommendations_by_state ON recommendations (state, snooze_until);
CREATE TABLE IF NOT EXISTS deliveries (
    recommendation_id TEXT NOT NULL REFERENCES recommendations (id),
    round             INTEGER NOT NULL,
    chat_id           INTEGER NOT NULL,
    message_id        INTEGER NOT NULL,
    sent_at           TEXT NOT NULL,
    PRIMARY KEY (recommendation_id, round, chat_id)
);
CREATE TABLE IF NOT EXISTS feedback (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    recommendation_id TEXT NOT NULL REFERENCES recommendations (id),
    round             INTEGER NOT NULL,
    choice            TEXT NOT NULL,
    user_id           INTEGER,
    at                TEXT NOT NULL,
    UNIQUE (recommendation_id, round)
);
CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback (at);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
"""
SCHEMA_VERSION = 1


class FeedbackStore(Database):
    """One connection, serialised by a lock; every change is one transaction."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def add_recommendation(
        self, title: str, body: str, source_job: str, now: datetime, *, id: str | None = None
    ) -> Recommendation:
        """Store a recommendation to be delivered. With an ``id`` already known, the stored one
        is returned unchanged: a job that runs again does not send the same thing twice."""
        rec_id = id if id is not None else secrets.token_hex(5)
        if not RECOMMENDATION_ID.match(rec_id):
            raise ValueError(f"not a recommendation id: {rec_id!r} (a-z, 0-9, '-', '_'; 24 max)")
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT OR IGNORE INTO recommendations (id, title, body, source_job, created_at,"
                " state) VALUES (?, ?, ?, ?, ?, ?)",
                (rec_id, title, body, source_job, _iso(now), RecommendationState.PENDING.value),
            )
            return self._get(rec_id)

    def get(self, rec_id: str) -> Recommendation | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM recommendations WHERE id = ?", (rec_id,)
            ).fetchone()
            return self._recommendation(row) if row is not None else None

    def pending(self) -> list[Recommendation]:
        """Waiting for their first delivery, oldest first."""
        return self._where("state = ?", (RecommendationState.PENDING.value,), "created_at, id")

    def due_snoozed(self, now: datetime) -> list[Recommendation]:
        """Snoozed ones whose time has come, to be delivered again."""
        return self._where(
            "state = ? AND snooze_until <= ?",
            (RecommendationState.SNOOZED.value, _iso(now)),
            "snooze_until, id",
        )

    def start_delivery(self, rec_id: str, now: datetime) -> Recommendation:
        """Open a new round before the message goes out, so a tap can never arrive first."""
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "UPDATE recommendations SET round = round + 1, state = ?, sent_at = ?,"
                " snooze_until = NULL WHERE id = ?",
                (RecommendationState.SENT.value, _iso(now), rec_id),
            )
            return self._get(rec_id)

    def add_delivery(
        self, rec_id: str, round: int, chat_id: int, message_id: int, now: datetime
    ) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO deliveries (recommendation_id, round, chat_id, message_id,"
                " sent_at) VALUES (?, ?, ?, ?, ?)",
                (rec_id, round, chat_id, message_id, _iso(now)),
            )

    def undeliverable(self, rec_id: str, round: int) -> None:
        """No chat got this round: back to pending, to be tried again."""
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "UPDATE recommendations SET state = ? WHERE id = ? AND round = ? AND state = ?",
                (
                    RecommendationState.PENDING.value,
                    rec_id,
                    round,
                    RecommendationState.SENT.value,
                ),
            )

    def record_choice(
        self,
        rec_id: str,
        round: int,
        choice: Choice,
        user_id: int | None,
        now: datetime,
        *,
        snooze: timedelta = SNOOZE,
    ) -> ChoiceResult:
        with self._lock, transaction(self._conn):
            row = self._conn.execute(
                "SELECT * FROM recommendations WHERE id = ?", (rec_id,)
            ).fetchone()
            if row is None:
                return ChoiceResult(ChoiceOutcome.UNKNOWN)
            current = self._recommendation(row)
            if round != current.round or current.state is RecommendationState.PENDING:
                return ChoiceResult(ChoiceOutcome.STALE, current)
            if current.state is not RecommendationState.SENT:
                return ChoiceResult(ChoiceOutcome.ALREADY, current)
            entry = FeedbackEntry(rec_id, choice, user_id, _utc(now), round)
            self._conn.execute(
                "INSERT INTO feedback (recommendation_id, round, choice, user_id, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (rec_id, round, choice.value, user_id, _iso(now)),
            )
            until = _iso(now + snooze) if choice is Choice.SNOOZE else None
            self._conn.execute(
                "UPDATE recommendations SET state = ?, choice = ?, answered_at = ?,"
                " snooze_until = ? WHERE id = ?",
                (_STATE_AFTER[choice].value, choice.value, _iso(now), until, rec_id),
            )
            return ChoiceResult(ChoiceOutcome.RECORDED, self._get(rec_id), entry)

    def stats(self) -> FeedbackStats:
        with self._lock:
            states = self._conn.execute(
                "SELECT state, count(*) AS n FROM recommendations GROUP BY state"
            ).fetchall()
            choices = self._conn.execute(
                "SELECT choice, count(*) AS n FROM feedback GROUP BY choice"
            ).fetchall()
            sources = self._conn.execute(
                "SELECT source_job, count(*) AS n FROM recommendations GROUP BY source_job"
            ).fetchall()
        by_state = Counter({row["state"]: row["n"] for row in states})
        return FeedbackStats(
            recommendations=sum(by_state.values()),
            by_state=dict(sorted(by_state.items())),
            by_choice={row["choice"]: row["n"] for row in choices},
            by_source={row["source_job"]: row["n"] for row in sources},
        )

    def feedback_since(self, when: datetime, until: datetime | None = None) -> list[FeedbackEntry]:
        """Every answer from ``when`` on (and before ``until``), oldest first: what the daily
        sync and the weekly synthesis read, each its own window so none is counted twice."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM feedback WHERE at >= ? AND (? IS NULL OR at < ?) ORDER BY at, id",
                (_iso(when), _iso(until), _iso(until)),
            ).fetchall()
        return [
            FeedbackEntry(
                recommendation_id=row["recommendation_id"],
                choice=Choice(row["choice"]),
                user_id=row["user_id"],
                at=datetime.fromisoformat(row["at"]),
                round=row["round"],
            )
            for row in rows
        ]

    def _where(
        self, clause: str, args: tuple[Any, ...], order: str, limit: int = -1
    ) -> list[Recommendation]:
        with self._lock:
            # Clause and order are fixed fragments of this module; values are bound.
            sql = f"SELECT * FROM recommendations WHERE {clause} ORDER BY {order} LIMIT ?"  # noqa: S608
            rows = self._conn.execute(sql, (*args, limit)).fetchall()
            return [self._recommendation(row) for row in rows]

    def _get(self, rec_id: str) -> Recommendation:
        row = self._conn.execute("SELECT * FROM recommendations WHERE id = ?", (rec_id,)).fetchone()
        if row is None:
            raise KeyError(f"no recommendation {rec_id!r}")
        return self._recommendation(row)

    def _recommendation(self, row: sqlite3.Row) -> Recommendation:
        deliveries = self._conn.execute(
            "SELECT chat_id, message_id, round FROM deliveries WHERE recommendation_id = ?"
            " ORDER BY round, chat_id",
            (row["id"],),
        ).fetchall()
        return Recommendation(
            id=row["id"],
            title=row["title"],
            body=row["body"],
            source_job=row["source_job"],
            created_at=datetime.fromisoformat(row["created_at"]),
            state=RecommendationState(row["state"]),
            round=row["round"],
            sent_at=_parse(row["sent_at"]),
            snooze_until=_parse(row["snooze_until"]),
            choice=Choice(row["choice"]) if row["choice"] else None,
            answered_at=_parse(row["answered_at"]),
            deliveries=tuple(
                Delivery(d["chat_id"], d["message_id"], d["round"]) for d in deliveries
            ),
        )

    # Last in the class: defined earlier, its name would shadow the builtin in annotations.
    def list(
        self, state: RecommendationState | None = None, limit: int = 50
    ) -> list[Recommendation]:
        """Newest first."""
        if state is None:
            return self._where("1", (), "created_at DESC, id DESC", limit)
        return self._where("state = ?", (state.value,), "created_at DESC, id DESC", limit)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    """UTC always, so that stored times compare as strings."""
    return _utc(value).isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
