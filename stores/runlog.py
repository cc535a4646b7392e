"""Run history: every run of every job, and per job the state that status and health read.

``job_runs`` is append-mostly (a run is inserted as ``running`` and finished once); ``job_state``
is derived from it in the same transaction, so the two never disagree. Blocking: the daemon
calls these methods through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from stores.health_history import HEALTH_SCHEMA, HealthHistory
from stores.sqlite import transaction


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    MISSED = "missed"
    ABANDONED = "abandoned"


#: Statuses that count towards ``consecutive_failures``; a success resets the count.
FAILURES = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT})


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    CATCHUP = "catchup"
    STARTUP = "startup"
    #: Started by the file watcher: transcripts or notes changed.
    CHANGE = "change"


@dataclass(frozen=True)
class JobRun:
    run_id: int
    job: str
    trigger: RunTrigger
    status: RunStatus
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    error_type: str | None = None
    error_message: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "trigger": self.trigger.value,
            "status": self.status.value,
            "scheduled_for": _iso(self.scheduled_for),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_ms": self.duration_ms,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "stats": self.stats,
        }


@dataclass(frozen=True)
class JobState:
    job: str
    last_run_id: int | None = None
    last_status: RunStatus | None = None
    last_finished_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    schedule_anchor: datetime | None = None
    paused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "last_run_id": self.last_run_id,
            "last_status": self.last_status.value if self.last_status else None,
            "last_finished_at": _iso(self.last_finished_at),
            "last_success_at": _iso(self.last_success_at),
            "consecutive_failures": self.consecutive_failures,
            "schedule_anchor": _iso(self.schedule_anchor),
            "paused": self.paused,
        }


SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS job_runs (
    run_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job           TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    status        TEXT NOT NULL,
    scheduled_for TEXT,
    started_at    TEXT,
    finished_at   TEXT,
    duration_ms   REAL,
    error_type    TEXT,
    error_message TEXT,
    stats         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job, run_id);
CREATE INDEX IF NOT EXISTS job_runs_by_status ON job_runs (status);
CREATE TABLE IF NOT EXISTS job_state (
    job                  TEXT PRIMARY KEY,
    last_run_id          INTEGER,
    last_status          TEXT,
    last_finished_at     TEXT,
    last_success_at      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    schedule_anchor      TEXT,
    paused               INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
"""
    + HEALTH_SCHEMA
)
#: 2: the health history (``stores.health_history``).
SCHEMA_VERSION = 2


