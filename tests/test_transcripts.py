from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from daemon.sample.session import SessionBuilder
from daemon.sample.writer import OpenClawWriter
from stores.openclaw.entries import Names, Role
from stores.openclaw.jsonl import (
    FileState,
    JsonlCheckpoint,
    JsonlRead,
    SessionFile,
    checkpoint_for,
    list_session_files,
    read_jsonl,
)
from stores.openclaw.problems import ProblemKind, SkipReason
from stores.openclaw.turns import JsonlSource
from stores.openclaw.wrappers import clean_assistant_text, clean_user_text

NAMES = Names(assistant="Juniper", user="Dana")
KEY = "agent:main:telegram:direct:5550001"
T0 = datetime(2026, 3, 8, 9, 0, tzinfo=UTC)


def _builder(writer: OpenClawWriter, hours: int = 0) -> SessionBuilder:
    return writer.new_session("main", T0 + timedelta(hours=hours))


def _write(writer: OpenClawWriter, live: SessionBuilder, **archives: Any) -> SessionFile:
    path = writer.write_legacy("main", KEY, live, **archives)
    files, problems = list_session_files(path.parent)
    assert problems == []
    return next(f for f in files if f.path == path)


def _read(session: SessionFile, checkpoint: JsonlCheckpoint | None = None, **kw: Any) -> JsonlRead:
    return read_jsonl(session, checkpoint, agent_id="main", names=NAMES, **kw)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def _lines(entries: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in entries)


def _texts(read: JsonlRead) -> list[str]:
    return [t.text for t in read.turns]


def test_turns_keep_what_was_said_who_said_it_and_where(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    asked = live.user("Book a table for two at Tasca do Chico on Friday.")
    live.tool("booking", {"place": "Tasca do Chico"}, "TQ-4471")
    answered = live.assistant("Booked: Friday 20:00, code TQ-4471.", thinking="Use the tool.")
    live.compaction("## Progress\n- Dinner booked for Friday.")
    session = _write(writer, live)

    read = _read(session)

    assert [(t.role, t.speaker, t.text) for t in read.turns] == [
        (Role.USER, "Dana", "Book a table for two at Tasca do Chico on Friday."),
        (Role.ASSISTANT, "Juniper", "Booked: Friday 20:00, code TQ-4471."),
        (Role.SUMMARY, None, "## Progress\n- Dinner booked for Friday."),
    ]
    first, second, _ = read.turns
    assert (first.entry_id, second.entry_id) == (asked, answered)
    assert second.parent_id == live.entries[-3]["id"]
    assert {(t.agent_id, t.session_key, t.session_id) for t in read.turns} == {
        ("main", KEY, live.session_id)
    }
    assert first.timestamp == datetime.fromisoformat(live.entries[2]["timestamp"])
    assert first.timestamp.tzinfo is not None
    assert first.where == f"{session.path}:3"
    assert isinstance(first.source, JsonlSource)
    assert session.path.read_bytes()[first.source.offset :].startswith(b'{"type": "message"')
    assert read.skipped == Counter({SkipReason.METADATA: 2, SkipReason.TOOL: 2})
    assert read.problems == ()


@pytest.mark.parametrize("wrapper", ["sender", "conversation"])
def test_channel_envelopes_are_stripped_and_the_sender_named(
    root: Path, wrapper: Literal["sender", "conversation"]
) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("Line one.\n\n```\ncode the person sent\n```\nLine two.", "Mira", wrapper=wrapper)
    read = _read(_write(writer, live))
    assert [(t.speaker, t.text) for t in read.turns] == [
        ("Mira", "Line one.\n\n```\ncode the person sent\n```\nLine two.")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("just words", (None, "just words")),
        (
            'Conversation info (untrusted metadata):\n```json\n{"sender": "D W"}\n```\n\nhello',
            ("D W", "hello"),
        ),
        (
            'Conversation info (untrusted metadata):\n```json\n{"sender": "+1 555 01"}\n```\n\nhi',
            (None, "hi"),
        ),
        (
            "[Wed 2026-03-11 23:51 PDT] Conversation info (untrusted metadata):\n```json\n{}\n```"
            "\n\nafter a time prefix",
            (None, "after a time prefix"),
        ),
        (
            'Replied message (untrusted, for context):\n```json\n{"body": "old"}\n```\n\n'
            'Sender (untrusted metadata):\n```json\n{"label": "Mira (7)", "id": "7"}\n```\n\n'
            "[Sun 2023-10-22 09:55 GMT+0] the new words",
            ("Mira (7)", "the new words"),
        ),
        ("My notes (untrusted source):\nkeep me", (None, "My notes (untrusted source):\nkeep me")),
        ('Sender (untrusted metadata):\n```json\n{"name": "Cut', (None, "")),
    ],
)
def test_clean_user_text(text: str, expected: tuple[str | None, str]) -> None:
    assert clean_user_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[[reply_to_current]] Hi there",
        "[[reply_to: 4521]] Hi there",
        "[[ reply_to_current ]]Hi there",
    ],
)
def test_reply_tags_are_stripped(text: str) -> None:
    assert clean_assistant_text(text) == "Hi there"


