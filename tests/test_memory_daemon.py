"""The memory methods of the real daemon over its socket, and a ``kill -9`` during ingest."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import ErrorCode
from daemon.sample.writer import OpenClawWriter
from tests.memory_fixtures import (
    MAIN_KEY,
    SAMPLE_TODAY,
    home_entries,
    message_ids,
    write_sample,
)
from tests.support import DaemonProcess, running_daemon, wait_for

MIRA = "Where does my sister Mira live?"


def _ingest_success(daemon: DaemonProcess, after: int = 0, timeout: float = 60) -> dict[str, Any]:
    """The first successful ingest run with an id above ``after``."""

    def done() -> dict[str, Any] | None:
        runs = daemon.call("runs", {"job": "ingest"})["runs"]
        return next(
            (r for r in reversed(runs) if r["status"] == "success" and r["run_id"] > after), None
        )

    found: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.05, what="ingest success")
    return found


def _search(daemon: DaemonProcess, query: str, **params: Any) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = daemon.call("memory.search", {"query": query, **params})[
        "results"
    ]
    return results


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    """One daemon over the sample home for the module, after its start-up ingest."""
    root = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    write_sample(root / "openclaw")
    try:
        with running_daemon(root) as running:
            _ingest_success(running)
            running.call("pause", {"job": "ingest"})  # only the runs a test asks for
            yield running
            assert running.stop() == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def home(daemon: DaemonProcess) -> Path:
    return daemon.root / "openclaw"


def test_search_answers_with_snippets_and_their_sources(daemon: DaemonProcess, home: Path) -> None:
    said = home_entries(home).containing("Mira lives at Rua das Flores")
    response = daemon.call("memory.search", {"query": MIRA, "k": 3})
    assert response["query"] == MIRA
    assert response["tokens"] == sum(r["tokens"] for r in response["results"])
    hit = next(r for r in response["results"] if said.entry["id"] in r["source"]["entry_ids"])
    assert "Rua das Flores" in hit["text"]
    source = hit["source"]
    assert (source["kind"], source["agent_id"], source["session_id"]) == (
        "turns",
        "main",
        said.session_id,
    )
    assert set(source["speakers"]) == {"Dana", "Juniper"}
    assert datetime.fromisoformat(source["ended_at"]) == said.timestamp
    assert hit["score"] > 0


@pytest.mark.parametrize(
    ("params", "holds"),
    [
        ({"agent": "work"}, lambda s: s["agent_id"] == "work"),
        ({"agent": ["work", "main"], "kind": ["note"]}, lambda s: s["kind"] == "note"),
        ({"speaker": "Ledger"}, lambda s: "Ledger" in s["speakers"]),
        ({"role": "summary"}, lambda s: s["roles"] == ["summary"]),
        (
            {"since": "2026-03-10", "kind": ["turns"]},
            lambda s: s["ended_at"] >= "2026-03-10",
        ),
        ({"until": "2026-03-09T12:00:00+00:00"}, lambda s: s["started_at"] < "2026-03-09T12"),
    ],
    ids=["agent", "agents-and-kind", "speaker", "role", "since-date", "until-time"],
)
def test_search_filters_over_the_socket(
    daemon: DaemonProcess, params: dict[str, Any], holds: Callable[[dict[str, Any]], bool]
) -> None:
    question = "What did Dana talk about: plans, the report, the garden?"
    everything = _search(daemon, question, k=50, budget=100_000)
    filtered = _search(daemon, question, k=50, budget=100_000, **params)
    assert not all(holds(r["source"]) for r in everything)
    assert filtered
    assert all(holds(r["source"]) for r in filtered), [r["source"] for r in filtered]


def test_search_keeps_to_its_budget_and_takes_a_recency_half_life(daemon: DaemonProcess) -> None:
    small = daemon.call("memory.search", {"query": "Dana plans report", "k": 10, "budget": 50})
    assert 0 < small["tokens"] <= 50
    assert any(r["truncated"] for r in small["results"]) or len(small["results"]) == 10
    plain = _search(daemon, "Dana plans report", k=10)
    recent = _search(daemon, "Dana plans report", k=10, recent="1d")
    assert {r["id"] for r in recent} == {r["id"] for r in plain}  # reordered, not filtered


def test_a_memory_is_added_found_and_forgotten(daemon: DaemonProcess) -> None:
    text = "The spare key is under the blue flower pot by the door."
    before = daemon.call("memory.stats")
    added = daemon.call("memory.add", {"text": text, "agent": "main", "tags": ["home"]})
    assert added["id"].startswith("manual:")
    assert daemon.call("memory.add", {"text": text, "agent": "main", "tags": ["home"]}) == added
    stats = daemon.call("memory.stats")
    assert stats["by_kind"].get("manual", 0) == before["by_kind"].get("manual", 0) + 1
    assert stats["chunks"] == stats["vectors"] == before["chunks"] + 1

    (hit,) = _search(daemon, "where is the spare key?", k=1, kind=["manual"])
    assert (hit["id"], hit["text"], hit["source"]["tags"]) == (added["id"], text, ["home"])

    assert daemon.call("memory.forget", {"id": added["id"]}) == {"removed": 1}
    assert daemon.call("memory.forget", {"id": added["id"]}) == {"removed": 0}
    assert _search(daemon, "where is the spare key?", kind=["manual"]) == []
    assert daemon.call("memory.stats") == before


def test_stats_over_the_socket(daemon: DaemonProcess) -> None:
    stats = daemon.call("memory.stats")
    assert (stats["chunks"], stats["vectors"], stats["turns"]) == (12, 12, 12)
    assert stats["by_kind"] == {"turns": 6, "summary": 1, "note": 5}  # USER.md of each agent
    assert stats["embedder"] == "minilm-int8/all-MiniLM-L6-v2"
    assert stats["store"] == str(daemon.root / "state" / "chroma")


def test_reindex_rebuilds_the_same_memory_and_keeps_manual_ones(daemon: DaemonProcess) -> None:
    questions = [MIRA, "dentist", "launch review", "tomatoes", "quarterly report"]
    kept = daemon.call("memory.add", {"text": "Dana's bike lock code is in the safe."})
    before = [_search(daemon, q, k=5) for q in questions]
    stats = daemon.call("memory.stats")

    started = daemon.call("memory.reindex")
    assert started["job"] == "ingest"
    run = wait_for(
        lambda: (
            (r := daemon.call("run", {"run_id": started["run_id"]}))["status"] != "running" and r
        ),
        what="the reindex run",
    )

    assert run["status"] == "success", run
    assert (run["trigger"], run["stats"]["rebuilt"], run["stats"]["turns"]) == ("manual", True, 12)
    assert daemon.call("memory.stats") == stats
    after = [_search(daemon, q, k=5) for q in questions]
    for old, new in zip(before, after, strict=True):
        assert [(r["id"], r["text"], r["source"]) for r in new] == [
            (r["id"], r["text"], r["source"]) for r in old
        ]
    assert daemon.call("memory.forget", {"id": kept["id"]}) == {"removed": 1}


@pytest.mark.parametrize(
    ("method", "params", "says"),
    [
        ("memory.search", {"query": "x", "colour": "red"}, "unknown parameter 'colour'"),
        ("memory.search", {"query": "x", "since": "last tuesday"}, "since"),
        ("memory.search", {"query": "x", "until": "2026-13-45"}, "until"),
        ("memory.search", {"query": "x", "k": 0}, "k"),
        ("memory.search", {"query": "x", "k": 101}, "k"),
        ("memory.search", {"query": ""}, "query"),
        ("memory.search", {"query": "x", "agent": "Not An Agent"}, "agent"),
        ("memory.search", {"query": "x", "kind": ["diary"]}, "kind"),
        ("memory.search", {"query": "x", "recent": "soon"}, "recent"),
        ("memory.search", {"query": "x", "budget": 10}, "budget"),
        ("memory.add", {"text": ""}, "text"),
        ("memory.add", {"text": "x", "agent": "../etc"}, "agent"),
        ("memory.forget", {}, "say what to forget"),
        ("memory.stats", {"verbose": True}, "unknown parameter"),
        ("memory.reindex", {"agent": "UPPER"}, "agent"),
    ],
)
def test_bad_params_are_bad_requests(
    daemon: DaemonProcess, method: str, params: dict[str, Any], says: str
) -> None:
    error = daemon.error_of(method, params)
    assert error.code is ErrorCode.BAD_REQUEST
    assert says in error.message


def test_forgetting_a_session_over_the_socket(daemon: DaemonProcess, home: Path) -> None:
    """Last in the module: it takes a session out of the shared daemon's memory."""
    session = home_entries(home).containing("move the launch review").session_id
    assert _search(daemon, "launch review", session=session)
    removed = daemon.call("memory.forget", {"session": session})
    assert removed["removed"] == 1  # two turns: one window
    assert _search(daemon, "launch review", session=session) == []
    hits = _search(daemon, "launch review Thursday", k=50, budget=100_000)
    assert session not in {r["source"]["session_id"] for r in hits}
    stats = daemon.call("memory.stats")
    assert stats["chunks"] == stats["vectors"] == 11


