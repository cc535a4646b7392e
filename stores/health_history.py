"""The health history: one row per health run, kept in the run log's database.

``job_runs`` holds a health run's report too, but as one run among all the others; the history
is what a chart of health over time reads, by time, without scanning every job's runs. Old rows
go by ``prune_health``, under the retention setting. Blocking, like every store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stores.sqlite import Database, transaction

HEALTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS health_reports (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at TEXT NOT NULL,
    status     TEXT NOT NULL,
    checks     TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS health_reports_by_time ON health_reports (checked_at);
"""


@dataclass(frozen=True)
class HealthRecord:
    id: int
    checked_at: datetime
    status: str
    #: ``{"name", "status", "detail"}`` per check, as the health job reported them.
    checks: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "checked_at": self.checked_at.isoformat(),
            "status": self.status,
            "checks": self.checks,
        }


class HealthHistory(Database):
    """The health half of ``runs.sqlite``; ``RunLog`` is this and the run history."""

    def record_health(
        self, checked_at: datetime, status: str, checks: list[dict[str, str]]
    ) -> HealthRecord:
        at = _utc(checked_at)
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO health_reports (checked_at, status, checks) VALUES (?, ?, ?)",
                (at, status, json.dumps(checks)),
            )
        return HealthRecord(int(cursor.lastrowid or 0), checked_at, status, checks)

    def health_history(self, limit: int = 100, since: datetime | None = None) -> list[HealthRecord]:
        """Newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM health_reports WHERE checked_at >= ?"
                " ORDER BY checked_at DESC, id DESC LIMIT ?",
                ("" if since is None else _utc(since), limit),
            ).fetchall()
        return [
            HealthRecord(
                row["id"],
                datetime.fromisoformat(row["checked_at"]),
                row["status"],
                json.loads(row["checks"]),
            )
            for row in rows
        ]

    def prune_health(self, before: datetime) -> int:
        """Forget the reports checked before ``before``; returns how many went."""
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "DELETE FROM health_reports WHERE checked_at < ?", (_utc(before),)
            )
        return cursor.rowcount


def _utc(moment: datetime) -> str:
    """One zone and one format, so that the text order is the time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