class RunLog(HealthHistory):
    """The ``runs.sqlite`` database. One connection, serialised by a lock. The health history
    shares it (``HealthHistory``)."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def start_run(
        self, job: str, trigger: RunTrigger, started_at: datetime, scheduled_for: datetime | None
    ) -> int:
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO job_runs (job, trigger, status, scheduled_for, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    job,
                    trigger.value,
                    RunStatus.RUNNING.value,
                    _iso(scheduled_for),
                    _iso(started_at),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            self._upsert_state(job)
            return run_id

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        finished_at: datetime,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> JobRun:
        with self._lock, transaction(self._conn):
            row = self._conn.execute(
                "SELECT job, started_at FROM job_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no run {run_id}")
            started = _parse(row["started_at"])
            duration = (finished_at - started).total_seconds() * 1000 if started else None
            self._conn.execute(
                "UPDATE job_runs SET status = ?, finished_at = ?, duration_ms = ?,"
                " error_type = ?, error_message = ?, stats = ? WHERE run_id = ?",
                (
                    status.value,
                    _iso(finished_at),
                    duration,
                    error_type,
                    error_message,
                    json.dumps(stats or {}, default=str),
                    run_id,
                ),
            )
            self._apply_outcome(row["job"], run_id, status, finished_at)
            return self._run(run_id)

    def record(
        self,
        job: str,
        trigger: RunTrigger,
        status: RunStatus,
        at: datetime,
        *,
        scheduled_for: datetime | None = None,
        error_message: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> JobRun:
        """A run that never started: skipped because one was running, or missed entirely."""
        with self._lock, transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO job_runs (job, trigger, status, scheduled_for, finished_at,"
                " error_message, stats) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    job,
                    trigger.value,
                    status.value,
                    _iso(scheduled_for),
                    _iso(at),
                    error_message,
                    json.dumps(stats or {}, default=str),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            self._apply_outcome(job, run_id, status, at)
            return self._run(run_id)

    def abandon_running(self, at: datetime) -> list[JobRun]:
        """Runs left ``running`` by a process that died; called once at start-up."""
        with self._lock, transaction(self._conn):
            rows = self._conn.execute(
                "SELECT run_id, job FROM job_runs WHERE status = ?", (RunStatus.RUNNING.value,)
            ).fetchall()
            for row in rows:
                self._conn.execute(
                    "UPDATE job_runs SET status = ?, finished_at = ?, error_message = ?"
                    " WHERE run_id = ?",
                    (
                        RunStatus.ABANDONED.value,
                        _iso(at),
                        "the daemon stopped while this run was going",
                        row["run_id"],
                    ),
                )
                self._apply_outcome(row["job"], row["run_id"], RunStatus.ABANDONED, at)
            return [self._run(row["run_id"]) for row in rows]

    def runs(
        self, job: str | None = None, limit: int = 20, status: RunStatus | None = None
    ) -> list[JobRun]:
        """Newest first."""
        clauses, args = [], []
        if job is not None:
            clauses.append("job = ?")
            args.append(job)
        if status is not None:
            clauses.append("status = ?")
            args.append(status.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM job_runs {where} ORDER BY run_id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_row_to_run(row) for row in rows]

    def prune(self, before: datetime, limit: int, keep_last: int = 100) -> int:
        """Delete up to ``limit`` runs that ended before ``before``, oldest first, but never a
        job's newest ``keep_last`` runs, its last failure, or a run still going."""
        removed = 0
        with self._lock, transaction(self._conn):
            for job in [r["job"] for r in self._conn.execute("SELECT job FROM job_state")]:
                if removed >= limit:
                    break
                removed += self._prune_job(job, before, limit - removed, keep_last)
        return removed

    def count_runs(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM job_runs").fetchone()[0])

    def _prune_job(self, job: str, before: datetime, limit: int, keep_last: int) -> int:
        newest_kept = self._conn.execute(
            "SELECT run_id FROM job_runs WHERE job = ? ORDER BY run_id DESC LIMIT 1 OFFSET ?",
            (job, keep_last - 1),
        ).fetchone()
        if newest_kept is None:
            return 0  # no more than keep_last runs
        last_failure = self._conn.execute(
            "SELECT max(run_id) FROM job_runs WHERE job = ? AND status IN (?, ?)",
            (job, *(s.value for s in FAILURES)),
        ).fetchone()[0]
        cursor = self._conn.execute(
            "DELETE FROM job_runs WHERE run_id IN (SELECT run_id FROM job_runs"
            " WHERE job = ? AND run_id < ? AND run_id IS NOT ? AND status != ?"
            " AND julianday(coalesce(finished_at, started_at, scheduled_for)) < julianday(?)"
            " ORDER BY run_id LIMIT ?)",
            (
                job,
                newest_kept["run_id"],
                last_failure,
                RunStatus.RUNNING.value,
                before.isoformat(),
                limit,
            ),
        )
        return cursor.rowcount

    def run(self, run_id: int) -> JobRun:
        with self._lock:
            return self._run(run_id)

    def states(self) -> dict[str, JobState]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM job_state").fetchall()
        return {row["job"]: _row_to_state(row) for row in rows}

    def state(self, job: str) -> JobState:
        return self.states().get(job) or JobState(job=job)

    def set_anchor(self, job: str, anchor: datetime) -> None:
        with self._lock, transaction(self._conn):
            self._upsert_state(job, schedule_anchor=_iso(anchor))

    def set_paused(self, job: str, paused: bool) -> None:
        with self._lock, transaction(self._conn):
            self._upsert_state(job, paused=int(paused))

    def _run(self, run_id: int) -> JobRun:
        row = self._conn.execute("SELECT * FROM job_runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return _row_to_run(row)

    def _apply_outcome(self, job: str, run_id: int, status: RunStatus, at: datetime) -> None:
        updates: dict[str, Any] = {
            "last_run_id": run_id,
            "last_status": status.value,
            "last_finished_at": _iso(at),
        }
        if status is RunStatus.SUCCESS:
            updates["last_success_at"] = _iso(at)
            updates["consecutive_failures"] = 0
        self._upsert_state(job, **updates)
        if status in FAILURES:
            self._conn.execute(
                "UPDATE job_state SET consecutive_failures = consecutive_failures + 1"
                " WHERE job = ?",
                (job,),
            )

    def _upsert_state(self, job: str, **values: Any) -> None:
        self._conn.execute("INSERT OR IGNORE INTO job_state (job) VALUES (?)", (job,))
        if not values:
            return
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._conn.execute(
            f"UPDATE job_state SET {assignments} WHERE job = ?",
            (*values.values(), job),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _row_to_run(row: sqlite3.Row) -> JobRun:
    return JobRun(
        run_id=row["run_id"],
        job=row["job"],
        trigger=RunTrigger(row["trigger"]),
        status=RunStatus(row["status"]),
        scheduled_for=_parse(row["scheduled_for"]),
        started_at=_parse(row["started_at"]),
        finished_at=_parse(row["finished_at"]),
        duration_ms=row["duration_ms"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        stats=json.loads(row["stats"] or "{}"),
    )


def _row_to_state(row: sqlite3.Row) -> JobState:
    return JobState(
        job=row["job"],
        last_run_id=row["last_run_id"],
        last_status=RunStatus(row["last_status"]) if row["last_status"] else None,
        last_finished_at=_parse(row["last_finished_at"]),
        last_success_at=_parse(row["last_success_at"]),
        consecutive_failures=row["consecutive_failures"],
        schedule_anchor=_parse(row["schedule_anchor"]),
        paused=bool(row["paused"]),
    )
