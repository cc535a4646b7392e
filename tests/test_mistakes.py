"""The mistakes log: the detector over raw transcripts (both layouts), its precision on near
misses, the store, and ``infractl mistake`` against the real daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.sample.session import SessionBuilder
from daemon.sample.writer import OpenClawWriter
from stores.coordination.mistake_scan import correction_rule, scan_mistakes, scan_new
from stores.coordination.mistakes import MistakeEntry, MistakeRule, MistakeStore, manual_mistake
from stores.openclaw.home import Agent, discover
from tests.memory_fixtures import MAIN_KEY, WORK_KEY
from tests.support import base_environ, infractl, running_daemon

START = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
LATER = START + timedelta(days=1)


# --- the correction rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("No, I said Friday", "no,"),
        ("nope, the other one", "no,"),
        ('"No, the blue one"', "no,"),
        ("That's wrong", "that's wrong"),
        ("that is not right", "that's wrong"),
        ("That\u2019s incorrect.", "that's wrong"),
        ("You're wrong about the date", "that's wrong"),
        ("Wrong.", "wrong"),
        ("wrong again", "wrong"),
        ("WRONG!", "wrong"),
        ("I said Tuesday, not Monday", "I said"),
        ("I told you twice already", "I told you"),
        ("Not what I asked for", "not what I asked"),
        ("that's not what I asked", "not what I asked"),
    ],
)
def test_corrections_are_recognised(text: str, label: str) -> None:
    assert correction_rule(text, "Booked Tasca do Chico for Saturday.") == label


@pytest.mark.parametrize(
    "text",
    [
        "no problem",
        "No, thanks",
        "no, that's fine",
        "No, it's ok",
        "No",  # a bare no answers more often than it corrects
        "I said thanks",
        "I said hello to Mira",
        "wrong number? no, it's fine",
        "Is that wrong?",
        "Nobody called",
        "Notes from today, please",
    ],
)
def test_near_misses_are_not_corrections(text: str) -> None:
    assert correction_rule(text, "Booked Tasca do Chico for Saturday.") is None


def test_a_no_that_answers_a_question_is_not_a_correction() -> None:
    assert correction_rule("No, leave it", "Shall I try again later?") is None
    assert correction_rule("No, leave it", "**Shall I try again later?**") is None
    assert correction_rule("That's wrong", "Is Friday right?") == "that's wrong"


# --- the detector ----------------------------------------------------------------------


@dataclass
class Ids:
    corrected: str = ""
    tool_failed: str = ""
    errored: str = ""
    corrected_wrapped: str = ""
    work_told: str = ""
    work_tool: str = ""


def _error_turn(session: SessionBuilder, message: str | None) -> str:
    body = {"role": "assistant", "content": [], "stopReason": "error", "model": "claude-sonnet"}
    if message is not None:
        body["errorMessage"] = message
    return session.add({"type": "message", "message": body})


def _home(tmp_path: Path) -> tuple[OpenClawWriter, Ids]:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    writer.add_agent("work", "Ledger", "Dana")
    ids = Ids()
    s = writer.new_session("main", START)
    s.user("Book Tasca do Chico for Friday")
    s.assistant("Booked Tasca do Chico for Saturday.")
    ids.corrected = s.user("No, I said Friday")
    s.assistant("Sorry, moved it to Friday.")
    s.tool("calendar", {"day": "Friday"}, "Error: calendar API timed out", is_error=True)
    ids.tool_failed = s.entries[-1]["id"]
    s.tool("calendar", {"day": "Friday"}, "ok")
    s.assistant("The calendar answered late.")
    s.user("no problem")
    s.assistant("Shall I add a reminder?")
    s.user("No, leave it")
    ids.errored = _error_turn(s, "529 overloaded_error: Overloaded")
    s.user("I said thanks")
    s.assistant("You're welcome!")
    s.user("wrong number? no, it's fine")
    s.assistant("Good.")
    ids.corrected_wrapped = s.user("That's wrong, the table is for two", wrapper="conversation")
    writer.write_legacy("main", MAIN_KEY, s)
    w = writer.new_session("work", START + timedelta(hours=2))
    w.user("Wrong.")  # no assistant turn before it: nothing to correct
    w.assistant("The report is due on the 6th.")
    ids.work_told = w.user("I told you the report is due on the 5th")
    w.tool("sheets", {"id": "q3"}, "403 Forbidden", is_error=True)
    ids.work_tool = w.entries[-1]["id"]
    _error_turn(w, None)
    writer.write_sqlite("work", WORK_KEY, [w])
    return writer, ids


def _agent(writer: OpenClawWriter, agent_id: str) -> Agent:
    found = discover(writer.home).agent(agent_id)
    assert found is not None
    return found


def test_the_detector_finds_errors_failures_and_corrections(tmp_path: Path) -> None:
    writer, ids = _home(tmp_path)
    scan = scan_mistakes(_agent(writer, "main"), START, LATER)
    found = {m.entry_id: m for m in scan.found}
    assert list(found) == [ids.corrected, ids.tool_failed, ids.errored, ids.corrected_wrapped]
    correction = found[ids.corrected]
    assert correction.rule is MistakeRule.USER_CORRECTION
    assert correction.reason == 'user correction right after an assistant turn: starts with "no,"'
    assert (correction.text, correction.quote) == ("No, I said Friday", "No, I said Friday")
    assert correction.context == "Booked Tasca do Chico for Saturday."
    tool = found[ids.tool_failed]
    assert (tool.rule, tool.reason) == (MistakeRule.TOOL_ERROR, "tool calendar failed")
    assert tool.text == "tool calendar failed: Error: calendar API timed out"
    error = found[ids.errored]
    assert error.reason == "assistant turn ended in error: 529 overloaded_error: Overloaded"
    assert error.quote == "529 overloaded_error: Overloaded"
    wrapped = found[ids.corrected_wrapped]
    assert wrapped.text == "That's wrong, the table is for two", "the channel envelope is stripped"
    live = writer.home / "agents" / "main" / "sessions"
    assert correction.source is not None
    assert correction.source.startswith(str(live))
    assert correction.source.endswith(":5")
    assert {m.agent for m in scan.found} == {"main"}
    assert scan.problems == ()


def test_the_detector_reads_the_database_layout(tmp_path: Path) -> None:
    writer, ids = _home(tmp_path)
    scan = scan_mistakes(_agent(writer, "work"), START, LATER)
    by_rule = {m.rule: m for m in scan.found}
    assert set(by_rule) == {
        MistakeRule.USER_CORRECTION,
        MistakeRule.TOOL_ERROR,
        MistakeRule.ASSISTANT_ERROR,
    }
    assert by_rule[MistakeRule.USER_CORRECTION].entry_id == ids.work_told
    assert by_rule[MistakeRule.TOOL_ERROR].reason == "tool sheets failed"
    assert by_rule[MistakeRule.ASSISTANT_ERROR].reason == "assistant turn ended in error"
    source = by_rule[MistakeRule.TOOL_ERROR].source
    assert source is not None
    assert source.startswith(f"{writer.database('work')}#")


def _shift(session: SessionBuilder, from_id: str, by: timedelta) -> None:
    """Move ``from_id`` and every entry after it ``by`` later, as if the person replied late."""
    ids = [e.get("id") for e in session.entries]
    for entry in session.entries[ids.index(from_id) :]:
        moved = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")) + by
        entry["timestamp"] = moved.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("layout", ["jsonl", "sqlite"])
def test_a_correction_at_the_window_start_still_sees_the_turn_it_answers(
    tmp_path: Path, layout: str
) -> None:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    s = writer.new_session("main", START)
    s.user("Move the dentist to Tuesday")
    s.assistant("Moved the dentist to Thursday.")
    corrected = s.user("I said Tuesday")
    _shift(s, corrected, timedelta(hours=1))  # well before the window: read for context only
    if layout == "jsonl":
        writer.write_legacy("main", MAIN_KEY, s)
    else:
        writer.write_sqlite("main", MAIN_KEY, [s])
    at = datetime.fromisoformat(s.entries[-1]["timestamp"].replace("Z", "+00:00"))
    (found,) = scan_mistakes(_agent(writer, "main"), at, at + timedelta(seconds=1)).found
    assert (found.entry_id, found.context) == (corrected, "Moved the dentist to Thursday.")


def test_the_window_bounds_what_is_found(tmp_path: Path) -> None:
    writer, _ = _home(tmp_path)
    main = _agent(writer, "main")
    assert scan_mistakes(main, START - timedelta(days=2), START).found == ()
    assert len(scan_mistakes(main, START, START + timedelta(minutes=2)).found) == 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MistakeStore]:
    s = MistakeStore(tmp_path / "mistakes.sqlite")
    try:
        yield s
    finally:
        s.close()


def test_scanning_again_stores_nothing_twice(tmp_path: Path, store: MistakeStore) -> None:
    writer, _ = _home(tmp_path)
    main, work = _agent(writer, "main"), _agent(writer, "work")
    added = [scan_new(store, agent, LATER)[0] for agent in (main, work)]
    assert added == [4, 3]
    assert store.scanned_through("main") == LATER
    assert [scan_new(store, a, LATER + timedelta(hours=1))[0] for a in (main, work)] == [0, 0]
    store.record_scan("main", scan_mistakes(main, START, LATER).found, LATER, LATER)
    assert len(store.mistakes()) == 7


def test_the_log_lists_newest_first_with_filters(store: MistakeStore) -> None:
    first = manual_mistake("main", "Booked  the wrong day", START, lesson="Read the date back")
    second = manual_mistake("work", "Sent the draft to the wrong list", START + timedelta(hours=1))
    detected = MistakeEntry(
        id="d1",
        agent="main",
        text="tool calendar failed",
        rule=MistakeRule.TOOL_ERROR,
        reason="tool calendar failed",
        at=START + timedelta(hours=2),
    )
    assert store.add([first, second, detected], START) == 3
    assert store.add([first], START) == 0
    assert [m.id for m in store.mistakes()] == ["d1", second.id, first.id]
    assert [m.id for m in store.mistakes(agent="main")] == ["d1", first.id]
    assert [m.id for m in store.mistakes(rule=MistakeRule.MANUAL)] == [second.id, first.id]
    since = START + timedelta(minutes=30)
    assert [m.id for m in store.mistakes(since=since, until=since + timedelta(hours=1))] == [
        second.id
    ]
    kept = store.get(first.id)
    assert kept is not None
    assert (kept.text, kept.lesson, kept.reason) == (
        "Booked the wrong day",
        "Read the date back",
        "recorded by hand",
    )


# --- the commands, against the real daemon -----------------------------------------------


def test_mistake_commands(root: Path) -> None:
    _home(root)  # where base_environ points OpenClaw's state directory
    with running_daemon(root, {"OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false"}):
        env = base_environ(root)
        added = infractl(
            *["mistake", "add", "--agent", "work", "--lesson", "Check the list", "--json"],
            "Sent the draft to the wrong list",
            env=env,
        )
        assert added.returncode == 0, added.stderr
        entry = json.loads(added.stdout)["mistake"]
        assert (entry["rule"], entry["lesson"]) == ("manual", "Check the list")
        listed = infractl("mistake", "list", "--agent", "work", "--json", env=env)
        assert [m["id"] for m in json.loads(listed.stdout)["mistakes"]] == [entry["id"]]
        table = infractl("mistake", "list", "--since", "1d", env=env)
        assert "Sent the draft to the wrong list" in table.stdout
        assert "manual" in table.stdout
        none = infractl("mistake", "list", "--rule", "tool_error", env=env)
        assert none.stdout == "no mistakes recorded\n"
        unknown = infractl("mistake", "add", "--agent", "nobody", "x", env=env)
        assert unknown.returncode == 10
        assert "no agent nobody" in unknown.stderr
        bad = infractl("mistake", "list", "--since", "lately", env=env)
        assert bad.returncode == 2  # refused by infractl itself, naming the flag
        assert "argument --since: not a date, time or age: 'lately'" in bad.stderr
