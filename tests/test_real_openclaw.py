"""What the real OpenClaw wrote, read by the daemon: the committed fixtures of 2026.9.6,
2026.7.1 and a 2026.7.1 home upgraded by 2026.9.6's doctor (``tools/openclaw_fixtures``).

Each fixture's manifest lists the phrases OpenClaw holds (every one must be found, with the
sender OpenClaw recorded) and the phrases that must never be stored (polls, reasoning, tool
results, wrappers, mirrors, system events).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.memory_fixtures import Harness, HashedWords, hashed_words_are_not_rebuilt
from tests.support import DaemonProcess, infractl, running_daemon, wait_for

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openclaw"
pytestmark = hashed_words_are_not_rebuilt
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file())


@dataclass(frozen=True)
class Fixture:
    name: str
    home: Path
    manifest: dict[str, Any]

    @property
    def present(self) -> list[dict[str, Any]]:
        return list(self.manifest["present"])

    @property
    def absent(self) -> list[dict[str, Any]]:
        return list(self.manifest["absent"])


def relocated(name: str, home: Path) -> Fixture:
    """The fixture's state directory at ``home``: the absolute paths OpenClaw wrote into its
    files (the machine it ran on) are moved as a copied home's would be."""
    manifest = json.loads((FIXTURES / name / "manifest.json").read_text())
    shutil.copytree(FIXTURES / name / "state", home)
    written = manifest["sandbox_state_dir"]
    for path in home.rglob("*.json"):
        text = path.read_text(errors="replace")
        if written in text:
            path.write_text(text.replace(written, str(home)))
    return Fixture(name, home, manifest)


@pytest.fixture(params=NAMES)
def read(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Fixture, Harness]]:
    fixture = relocated(request.param, tmp_path / "openclaw")
    harness = Harness.open(fixture.home, tmp_path / "state", HashedWords())
    try:
        yield fixture, harness
    finally:
        harness.close()


def test_fixtures_are_there() -> None:
    assert NAMES == ["v2026.7.1", "v2026.7.1-upgraded-2026.9.6", "v2026.9.6"]


def test_every_phrase_openclaw_holds_is_memory(read: tuple[Fixture, Harness]) -> None:
    fixture, harness = read
    report = harness.ingest()
    texts = [c.text for c in harness.chunks().values()]
    missing = [p["phrase"] for p in fixture.present if not any(p["phrase"] in t for t in texts)]
    assert missing == []
    agents = {c.agent for c in harness.chunks().values() if c.kind == "turns"}
    assert agents == {p["agent"] for p in fixture.present if p.get("session_key")}
    assert report.problems == [], "a normal home reports no problem"


def test_nothing_that_is_not_memory_is_stored(read: tuple[Fixture, Harness]) -> None:
    fixture, harness = read
    harness.ingest()
    stored = [c.text for c in harness.chunks().values()] + [t.text for t in harness.turns()]
    leaked = {
        p["phrase"]: p["why"] for p in fixture.absent if any(p["phrase"] in t for t in stored)
    }
    assert leaked == {}


def test_the_speaker_is_the_sender_openclaw_recorded(read: tuple[Fixture, Harness]) -> None:
    fixture, harness = read
    harness.ingest()
    turns = harness.turns()
    wrong = {}
    for phrase in (p for p in fixture.present if p.get("speaker")):
        said = [t for t in turns if phrase["phrase"] in t.text and t.role == phrase["role"]]
        if [t.speaker for t in said] != [phrase["speaker"]] * len(said) or not said:
            wrong[phrase["phrase"]] = (phrase["speaker"], [t.speaker for t in said])
    assert wrong == {}


def test_no_turn_is_stored_twice(read: tuple[Fixture, Harness]) -> None:
    _, harness = read
    harness.ingest()
    harness.ingest()  # a second run reads nothing new
    turns = harness.turns()
    entries = [(t.agent, t.session_id, t.entry_id) for t in turns]
    assert len(entries) == len(set(entries))
    said = [(t.agent, t.ts, t.role, t.text) for t in turns]
    assert len(said) == len(set(said)), "the same words at the same time, from two copies"
    harness.assert_consistent()