# --- kill -9 during ingest --------------------------------------------------------------------

SESSIONS, TURNS = 50, 40


def _big_home(home: Path) -> list[str]:
    """Fifty sessions of forty short turns (two thousand turns); each file is one ingest step,
    so a run commits as it goes. Returns every message id."""
    writer = OpenClawWriter(home)
    writer.add_agent("main", "Juniper", "Dana")
    sessions = []
    for s in range(SESSIONS):
        session = writer.new_session("main", SAMPLE_TODAY - timedelta(hours=s + 1))
        for n in range(TURNS // 2):
            session.user(f"list {s}: add {n} pears")
            session.assistant(f"added {n} pears to list {s}")
        sessions.append(session)
    writer.write_legacy("main", MAIN_KEY, sessions[0], archived=sessions[1:])
    return [i for session in sessions for i in message_ids(session.entries)]


def _stored(state: Path) -> tuple[list[tuple[str, str, str]], int]:
    """Turns (agent, session, entry) and the number of turn windows, read from the file."""
    with contextlib.closing(
        sqlite3.connect(f"file:{state / 'memory.sqlite'}?mode=ro", uri=True)
    ) as conn:
        turns = conn.execute("SELECT agent, session_id, entry_id FROM turns").fetchall()
        (windows,) = conn.execute("SELECT COUNT(*) FROM chunks WHERE kind = 'turns'").fetchone()
    return turns, windows


def test_kill_9_during_ingest_then_restart_stores_every_entry_once(root: Path) -> None:
    expected = _big_home(root / "openclaw")
    assert len(expected) == SESSIONS * TURNS

    with running_daemon(root) as daemon:

        def committed_some() -> bool:
            (ingest,) = [j for j in daemon.call("jobs")["jobs"] if j["name"] == "ingest"]
            progress = ingest["progress"] or {}
            if ingest["last_status"] == "success":
                raise AssertionError("ingest finished before it could be killed; make it bigger")
            return progress.get("phase") == "reading" and progress.get("done", 0) >= 4

        wait_for(committed_some, timeout=60, interval=0.01, what="ingest to commit a few steps")
        daemon.signal(signal.SIGKILL)
        daemon.wait()

    turns, _ = _stored(root / "state")
    assert 0 < len(turns) < len(expected), "the kill came in the middle of the run"

    with running_daemon(root) as daemon:
        run = _ingest_success(daemon, timeout=120)
        assert run["trigger"] == "startup"
        assert run["stats"]["turns"] == len(expected) - len(turns)
        abandoned = daemon.call("runs", {"job": "ingest", "status": "abandoned"})["runs"]
        assert len(abandoned) == 1
        stats = daemon.call("memory.stats")
        assert stats["turns"] == len(expected)
        assert stats["vectors"] == stats["chunks"]
        assert daemon.stop() == 0

    turns, windows = _stored(root / "state")
    assert len(turns) == len(set(turns)) == len(expected)
    assert sorted(entry for _, _, entry in turns) == sorted(expected)
    assert windows == SESSIONS * TURNS // 2  # one window every two turns, none twice
    # MEMORY.md holds only its heading (no chunk); USER.md is one.
    assert stats["chunks"] == windows + 1
