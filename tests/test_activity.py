"""Hour windows across midnight and daylight-saving changes, the raw-transcript scan of tools and
spending, and HourlyActivity built from a real memory index."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from daemon.sample.session import SessionBuilder
from daemon.sample.writer import OpenClawWriter
from stores.coordination.activity import (
    HourlyActivity,
    build_activity,
    is_decision,
    is_question,
    open_questions,
    sentences,
    top_keywords,
)
from stores.hours import HourWindow, hour_window_at, hour_windows, previous_hour, windows_between
from stores.memory.chunking import turn_row, window_chunks
from stores.memory.index import MemoryIndex
from stores.memory.records import TurnRow, Write
from stores.openclaw.entries import Names
from stores.openclaw.home import Agent, discover
from stores.openclaw.jsonl import list_session_files, read_jsonl
from stores.openclaw.usage import TranscriptUsage, scan_usage

BERLIN = ZoneInfo("Europe/Berlin")
FULLWIDTH_Q = "\uff1f"  # how Chinese and Japanese end a question
KEY = "agent:main:telegram:direct:5550001"
T0 = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
WINDOW = hour_window_at(T0, UTC)  # 13:00-14:00 UTC


# --- hour windows -------------------------------------------------------------------------


def test_an_ordinary_hour_is_labelled_in_local_time_with_its_offset() -> None:
    now = datetime(2026, 3, 8, 14, 5, tzinfo=UTC)  # 15:05 in Berlin (CET, +01:00)

    window = previous_hour(now, BERLIN)

    assert window.label == "14:00\u201315:00 (UTC+01:00)"
    assert (window.utc_start, window.utc_end) == (T0, T0 + timedelta(hours=1))
    assert window.day.isoformat() == "2026-03-08"
    assert window.timestamps == (T0.timestamp(), T0.timestamp() + 3600)


def test_at_the_full_hour_the_hour_just_ended_is_the_previous_one() -> None:
    assert previous_hour(T0, UTC).utc_start == T0 - timedelta(hours=1)
    assert previous_hour(T0 - timedelta(microseconds=1), UTC).utc_start == T0 - timedelta(hours=2)


def test_the_hour_before_midnight_belongs_to_the_day_it_starts() -> None:
    now = datetime(2026, 3, 8, 23, 0, 30, tzinfo=UTC)  # 00:00:30 on the 9th in Berlin

    window = previous_hour(now, BERLIN)

    assert window.label == "23:00\u201300:00 (UTC+01:00)"
    assert window.day.isoformat() == "2026-03-08"
    assert window.end.date().isoformat() == "2026-03-09"


def test_spring_forward_has_no_window_for_the_skipped_hour() -> None:
    # 2026-03-29 in Berlin: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    windows = hour_windows(datetime(2026, 3, 29, 3, 0, tzinfo=UTC), BERLIN, 4)

    assert [w.label for w in windows] == [
        "00:00\u201301:00 (UTC+01:00)",
        "01:00\u201302:00 (UTC+01:00)",
        "03:00\u201304:00 (UTC+02:00)",
        "04:00\u201305:00 (UTC+02:00)",
    ]
    assert all(w.utc_end - w.utc_start == timedelta(hours=1) for w in windows)
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


def test_fall_back_has_two_windows_for_the_repeated_hour_told_apart_by_offset() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
    windows = hour_windows(datetime(2026, 10, 25, 3, 0, tzinfo=UTC), BERLIN, 4)

    assert [w.label for w in windows] == [
        "01:00\u201302:00 (UTC+02:00)",
        "02:00\u201303:00 (UTC+02:00)",
        "02:00\u201303:00 (UTC+01:00)",
        "03:00\u201304:00 (UTC+01:00)",
    ]
    assert [w.utc_start.hour for w in windows] == [23, 0, 1, 2]
    assert len({w.utc_start for w in windows}) == 4


@pytest.mark.parametrize(
    ("day", "hours"), [("2026-03-08", 24), ("2026-03-29", 23), ("2026-10-25", 25)]
)
def test_a_local_day_has_as_many_windows_as_its_clock_has_hours(day: str, hours: int) -> None:
    midnight = datetime.fromisoformat(day).replace(tzinfo=BERLIN)
    next_midnight = (midnight + timedelta(days=1)).replace(tzinfo=BERLIN)

    windows = windows_between(midnight, next_midnight, BERLIN)

    assert len(windows) == hours
    assert windows[0].start == midnight
    assert windows[-1].end == next_midnight
    assert {w.day.isoformat() for w in windows} == {day}


@pytest.mark.parametrize(
    ("zone", "around"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        ("Europe/Berlin", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
        ("Asia/Kolkata", datetime(2026, 3, 8, 9, 0, tzinfo=UTC)),
        # Lord Howe Island moves its clock by half an hour: one window of 90 minutes.
        ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
        ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 0, tzinfo=UTC)),
    ],
)
def test_windows_cover_time_exactly_once_and_start_on_a_local_full_hour(
    zone: str, around: datetime
) -> None:
    tz = ZoneInfo(zone)
    instants = [around + timedelta(minutes=7 * i) for i in range(-60, 60)]

    for when in instants:
        window = hour_window_at(when, tz)
        assert window.contains(when)
        assert (window.start.astimezone(tz).minute, window.start.astimezone(tz).second) == (0, 0)
        assert timedelta(minutes=30) <= window.utc_end - window.utc_start <= timedelta(minutes=90)
        assert hour_window_at(window.utc_end, tz).start == window.end
        assert hour_window_at(window.utc_start, tz) == window


def test_kolkata_hours_are_local_full_hours_at_half_past_utc() -> None:
    window = previous_hour(datetime(2026, 3, 8, 9, 10, tzinfo=UTC), ZoneInfo("Asia/Kolkata"))

    assert window.label == "13:00\u201314:00 (UTC+05:30)"
    assert window.utc_start == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_a_window_survives_json_and_refuses_naive_or_reversed_times() -> None:
    window = previous_hour(datetime(2026, 10, 25, 2, 0, tzinfo=UTC), BERLIN)

    again = HourWindow.model_validate_json(window.model_dump_json())

    assert again == window
    assert again.label == window.label == "02:00\u201303:00 (UTC+01:00)"
    with pytest.raises(ValueError, match="no time zone"):
        previous_hour(datetime(2026, 3, 8, 14, 0), BERLIN)
    with pytest.raises(ValidationError):
        HourWindow(start=T0, end=T0)
    with pytest.raises(ValueError, match="negative"):
        hour_windows(T0, UTC, -1)
    assert hour_windows(T0, UTC, 0) == []


def test_catch_up_lists_every_hour_ended_since_the_last_one_done() -> None:
    done_until = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)

    windows = windows_between(done_until, datetime(2026, 3, 8, 13, 30, tzinfo=UTC), UTC)

    assert [w.utc_start.hour for w in windows] == [10, 11, 12]
    assert windows_between(T0, T0 + timedelta(minutes=59), UTC) == []


# --- tools, tokens and cost from the raw transcripts ---------------------------------------


def _agent(home: Path) -> Agent:
    agent = discover(home).agent("main")
    assert agent is not None
    return agent


def _busy_session(writer: OpenClawWriter, started: datetime) -> SessionBuilder:
    live = writer.new_session("main", started)
    live.user("Find me a quiet restaurant near the river for Friday.")
    live.tool("web_search", {"q": "quiet restaurant river"}, "Tasca do Chico, ...")
    live.tool("web_search", {"q": "Tasca do Chico reviews"}, "4.6 stars")
    live.tool("memory_search", {"query": "Dana restaurants"}, "likes fado")
    live.assistant("Tasca do Chico is quiet and near the river. Shall I book it?")
    live.user("Yes, for two at 8pm.")
    live.assistant("Booked: Friday 20:00, two people.")
    return live


def test_usage_counts_tools_tokens_and_cost_of_the_window_only(tmp_path: Path) -> None:
    writer = OpenClawWriter(tmp_path)
    writer.add_agent("main", "Juniper", "Dana")
    before = _busy_session(writer, T0 - timedelta(hours=2))
    live = _busy_session(writer, T0 + timedelta(minutes=5))
    writer.write_legacy("main", KEY, live, archived=[before])

    usage = scan_usage(_agent(tmp_path), WINDOW)

    assert usage.tools == {"web_search": 2, "memory_search": 1}
    assert (usage.tokens_in, usage.tokens_out, usage.total_tokens) == (1800, 120, 1920)
    assert usage.cost == pytest.approx(0.0082)
    assert usage.assistant_messages == 5  # three tool calls, two replies
    assert usage.sessions == (live.session_id,)
    assert (usage.malformed, usage.problems) == (0, ())


def _assistant_line(
    entry_id: str, when: datetime, usage: Any = None, tools: tuple[str, ...] = ()
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "toolCall", "name": n, "id": n} for n in tools]
    content.append({"type": "text", "text": "ok"})
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if usage is not None:
        message["usage"] = usage
    return {
        "type": "message",
        "id": entry_id,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "message": message,
    }


def _write_lines(path: Path, lines: list[Any], tail: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )
    path.write_bytes(data + tail)


def test_usage_is_robust_to_bad_lines_bad_numbers_and_retried_lines(tmp_path: Path) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    usage = {"input": 100, "output": 10, "cacheRead": 5000, "cacheWrite": 7, "cost": {"total": 0.5}}
    good = _assistant_line("aaaa0001", T0 + timedelta(minutes=1), usage, ("read",))
    _write_lines(
        sessions / "s1.jsonl",
        [
            good,
            good,  # a writer that retried its line: counted once
            b'{"type": "message", "message": {"role": "assistant", not json',
            b'{"type":"message","message":{"role":"assistant"},"id":"x"}',  # no timestamp
            b"[1, 2, 3]",  # JSON, but no entry; carries no assistant, so it is not even parsed
            _assistant_line("aaaa0002", T0 + timedelta(minutes=2), {"input": "900", "output": -4}),
            _assistant_line("aaaa0003", T0 + timedelta(minutes=3), {"input": True, "cost": 0.25}),
            _assistant_line("aaaa0004", T0 + timedelta(minutes=4), [1, 2]),
            {"type": "message", "id": "u1", "timestamp": "2026-03-08T13:05:00Z", "message": []},
        ],
        # the live file's last line is still being written: left for the next scan
        tail=json.dumps(_assistant_line("aaaa0005", T0 + timedelta(minutes=5), usage)).encode(),
    )

    scanned = scan_usage(_agent(tmp_path), WINDOW)

    assert scanned.assistant_messages == 4
    assert scanned.tools == {"read": 1}
    assert (scanned.tokens_in, scanned.tokens_out, scanned.cache_read, scanned.cache_write) == (
        100,
        10,
        5000,
        7,
    )
    assert scanned.cost == pytest.approx(0.75)
    assert scanned.malformed == 2


def test_usage_window_includes_its_start_and_excludes_its_end(tmp_path: Path) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    lines = [
        _assistant_line(f"e{i}", when, {"input": 1}, ("t",))
        for i, when in enumerate(
            [
                T0 - timedelta(milliseconds=1),
                T0,
                WINDOW.utc_end - timedelta(seconds=1),
                WINDOW.utc_end,
            ]
        )
    ]
    _write_lines(sessions / "s1.jsonl.reset.2026-03-08T15-00-00.000Z", lines)

    scanned = scan_usage(_agent(tmp_path), WINDOW)

    assert (scanned.assistant_messages, scanned.tokens_in, scanned.tools) == (2, 2, {"t": 2})


def test_a_session_file_untouched_since_before_the_window_is_not_read(tmp_path: Path) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    path = sessions / "s1.jsonl"
    _write_lines(path, [_assistant_line("e1", T0 + timedelta(minutes=1), {"input": 1})])
    old = (T0 - timedelta(hours=1)).timestamp()
    os.utime(path, (old, old))

    assert scan_usage(_agent(tmp_path), WINDOW).assistant_messages == 0


@pytest.mark.parametrize("compress", [False, True])
def test_usage_reads_the_current_layout_and_counts_a_migrated_entry_once(
    tmp_path: Path, compress: bool
) -> None:
    writer = OpenClawWriter(tmp_path)
    writer.add_agent("main", "Juniper", "Dana")
    live = _busy_session(writer, T0 + timedelta(minutes=5))
    writer.write_sqlite(
        "main", KEY, [_busy_session(writer, T0 - timedelta(hours=3)), live], compress
    )
    # The same session still in the legacy layout, as after a migration.
    writer.write_legacy("main", KEY, live)

    usage = scan_usage(_agent(tmp_path), WINDOW)

    assert usage.tools == {"web_search": 2, "memory_search": 1}
    assert (usage.assistant_messages, usage.tokens_in) == (5, 1800)
    assert usage.problems == ()


def test_an_unreadable_database_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    writer = OpenClawWriter(tmp_path)
    writer.add_agent("main", "Juniper", "Dana")
    database = writer.database("main")
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is not a database" * 100)

    usage = scan_usage(_agent(tmp_path), WINDOW)

    assert usage.assistant_messages == 0
    assert [p.where for p in usage.problems] == [str(database)]


# --- HourlyActivity -------------------------------------------------------------------------


def _index_turns(index: MemoryIndex, writer: OpenClawWriter) -> list[TurnRow]:
    files, _ = list_session_files(writer.home / "agents" / "main" / "sessions")
    rows: list[TurnRow] = []
    for session in files:
        read = read_jsonl(session, None, agent_id="main", names=Names("Juniper", "Dana"))
        rows.extend(turn_row(turn, idx) for idx, turn in enumerate(read.turns))
    index.apply(Write(turns=rows), T0)
    return rows


def test_activity_of_an_hour_from_the_memory_index_and_the_transcripts(tmp_path: Path) -> None:
    writer = OpenClawWriter(tmp_path / "home")
    writer.add_agent("main", "Juniper", "Dana")
    earlier = writer.new_session("main", T0 - timedelta(hours=1))
    earlier.user("What is the weather in Lisbon tomorrow?")
    earlier.assistant("Sunny, 21 degrees.")
    live = _busy_session(writer, T0 + timedelta(minutes=5))
    live.compaction("## Progress\n- Dinner booked for Friday.")
    live.user("Can you also remind me about the dentist on Tuesday?")
    writer.write_legacy("main", KEY, live, archived=[earlier])
    index = MemoryIndex(tmp_path / "memory.sqlite")
    _index_turns(index, writer)
    start, end = WINDOW.timestamps

    turns = index.turns_between("main", start, end)
    activity = build_activity("main", WINDOW, turns, scan_usage(_agent(tmp_path / "home"), WINDOW))

    assert activity.sessions == (live.session_id,)
    assert activity.messages_by_role == {"user": 3, "assistant": 2, "summary": 1}
    assert activity.messages == 5
    assert activity.tools == {"web_search": 2, "memory_search": 1}
    assert (activity.tokens_in, activity.tokens_out) == (1800, 120)
    assert activity.cost == pytest.approx(0.0082)
    assert activity.decisions == ("Booked: Friday 20:00, two people.",)
    assert activity.open_questions == ("Can you also remind me about the dentist on Tuesday?",)
    assert [e.entry_id for e in activity.entries] == [t.entry_id for t in turns]
    assert activity.entry_ids == tuple(t.entry_id for t in turns)
    assert "friday" in activity.keywords
    assert not activity.is_empty
    assert activity.facts() == [
        "Sessions: 1",
        "Messages: 3 user, 2 assistant, 1 summary",
        "Tools: web_search \u00d72, memory_search \u00d71",
        "Tokens: 1,800 in, 120 out",
        "Cost: $0.0082",
        f"Topics: {', '.join(activity.keywords)}",
    ]
    again = HourlyActivity.model_validate_json(activity.model_dump_json())
    assert again == activity
    index.close()


def test_forgotten_turns_are_left_out_and_an_hour_of_them_is_empty(tmp_path: Path) -> None:
    writer = OpenClawWriter(tmp_path / "home")
    writer.add_agent("main", "Juniper", "Dana")
    live = writer.new_session("main", T0 + timedelta(minutes=5))
    live.user("My PIN for the storage unit is 4471, keep it safe.")
    live.assistant("I will not repeat it.")
    writer.write_legacy("main", KEY, live)
    index = MemoryIndex(tmp_path / "memory.sqlite")
    rows = _index_turns(index, writer)
    chunks = window_chunks(rows, range(0, len(rows), 2), 4, "main:jsonl:x")
    index.apply(Write(chunks=chunks), T0)
    index.delete([c.id for c in chunks])  # what "forget" does: the turns keep no words
    start, end = WINDOW.timestamps

    activity = build_activity("main", WINDOW, index.turns_between("main", start, end))

    assert activity.entries == ()
    assert activity.messages_by_role == {}
    assert activity.is_empty
    index.close()


def test_an_hour_with_only_heartbeats_is_empty_though_it_spent_tokens(tmp_path: Path) -> None:
    usage = TranscriptUsage(tokens_in=900, assistant_messages=1, sessions=("s",))

    activity = build_activity("main", WINDOW, [], usage)

    assert activity.is_empty
    assert activity.tokens_in == 900
    assert activity.facts() == ["Sessions: 0", "Messages: none", "Tokens: 900 in, 0 out"]


def _turn(role: str, text: str, minute: int, session: str = "s1", agent: str = "main") -> TurnRow:
    ts = (T0 + timedelta(minutes=minute)).timestamp()
    return TurnRow(agent, session, minute, f"e{minute:03d}", KEY, ts, role, None, text, "x")


def test_only_the_agents_turns_inside_the_window_count() -> None:
    turns = [
        _turn("user", "Before the hour?", -1),
        _turn("user", "Inside the hour.", 0),
        _turn("user", "Another agent's words.", 10, agent="work"),
        _turn("assistant", "At the end of the hour: the next one's.", 60),
    ]

    activity = build_activity("main", WINDOW, turns)

    assert activity.entry_ids == ("e000",)


# --- the heuristics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "We decided to move the launch review to Thursday.",
        "We've decided: Lisbon in May.",
        "Let's go with the blue one.",
        "Let\u2019s go with the 8pm slot.",
        "I'll book the table for Friday.",
        "Booked: Friday 20:00, two people.",
        "Your dentist appointment is confirmed for Tuesday.",
        "We agreed to split the bill.",
        "Settled on the San Marzano tomatoes.",
    ],
)
def test_decisions_are_sentences_that_say_one_was_made(sentence: str) -> None:
    assert is_decision(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Is the table booked?",
        "Shall I book it for you?",
        "It is not booked yet.",
        "I haven't decided.",
        "Nothing is confirmed until they call back.",
        "If it is confirmed, I'll tell you.",
        "We never agreed to that.",
        "Let me check whether it was booked.",
        "The booking page is slow.",
        "Confirmation code TQ-4471.",
    ],
)
def test_questions_negations_and_conditions_are_not_decisions(sentence: str) -> None:
    assert not is_decision(sentence)


def test_sentences_split_prose_lists_and_cjk_and_skip_code() -> None:
    text = (
        "First point. Second point! Third?\n"
        "- a list item\n"
        "1. numbered item\n"
        "```\nprint('not a sentence.')\n```\n"
        "## A heading\n"
        f"我们决定周五去。你会来吗{FULLWIDTH_Q}好的\n"
        "Pi is 3.14 today."
    )

    assert sentences(text) == [
        "First point.",
        "Second point!",
        "Third?",
        "a list item",
        "numbered item",
        "A heading",
        "我们决定周五去。",
        f"你会来吗{FULLWIDTH_Q}",
        "好的",
        "Pi is 3.14 today.",
    ]
    assert is_question(f"你会来吗{FULLWIDTH_Q}")
    assert is_question('She asked "really?"')
    assert not is_question("Really.")


def test_open_questions_are_the_persons_questions_no_reply_follows() -> None:
    turns = [
        _turn("user", "What time is the dentist? Also, thanks.", 1),
        _turn("assistant", "Tuesday at 09:30.", 2),
        _turn("user", "Can you book a taxi for it?", 3),
        _turn("assistant", "Which address should I use?", 4, session="s2"),  # another session
        _turn("user", "And the weather?", 5, session="s2"),
    ]

    assert open_questions(turns) == ["Can you book a taxi for it?", "And the weather?"]


def test_keywords_are_the_most_repeated_content_words_first_seen_first() -> None:
    texts = [
        "The tomatoes need watering; the tomatoes are San Marzano.",
        "Water the tomatoes on Friday, okay? Thanks!",
        "Friday 20:00 at Tasca do Chico, café Ümlaut.",
    ]

    assert top_keywords(texts, 4) == ["tomatoes", "friday", "need", "watering"]
    assert "20" not in top_keywords(texts, 50)
    assert "okay" not in top_keywords(texts, 50)
    assert {"café", "ümlaut"} <= set(top_keywords(texts, 50))


def test_messages_by_role_are_listed_in_a_fixed_order() -> None:
    turns = [
        _turn("summary", "## Progress\n- earlier", 1),
        _turn("assistant", "Good morning.", 2),
        _turn("user", "Morning!", 3),
    ]

    activity = build_activity("main", WINDOW, turns)

    assert list(activity.messages_by_role) == ["user", "assistant", "summary"]
    assert activity.facts()[1] == "Messages: 1 user, 1 assistant, 1 summary"