# --- through the real daemon -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_infractl_finds_every_phrase_with_its_source(name: str, tmp_path: Path) -> None:
    fixture = relocated(name, tmp_path / "openclaw")
    with running_daemon(tmp_path) as daemon:
        _wait_for_ingest(daemon)
        env = {"OPENCLAW_INFRA_SOCKET_PATH": str(daemon.socket)}
        for phrase in fixture.present:
            done = infractl(
                "memory", "search", phrase["phrase"], "--agent", phrase["agent"], "--json", env=env
            )
            assert done.returncode == 0, done.stderr
            hits = [r for r in json.loads(done.stdout)["results"] if phrase["phrase"] in r["text"]]
            assert hits, f"{phrase['phrase']} ({phrase['where']}) not found"
            assert hits[0]["source"]["agent_id"] == phrase["agent"]
        stats = json.loads(infractl("memory", "stats", "--json", env=env).stdout)
        assert stats["problems"] == []
        assert daemon.stop() == 0


def test_a_quiet_home_starts_no_run_and_a_new_row_is_found(tmp_path: Path) -> None:
    """On the real 2026.9.6 home, with OpenClaw's database held open in WAL mode as a running
    OpenClaw holds it: a scheduled ingest every second finds nothing to do and starts no run;
    a turn OpenClaw appends is searchable soon after."""
    fixture = relocated("v2026.9.6", tmp_path / "openclaw")
    database = fixture.home / "agents" / "wren" / "agent" / "openclaw-agent.sqlite"
    openclaw = sqlite3.connect(database, isolation_level=None)
    openclaw.execute("PRAGMA journal_mode=WAL")
    # Its CHECKs call octet_length(), newer than this Python's SQLite; OpenClaw's has it.
    openclaw.execute("PRAGMA ignore_check_constraints = ON")
    env = {
        "OPENCLAW_INFRA_JOBS__INGEST__SCHEDULE": "every 1s",
        "OPENCLAW_INFRA_MEMORY__WATCH_DEBOUNCE": "100ms",
    }
    try:
        with running_daemon(tmp_path, env) as daemon:
            _wait_for_ingest(daemon)
            _wait_for_idle_checks(daemon, 5)
            runs = daemon.call("runs", {"job": "ingest"})["runs"]
            assert [r["trigger"] for r in runs if r["status"] != "skipped"] == ["startup"]
            _append_turn(openclaw, "The spare boat key is in the red tin, osprey-velvet-12.")
            wait_for(
                lambda: any(
                    "osprey-velvet-12" in r["text"]
                    for r in daemon.call("memory.search", {"query": "spare boat key"})["results"]
                ),
                timeout=60,
                what="the appended turn in search results",
            )
            assert daemon.stop() == 0
    finally:
        openclaw.close()


def _wait_for_ingest(daemon: DaemonProcess) -> None:
    def done() -> bool:
        runs = daemon.call("runs", {"job": "ingest"})["runs"]
        return any(r["status"] == "success" for r in runs)

    wait_for(done, timeout=120, what="the start-up ingest")


def _wait_for_idle_checks(daemon: DaemonProcess, count: int) -> None:
    seen: set[str] = set()

    def enough() -> bool:
        (ingest,) = [j for j in daemon.call("jobs")["jobs"] if j["name"] == "ingest"]
        if ingest["last_idle_at"]:
            seen.add(ingest["last_idle_at"])
        return len(seen) >= count

    wait_for(enough, timeout=60, interval=0.2, what=f"{count} idle checks")


def _append_turn(conn: sqlite3.Connection, text: str) -> None:
    """A user turn as OpenClaw 2026.9 appends one: the live session's next seq, a UUID id."""
    session_id, seq, parent = conn.execute(
        "SELECT e.session_id, e.seq, json_extract(e.event_json, '$.id') FROM transcript_events e"
        " JOIN session_nodes n ON n.current_session_id = e.session_id"
        " WHERE e.event_json IS NOT NULL ORDER BY e.seq DESC LIMIT 1"
    ).fetchone()
    now = datetime.now(UTC)
    entry = {
        "type": "message",
        "id": "6d1f3f0c-8f1e-4c55-9a53-2f4f0b7d1e21",
        "parentId": parent,
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": {"role": "user", "content": text, "timestamp": int(now.timestamp() * 1000)},
    }
    conn.execute(
        "INSERT INTO transcript_events (session_id, seq, event_json, created_at, event_utf8_bytes)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            session_id,
            seq + 1,
            json.dumps(entry),
            int(now.timestamp() * 1000),
            len(json.dumps(entry)),
        ),
    )
