"""``memory.get`` over the real daemon's socket: the stretch of a session around an entry, the
lines of a note in a known workspace, and every way of asking wrongly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import ErrorCode
from tests.dashboard_support import sample_daemon
from tests.memory_fixtures import MAIN_KEY, home_entries
from tests.support import DaemonProcess

ASKED = "Remind me what my sister's new address is?"

#: The first test starts a daemon and waits for its first ingest.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    with sample_daemon() as running:
        yield running


@pytest.fixture(scope="module")
def home(daemon: DaemonProcess) -> Path:
    return daemon.root / "openclaw"


def _turn(home: Path, words: str, **params: Any) -> dict[str, Any]:
    said = home_entries(home).containing(words)
    return {"agent": "main", "session_id": said.session_id, "entry_id": said.entry["id"], **params}


def test_the_stretch_around_an_entry(daemon: DaemonProcess, home: Path) -> None:
    said = home_entries(home).containing(ASKED)
    got = daemon.call("memory.get", _turn(home, ASKED, before=1, after=1))
    assert (got["agent"], got["session_id"]) == ("main", said.session_id)
    assert len(got["turns"]) == 3
    focus = got["turns"][got["focus_index"]]
    assert got["focus_index"] == 1
    assert (focus["entry_id"], focus["role"], focus["speaker"]) == (
        said.entry["id"],
        "user",
        "Dana",
    )
    assert ASKED in focus["text"]
    assert datetime.fromisoformat(focus["ts"]) == said.timestamp
    before, after = got["turns"][0], got["turns"][2]
    assert "San Marzano" in before["text"] or "full sun" in before["text"]
    assert "Rua das Flores" in after["text"]
    assert before["ts"] <= focus["ts"] <= after["ts"]


def test_a_live_session_comes_with_its_key(daemon: DaemonProcess, home: Path) -> None:
    """The session key names the chat the live session belongs to."""
    got = daemon.call("memory.get", _turn(home, "Book a table for two", after=1))
    assert got["session_key"] == MAIN_KEY
    assert "Tasca do Chico" in got["turns"][got["focus_index"] + 1]["text"]


def test_the_stretch_stops_at_the_ends_of_the_session(daemon: DaemonProcess, home: Path) -> None:
    whole = daemon.call("memory.get", _turn(home, ASKED))  # five either side, by default
    assert [t["role"] for t in whole["turns"]] == ["user", "assistant", "user", "assistant"]
    assert whole["focus_index"] == 2
    alone = daemon.call("memory.get", _turn(home, ASKED, before=0, after=0))
    assert [t["entry_id"] for t in alone["turns"]] == [whole["turns"][2]["entry_id"]]
    assert alone["focus_index"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"entry_id": "deadbeef"},
        {"session_id": "no-such-session"},
        {"agent": "work"},
    ],
    ids=["entry", "session", "agent"],
)
def test_an_unknown_entry_is_not_found(
    daemon: DaemonProcess, home: Path, change: dict[str, str]
) -> None:
    error = daemon.error_of("memory.get", {**_turn(home, ASKED), **change})
    assert error.code is ErrorCode.NOT_FOUND
    assert "memory.get: no entry" in error.message


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"before": 51}, "before: Input should be less than or equal to 50"),
        ({"after": -1}, "after: Input should be greater than or equal to 0"),
        ({"before": "lots"}, "before: Input should be a valid integer"),
        ({"agent": "Not An Id"}, "not an agent id"),
        ({"entry_id": None}, "say which turn"),
        ({"path": "/tmp/x.md"}, "not both"),
        ({"line_start": 3}, "line_start and line_end go with a path"),
        ({"kind": "turns"}, "unknown parameter 'kind'"),
    ],
    ids=["before", "after", "not-a-number", "agent", "no-entry", "both", "lines", "unknown"],
)
def test_a_bad_request_says_what_is_wrong(
    daemon: DaemonProcess, home: Path, params: dict[str, Any], said: str
) -> None:
    asked = {k: v for k, v in {**_turn(home, ASKED), **params}.items() if v is not None}
    error = daemon.error_of("memory.get", asked)
    assert error.code is ErrorCode.BAD_REQUEST
    assert said in error.message
    assert "\n" not in error.message


def test_the_lines_of_a_note(daemon: DaemonProcess, home: Path) -> None:
    path = home / "workspace" / "MEMORY.md"
    got = daemon.call(
        "memory.get", {"path": str(path), "line_start": 4, "line_end": 4, "before": 1, "after": 5}
    )
    assert (got["agent"], got["path"], got["line_start"], got["line_end"]) == (
        "main",
        str(path),
        4,
        4,
    )
    lines = path.read_text().splitlines()
    assert got["lines"] == [{"number": n, "text": lines[n - 1]} for n in (3, 4)]
    assert "Mira lives in Lisbon" in got["lines"][1]["text"]


def test_a_note_search_result_opens_where_it_points(daemon: DaemonProcess) -> None:
    results = daemon.call("memory.search", {"query": "tomatoes south fence", "kind": ["note"]})
    source = results["results"][0]["source"]
    got = daemon.call(
        "memory.get",
        {k: source[k] for k in ("path", "line_start", "line_end")} | {"before": 0, "after": 0},
    )
    shown = "\n".join(line["text"] for line in got["lines"])
    assert "San Marzano" in shown
    assert [line["number"] for line in got["lines"]] == list(
        range(source["line_start"], source["line_end"] + 1)
    )


def test_only_notes_in_a_known_workspace_are_read(daemon: DaemonProcess, home: Path) -> None:
    workspace = home / "workspace"
    outside = daemon.root / "secret.md"
    outside.write_text("not for the dashboard\n")
    link = workspace / "memory" / "link.md"
    link.symlink_to(outside)
    (workspace / "memory" / "notes.txt").write_text("plain text\n")
    try:
        for path in (outside, link, Path("/etc/hostname"), workspace / "memory" / "notes.txt"):
            error = daemon.error_of("memory.get", {"path": str(path)})
            assert error.code is ErrorCode.FORBIDDEN, path
            assert str(path) in error.message
        relative = daemon.error_of("memory.get", {"path": "MEMORY.md"})
        assert relative.code is ErrorCode.BAD_REQUEST
        assert "must be absolute" in relative.message
        gone = daemon.error_of("memory.get", {"path": str(workspace / "memory" / "gone.md")})
        assert gone.code is ErrorCode.NOT_FOUND
        past = daemon.error_of(
            "memory.get", {"path": str(workspace / "MEMORY.md"), "line_start": 99}
        )
        assert past.code is ErrorCode.NOT_FOUND
        assert "has 4 lines" in past.message
        backwards = daemon.error_of(
            "memory.get", {"path": str(workspace / "MEMORY.md"), "line_start": 3, "line_end": 2}
        )
        assert backwards.code is ErrorCode.BAD_REQUEST
    finally:
        os.unlink(link)
        os.unlink(workspace / "memory" / "notes.txt")
