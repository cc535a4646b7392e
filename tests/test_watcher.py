"""A change to a transcript or a note reaches the memory within seconds, via the watcher."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.sample.home import write_sample_home
from tests.support import DaemonProcess, running_daemon, wait_for


def _found(daemon: DaemonProcess, query: str, needle: str) -> bool:
    results: list[dict[str, Any]] = daemon.call("memory.search", {"query": query})["results"]
    return any(needle in r["text"] for r in results)


def _ingest_done(daemon: DaemonProcess) -> bool:
    runs = daemon.call("runs", {"job": "ingest"})["runs"]
    return any(r["status"] == "success" for r in runs)


def _append_turn(live: Path, text: str) -> str:
    last = json.loads(live.read_text().splitlines()[-1])
    now = datetime.now(UTC)
    entry = {
        "type": "message",
        "id": "feedbeef",
        "parentId": last["id"],
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": {
            "role": "user",
            "content": [{"type": "text", "text": text}],
            "timestamp": int(now.timestamp() * 1000),
        },
    }
    with live.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return "feedbeef"


def test_a_new_turn_and_a_new_note_become_searchable_without_waiting_for_the_schedule(
    root: Path,
) -> None:
    home = write_sample_home(root / "openclaw")
    env = {
        "OPENCLAW_INFRA_JOBS__INGEST__SCHEDULE": "every 1h",
        "OPENCLAW_INFRA_MEMORY__WATCH_DEBOUNCE": "100ms",
    }
    with running_daemon(root, env) as daemon:
        wait_for(lambda: _ingest_done(daemon), what="the start-up ingest")
        (live,) = (home / "agents" / "main" / "sessions").glob("*.jsonl")
        entry = _append_turn(live, "My passport number ends in 4417, keep it handy.")
        wait_for(
            lambda: _found(daemon, "passport number", "4417"),
            timeout=30,
            what="the appended turn in search results",
        )
        runs = daemon.call("runs", {"job": "ingest"})["runs"]
        assert "change" in {r["trigger"] for r in runs}, "the watcher, not the schedule"
        hit = daemon.call("memory.search", {"query": "passport number", "k": 1})["results"][0]
        assert entry in hit["source"]["entry_ids"]

        note = home / "workspace" / "memory" / "2026-12-01-trip.md"
        note.write_text("# Trip\n\nThe ferry to Vis leaves Split at 07:30.\n")
        wait_for(
            lambda: _found(daemon, "ferry to Vis", "07:30"),
            timeout=30,
            what="the new note in search results",
        )
        note.unlink()
        wait_for(
            lambda: not _found(daemon, "ferry to Vis", "07:30"),
            timeout=30,
            what="the deleted note gone from search results",
        )
        daemon.stop()


def test_a_paused_ingest_is_not_started_by_changes(root: Path) -> None:
    home = write_sample_home(root / "openclaw")
    env = {
        "OPENCLAW_INFRA_JOBS__INGEST__SCHEDULE": "every 1h",
        "OPENCLAW_INFRA_MEMORY__WATCH_DEBOUNCE": "100ms",
        "OPENCLAW_INFRA_LOG_LEVEL": "debug",
    }
    with running_daemon(root, env) as daemon:
        wait_for(lambda: _ingest_done(daemon), what="the start-up ingest")
        daemon.call("pause", {"job": "ingest"})
        before = len(daemon.call("runs", {"job": "ingest"})["runs"])
        (live,) = (home / "agents" / "main" / "sessions").glob("*.jsonl")
        _append_turn(live, "This should wait for the schedule.")
        wait_for(lambda: daemon.events("watcher.not_started"), what="the watcher to decline")
        assert len(daemon.call("runs", {"job": "ingest"})["runs"]) == before
        daemon.stop()


def _idle_checks(daemon: DaemonProcess) -> str | None:
    (ingest,) = [j for j in daemon.call("jobs")["jobs"] if j["name"] == "ingest"]
    idle: str | None = ingest["last_idle_at"]
    return idle


def _wait_for_idle_checks(daemon: DaemonProcess, count: int) -> None:
    """``count`` scheduled ingests that found nothing to do (and so started no run)."""
    seen: set[str] = set()

    def more() -> bool:
        idle = _idle_checks(daemon)
        if idle is not None:
            seen.add(idle)
        return len(seen) >= count

    wait_for(more, timeout=60, interval=0.2, what=f"{count} idle checks of the ingest")


def test_reading_a_wal_database_starts_no_run_and_a_new_row_does(root: Path) -> None:
    """OpenClaw keeps its database open in WAL mode; the daemon's read-only reads then touch
    ``-shm`` (and may create an empty ``-wal``). Neither is a change: with nothing written,
    neither the watcher nor the schedule starts a run. A row OpenClaw writes still does."""
    home = write_sample_home(root / "openclaw")
    database = home / "agents" / "work" / "agent" / "openclaw-agent.sqlite"
    openclaw = sqlite3.connect(database, isolation_level=None)  # as a running OpenClaw holds it
    openclaw.execute("PRAGMA journal_mode=WAL")
    openclaw.execute("PRAGMA wal_autocheckpoint=0")
    env = {
        "OPENCLAW_INFRA_JOBS__INGEST__SCHEDULE": "every 1s",
        "OPENCLAW_INFRA_MEMORY__WATCH_DEBOUNCE": "100ms",
    }
    try:
        with running_daemon(root, env) as daemon:
            wait_for(lambda: _ingest_done(daemon), what="the start-up ingest")
            _wait_for_idle_checks(daemon, 3)
            daemon.call("trigger", {"job": "ingest", "wait": True})  # reads the database again
            _wait_for_idle_checks(daemon, 6)
            runs = daemon.call("runs", {"job": "ingest"})["runs"]
            # A scheduled time that came while a run was going is recorded as skipped.
            started = [r["trigger"] for r in runs if r["status"] != "skipped"]
            assert sorted(started) == ["manual", "startup"]

            _insert_turn(openclaw, "The storage unit code is 8842, written down nowhere else.")
            wait_for(
                lambda: _found(daemon, "storage unit code", "8842"),
                timeout=30,
                what="the new row in search results",
            )
            triggers = [r["trigger"] for r in daemon.call("runs", {"job": "ingest"})["runs"]]
            assert "change" in triggers or "schedule" in triggers
            daemon.stop()
    finally:
        openclaw.close()


def _insert_turn(conn: sqlite3.Connection, text: str) -> None:
    """A user turn appended the way OpenClaw appends it: the next seq of the live session."""
    session_id, seq = conn.execute(
        "SELECT session_id, max(seq) FROM transcript_events"
        " WHERE session_id = (SELECT current_session_id FROM session_nodes LIMIT 1)"
    ).fetchone()
    now = datetime.now(UTC)
    entry = {
        "type": "message",
        "id": "0b5e55ed-0000-4000-8000-000000000001",
        "parentId": None,
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": {"role": "user", "content": text, "timestamp": int(now.timestamp() * 1000)},
    }
    conn.execute(
        "INSERT INTO transcript_events (session_id, seq, event_json, created_at)"
        " VALUES (?, ?, ?, ?)",
        (session_id, seq + 1, json.dumps(entry), int(now.timestamp() * 1000)),
    )