def test_housekeeping_and_noise_are_skipped_and_counted(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("I moved to Porto.", image=True)
    live.assistant("NO_REPLY")
    live.heartbeat()
    live.assistant("", thinking="Only thinking, nothing said.")
    live.assistant("", stop_reason="error")
    live.assistant("Half a rep", stop_reason="error")
    live.tool("read", {"path": "USER.md"}, "# USER.md")
    live.add({"type": "message", "message": {"role": "user", "content": [{"type": "image"}]}})
    live.add({"type": "message", "message": {"role": "user", "content": "plain words"}})
    live.add({"type": "label", "targetId": "x", "label": "bookmark"})
    live.add({"type": "hologram", "payload": {}})
    live.memory_flush(reply="Stored: Dana moved to Porto.")
    live.compaction("Dana moved to Porto.")
    live.user("Thanks!")
    session = _write(writer, live)

    read = _read(session)

    assert [(t.role, t.speaker, t.text) for t in read.turns] == [
        (Role.USER, "Dana", "I moved to Porto."),
        (Role.USER, "Dana", "plain words"),  # no envelope: the person from USER.md
        (Role.SUMMARY, None, "Dana moved to Porto."),
        (Role.USER, "Dana", "Thanks!"),
    ]
    assert read.skipped == Counter(
        {
            SkipReason.METADATA: 3,
            SkipReason.NO_REPLY: 1,
            SkipReason.HEARTBEAT: 2,
            SkipReason.THINKING: 1,
            SkipReason.ERROR: 2,
            SkipReason.TOOL: 3,
            SkipReason.IMAGE: 1,
            SkipReason.UNKNOWN_TYPE: 1,
            SkipReason.MEMORY_FLUSH: 3,
        }
    )
    (problem,) = read.problems
    hologram = 1 + next(i for i, e in enumerate(live.entries) if e["type"] == "hologram")
    assert (problem.kind, problem.where) == (ProblemKind.UNKNOWN_TYPE, f"{session.path}:{hologram}")


def test_the_memory_flush_reply_is_skipped_across_two_reads(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("Remember: the spare key is under the blue pot.")
    live.memory_flush(reply="Saved the key's place to memory/2026-03-08.md.")
    live.user("Thanks.")
    live.assistant("Any time.")
    text = live.jsonl().encode()
    cut = text.index(b"\n", text.index(b"Pre-compaction")) + 1  # just after the flush prompt
    session = _write(writer, live)
    session.path.write_bytes(text[:cut])
    first = _read(session)
    _append(session.path, text[cut:])
    second = _read(session, first.checkpoint)
    assert _texts(first) == ["Remember: the spare key is under the blue pot."]
    assert _texts(second) == ["Thanks.", "Any time."]
    assert second.skipped[SkipReason.MEMORY_FLUSH] == 2


def test_session_files_live_and_archived_with_their_keys(root: Path) -> None:
    writer = OpenClawWriter(root)
    reset, deleted, live = _builder(writer), _builder(writer, 1), _builder(writer, 2)
    for builder in (reset, deleted, live):
        builder.user("hello")
    path = writer.write_legacy("main", KEY, live, archived=[reset], deleted=[deleted])
    (path.parent / f"{live.session_id}.jsonl.lock").write_text("1234")
    (path.parent / "notes.txt").write_text("not a transcript")

    files, problems = list_session_files(path.parent)

    assert problems == []
    assert [(f.session_id, f.state, f.session_key) for f in files] == [
        (reset.session_id, FileState.RESET, None),
        (deleted.session_id, FileState.DELETED, None),
        (live.session_id, FileState.LIVE, KEY),
    ]
    assert files[0].archived_at == datetime.fromisoformat(reset.entries[-1]["timestamp"])
    assert [f.final for f in files] == [True, True, False]


@pytest.mark.parametrize("index", [None, b"{not json", b"[]"])
def test_a_missing_or_broken_index_leaves_keys_unknown(root: Path, index: bytes | None) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("hello")
    path = writer.write_legacy("main", KEY, live)
    if index is None:
        (path.parent / "sessions.json").unlink()
    else:
        (path.parent / "sessions.json").write_bytes(index)
    files, problems = list_session_files(path.parent)
    assert [(f.session_id, f.session_key) for f in files] == [(live.session_id, None)]
    assert [(p.kind, p.where) for p in problems] == [
        (ProblemKind.BAD_INDEX, str(path.parent / "sessions.json"))
    ]
    assert [t.session_key for t in _read(files[0]).turns] == [None]


def test_a_half_written_last_line_waits_for_the_next_read(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("first")
    session = _write(writer, live)
    live.assistant("second, written in two goes")
    line = json.dumps(live.entries[-1]).encode() + b"\n"
    _append(session.path, line[:40])

    first = _read(session)
    assert _texts(first) == ["first"]
    assert first.pending_bytes == 40
    assert first.problems == ()

    _append(session.path, line[40:])
    second = _read(session, first.checkpoint)
    assert _texts(second) == ["second, written in two goes"]
    assert second.turns[0].where == f"{session.path}:4"
    assert second.pending_bytes == 0
    assert _read(session, second.checkpoint).turns == ()


def test_an_archive_is_read_to_its_end_even_without_a_final_newline(root: Path) -> None:
    writer = OpenClawWriter(root)
    old, live = _builder(writer), _builder(writer, 1)
    old.user("last words before the reset")
    live.user("hello")
    path = writer.write_legacy("main", KEY, live, archived=[old])
    files, _ = list_session_files(path.parent)
    files[0].path.write_bytes(files[0].path.read_bytes().rstrip(b"\n"))
    _append(files[0].path, b'\n{"type": "message", "id": "cut-off')
    read = _read(files[0])
    assert _texts(read) == ["last words before the reset"]
    assert [(p.kind, p.where) for p in read.problems] == [
        (ProblemKind.MALFORMED_LINE, f"{files[0].path}:4")
    ]
    assert read.checkpoint is not None
    assert read.checkpoint.offset == files[0].path.stat().st_size


def test_garbage_and_malformed_lines_are_reported_with_their_place(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("before")
    session = _write(writer, live)
    _append(session.path, b"\xff\xfe\x00\x9c garbage bytes\n")
    _append(session.path, b'{"type": "message", "id": "abc\n')
    _append(session.path, b"[1, 2, 3]\n")
    _append(session.path, b"\n")
    _append(
        session.path,
        b'{"type": "message", "timestamp": "2026-03-08T09:00:00Z",'
        b' "message": {"role": "user", "content": "no id"}}\n',
    )
    live.assistant("after")
    _append(session.path, _lines(live.entries[-1:]))

    read = _read(session)

    assert _texts(read) == ["before", "after"]
    assert [(p.kind, p.where) for p in read.problems] == [
        (ProblemKind.INVALID_UTF8, f"{session.path}:4"),
        (ProblemKind.MALFORMED_LINE, f"{session.path}:5"),
        (ProblemKind.MALFORMED_LINE, f"{session.path}:6"),
        (ProblemKind.BAD_ENTRY, f"{session.path}:8"),
    ]
    assert read.skipped[SkipReason.MALFORMED] == 4
    assert read.turns[-1].where == f"{session.path}:9"
    assert _read(session, read.checkpoint).problems == ()  # reported once, not every run


def test_a_ten_megabyte_line_is_read_and_the_rest_too(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("please read the log")
    live.tool("read", {"path": "big.log"}, "x" * (10 * 1024 * 1024))
    live.assistant("The log is long and boring.")
    session = _write(writer, live)
    assert session.path.stat().st_size > 10 * 1024 * 1024

    read = _read(session)

    assert _texts(read) == ["please read the log", "The log is long and boring."]
    assert read.skipped[SkipReason.TOOL] == 2


def test_a_line_over_the_limit_is_skipped_unparsed(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("x" * (2 * 1024 * 1024))
    live.assistant("after the big one")
    session = _write(writer, live)
    live.user("y" * (2 * 1024 * 1024))  # a huge line still being written
    _append(session.path, json.dumps(live.entries[-1]).encode()[:-10])

    read = _read(session, max_line_bytes=1024 * 1024)

    assert _texts(read) == ["after the big one"]
    assert [(p.kind, p.where) for p in read.problems] == [
        (ProblemKind.OVERSIZED_LINE, f"{session.path}:3")
    ]
    assert read.pending_bytes > 2 * 1024 * 1024  # the unfinished one waits
    assert read.checkpoint is not None
    assert _read(session, read.checkpoint, max_line_bytes=1024 * 1024).problems == ()


def test_appends_between_reads_come_once(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("one")
    live.assistant("two")
    session = _write(writer, live)
    first = _read(session)
    before = len(live.entries)
    live.user("three")
    live.tool("calendar", {}, "free")
    live.assistant("four")
    _append(session.path, _lines(live.entries[before:]))

    second = _read(session, first.checkpoint)
    third = _read(session, second.checkpoint)

    assert _texts(first) == ["one", "two"]
    assert _texts(second) == ["three", "four"]
    assert third.turns == ()
    assert third.checkpoint == second.checkpoint
    assert [t.entry_id for t in first.turns + second.turns] == [
        t.entry_id for t in _read(session).turns
    ]


def test_a_checkpoint_survives_json(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("one")
    session = _write(writer, live)
    first = _read(session)
    assert first.checkpoint is not None
    stored = JsonlCheckpoint.from_dict(json.loads(json.dumps(first.checkpoint.to_dict())))
    assert stored == first.checkpoint
    live.user("two")
    _append(session.path, _lines(live.entries[-1:]))
    assert _texts(_read(session, stored)) == ["two"]


def test_a_different_file_at_the_same_path_is_read_from_the_start(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("the first file")
    session = _write(writer, live)
    first = _read(session)
    other = _builder(writer, 5)
    other.user("a different file, same name")
    other.assistant("and longer")
    replacement = session.path.with_name("replacement.tmp")
    replacement.write_text(other.jsonl())
    replacement.replace(session.path)

    second = _read(session, first.checkpoint)

    assert _texts(second) == ["a different file, same name", "and longer"]
    assert [(p.kind, p.where) for p in second.problems] == [
        (ProblemKind.FILE_REPLACED, str(session.path))
    ]


def test_a_rewritten_file_yields_only_what_is_new(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("one")
    live.assistant("two")
    session = _write(writer, live)
    first = _read(session)
    live.user("three")
    rewritten = session.path.with_name("rewrite.tmp")
    rewritten.write_text(live.jsonl())  # the same history plus one, written anew
    rewritten.replace(session.path)

    second = _read(session, first.checkpoint)

    assert _texts(second) == ["three"]
    assert second.skipped[SkipReason.DUPLICATE] == 4
    assert [p.kind for p in second.problems] == [ProblemKind.FILE_REPLACED]


@pytest.mark.parametrize(
    ("words", "why"), [(["shorter"], "truncated"), (["longer", "and", "new"], "first bytes")]
)
def test_a_file_rewritten_in_place_is_read_again(root: Path, words: list[str], why: str) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("one")
    live.assistant("two")
    session = _write(writer, live)
    first = _read(session)
    other = _builder(writer, 3)
    for word in words:
        other.user(word)
    with session.path.open("r+b") as handle:  # same inode, new content
        handle.truncate(0)
        handle.write(other.jsonl().encode())

    second = _read(session, first.checkpoint)

    assert _texts(second) == words
    assert [p.kind for p in second.problems] == [ProblemKind.FILE_REPLACED]
    assert why in second.problems[0].detail


def test_a_daily_reset_keeps_the_checkpoint_of_the_renamed_file(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("yesterday")
    session = _write(writer, live)
    first = _read(session)
    assert first.checkpoint is not None
    checkpoints = {session.path: first.checkpoint}
    session.path.rename(
        session.path.with_name(session.path.name + ".reset.2026-03-09T04-00-00.000Z")
    )
    today = _builder(writer, 20)
    today.user("today")
    writer.write_legacy("main", KEY, today)

    files, _ = list_session_files(session.path.parent)
    reads = [_read(f, checkpoint_for(f.path, checkpoints)) for f in files]

    assert [(f.state, _texts(r)) for f, r in zip(files, reads, strict=True)] == [
        (FileState.RESET, []),
        (FileState.LIVE, ["today"]),
    ]


def test_a_retried_line_is_read_once(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    live.user("once")
    session = _write(writer, live)
    _append(session.path, _lines(live.entries[-1:]))
    first = _read(session)
    _append(session.path, _lines(live.entries[-1:]))
    second = _read(session, first.checkpoint)
    assert _texts(first) == ["once"]
    assert second.turns == ()
    assert (first.skipped[SkipReason.DUPLICATE], second.skipped[SkipReason.DUPLICATE]) == (1, 1)


def test_a_transcript_appended_while_it_is_read(root: Path) -> None:
    writer = OpenClawWriter(root)
    live = _builder(writer)
    session = _write(writer, live)
    start = len(live.entries)
    for n in range(300):
        live.user(f"message {n}")
    lines = [json.dumps(e).encode() + b"\n" for e in live.entries[start:]]

    def append_slowly() -> None:
        with session.path.open("ab") as handle:
            for line in lines:
                for part in (line[:25], line[25:70], line[70:]):
                    handle.write(part)
                    handle.flush()
                    time.sleep(0.0002)

    appender = threading.Thread(target=append_slowly)
    appender.start()
    seen: list[str] = []
    checkpoint = None
    reads = 0
    while appender.is_alive() or reads == 0:
        read = _read(session, checkpoint)
        assert read.problems == ()
        seen += [t.entry_id for t in read.turns]
        checkpoint = read.checkpoint
        reads += 1
    appender.join()
    seen += [t.entry_id for t in _read(session, checkpoint).turns]

    assert seen == [e["id"] for e in live.entries[start:]]
    assert reads > 2


def test_an_unreadable_file_is_a_problem_not_an_exception(root: Path) -> None:
    gone = SessionFile(root / "gone.jsonl", "gone", None)
    read = _read(gone)
    assert (read.turns, read.checkpoint) == ((), None)
    assert [p.kind for p in read.problems] == [ProblemKind.UNREADABLE]
