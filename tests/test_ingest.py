"""The ingest job over real stores: incremental, idempotent, and never stopped by a bad file.

Fixtures are OpenClaw homes written the way OpenClaw writes them (``OpenClawWriter``); the
store is the real one (SQLite + embedded Chroma) with a small deterministic embedder.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.sample.session import SessionBuilder
from daemon.sample.writer import OpenClawWriter
from jobs import ingest
from stores.memory.index import MemoryIndex
from stores.memory.records import Chunk, SearchQuery, Write
from stores.openclaw.problems import ProblemKind
from tests.memory_fixtures import (
    MAIN_KEY,
    SAMPLE_TODAY,
    WORK_KEY,
    Harness,
    HashedWords,
    hashed_words_are_not_rebuilt,
    home_entries,
    message_ids,
    write_sample,
)

pytestmark = hashed_words_are_not_rebuilt
T0 = SAMPLE_TODAY - timedelta(days=1)


@pytest.fixture
def writer(tmp_path: Path) -> OpenClawWriter:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    return writer


@pytest.fixture
def harness(tmp_path: Path, writer: OpenClawWriter) -> Iterator[Harness]:
    harness = Harness.open(writer.home, tmp_path / "state", HashedWords())
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample home, shared: ingest only reads it."""
    return write_sample(tmp_path_factory.mktemp("sample") / "openclaw")


@pytest.fixture
def sample(tmp_path: Path, sample_home: Path) -> Iterator[Harness]:
    """A new store over the shared sample home."""
    harness = Harness.open(sample_home, tmp_path / "state", HashedWords())
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, sample_home: Path) -> Iterator[Harness]:
    """The sample ingested in one undisturbed run: what every other way must end up with."""
    harness = Harness.open(sample_home, tmp_path_factory.mktemp("clean"), HashedWords())
    harness.ingest()
    yield harness
    harness.close()


def _talk(session: SessionBuilder, turns: int, topic: str = "ferry") -> None:
    for n in range(turns):
        if n % 2 == 0:
            session.user(f"question {n} about the {topic}")
        else:
            session.assistant(f"answer {n} about the {topic}")


def _append(path: Path, entries: list[dict[str, Any]]) -> None:
    with path.open("ab") as handle:
        handle.write(b"".join(json.dumps(e).encode() + b"\n" for e in entries))


def _problems(report: ingest.IngestReport) -> list[tuple[ProblemKind, str]]:
    return [(p.kind, p.where) for p in report.problems]


def _windows(harness: Harness, session_id: str) -> dict[tuple[str, ...], str]:
    """The session's turn windows: their entry ids -> chunk id."""
    return {
        c.entry_ids: cid
        for cid, c in harness.chunks().items()
        if c.session_id == session_id and c.kind == "turns"
    }


# --- both layouts, once ------------------------------------------------------------------------


def test_both_layouts_are_read_once_and_a_second_run_writes_nothing(sample: Harness) -> None:
    home = sample.home
    first = sample.ingest()
    assert (first.agents, first.turns, first.notes_indexed, first.problems) == (2, 12, 5, [])
    assert first.skipped == Counter({"metadata": 8, "tool": 2, "heartbeat": 2, "error": 1})
    entries = home_entries(home)
    stored = sample.turn_entries()
    assert len(stored) == len(set(stored)) == 12
    assert all(
        entries.by_id[e].session_id == t.session_id
        for e, t in zip(stored, sample.turns(), strict=True)
    )
    assert {t.session_key for t in sample.turns() if t.agent == "work"} == {WORK_KEY}
    notes = [p for p in (home / "workspace").rglob("*.md") if p.name != "IDENTITY.md"]
    assert sorted(sample.store.index.checkpoints()) == sorted(
        [f"main:jsonl:{p}" for p in (home / "agents" / "main" / "sessions").glob("*.jsonl*")]
        + ["work:sqlite"]
        + [f"main:note:{p}" for p in notes]
        + [f"work:note:{home / 'workspace-work' / name}" for name in ("MEMORY.md", "USER.md")]
    )
    chunks = sample.chunks()
    sample.assert_consistent()

    second = sample.ingest()
    assert (second.turns, second.chunks, second.sources, second.notes_indexed) == (0, 0, 0, 0)
    assert second.problems == []
    assert sample.chunks() == chunks
    assert sample.turn_entries() == stored
    sample.assert_consistent()


def test_one_session_in_both_layouts_is_stored_once(
    writer: OpenClawWriter, harness: Harness
) -> None:
    """OpenClaw 2026.7.2 moves a legacy transcript into its database: same ids, once."""
    session = writer.new_session("main", T0)
    _talk(session, 6)
    writer.write_legacy("main", MAIN_KEY, session)
    writer.write_sqlite("main", MAIN_KEY, [session])
    assert harness.ingest().turns == 6
    assert harness.turn_entries() == message_ids(session.entries)
    assert harness.ingest().turns == 0
    harness.assert_consistent()


# --- JSONL: appends, resets, half lines, bad lines -------------------------------------------


def test_appended_turns_come_once_and_the_last_windows_are_rewritten_in_place(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    _talk(live, 5)
    path = writer.write_legacy("main", MAIN_KEY, live)
    harness.ingest()
    ids = message_ids(live.entries)
    before = _windows(harness, live.session_id)
    assert sorted(before) == sorted([tuple(ids[0:4]), tuple(ids[2:5]), tuple(ids[4:5])])
    chunks_before = harness.chunks()

    written = len(live.entries)
    _talk(live, 3, topic="harbour")
    _append(path, live.entries[written:])
    report = harness.ingest()

    ids = message_ids(live.entries)
    assert (report.turns, report.chunks) == (3, 3)
    assert harness.turn_entries() == ids
    after = _windows(harness, live.session_id)
    assert sorted(after) == sorted(
        [tuple(ids[0:4]), tuple(ids[2:6]), tuple(ids[4:8]), tuple(ids[6:8])]
    )
    # Windows keep their ids as they grow: the one of turns 2.. and 4.. now hold more.
    assert after[tuple(ids[2:6])] == before[tuple(ids[2:5])]
    assert after[tuple(ids[4:8])] == before[tuple(ids[4:5])]
    assert harness.chunks()[after[tuple(ids[0:4])]] == chunks_before[before[tuple(ids[0:4])]]
    assert len([c for c in harness.chunks().values() if c.kind == "turns"]) == 4
    harness.assert_consistent()
    (hit,) = harness.store.search(SearchQuery("answer 7 harbour", k=1)).results
    assert ids[7] in hit.source.entry_ids


def test_a_daily_reset_is_followed_and_not_read_again(
    writer: OpenClawWriter, harness: Harness
) -> None:
    yesterday = writer.new_session("main", T0)
    _talk(yesterday, 4)
    path = writer.write_legacy("main", MAIN_KEY, yesterday)
    harness.ingest()
    path.rename(path.with_name(path.name + ".reset.2026-03-10T04-00-00.000Z"))
    today = writer.new_session("main", SAMPLE_TODAY)
    _talk(today, 3, topic="harbour")
    writer.write_legacy("main", MAIN_KEY, today)

    report = harness.ingest()

    assert (report.turns, report.problems) == (3, [])
    assert harness.turn_entries() == message_ids(yesterday.entries) + message_ids(today.entries)
    assert {t.session_key for t in harness.turns()} == {MAIN_KEY}
    assert harness.ingest().turns == 0
    harness.assert_consistent()


def test_the_last_lines_of_a_reset_archive_are_read_once(
    writer: OpenClawWriter, harness: Harness
) -> None:
    """A line written just before the rename; the checkpoint moves to the archive's name."""
    live = writer.new_session("main", T0)
    _talk(live, 2)
    path = writer.write_legacy("main", MAIN_KEY, live)
    harness.ingest()
    written = len(live.entries)
    _talk(live, 1, topic="harbour")
    _append(path, live.entries[written:])
    archive = path.with_name(path.name + ".reset.2026-03-10T04-00-00.000Z")
    path.rename(archive)

    assert harness.ingest().turns == 1
    assert harness.turn_entries() == message_ids(live.entries)
    assert list(harness.store.index.checkpoints("main:jsonl:")) == [f"main:jsonl:{archive}"]
    assert harness.ingest().turns == 0


def test_a_half_written_last_line_waits_and_comes_once_completed(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    _talk(live, 2)
    path = writer.write_legacy("main", MAIN_KEY, live)
    live.user("the line being written")
    line = json.dumps(live.entries[-1]).encode() + b"\n"
    with path.open("ab") as handle:
        handle.write(line[:50])

    first = harness.ingest()
    assert (first.turns, first.problems) == (2, [])

    with path.open("ab") as handle:
        handle.write(line[50:])
    second = harness.ingest()
    assert (second.turns, second.problems) == (1, [])
    assert harness.turn_entries() == message_ids(live.entries)
    assert harness.ingest().turns == 0


def test_bad_lines_are_counted_with_their_place_and_the_rest_is_read(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    _talk(live, 2)
    path = writer.write_legacy("main", MAIN_KEY, live)
    lines = len(live.entries)
    with path.open("ab") as handle:
        handle.write(b"\xff\xfe\x00 garbage bytes\n")  # line +1
        handle.write(b'{"type": "message", "id": "cut\n')  # +2
        handle.write(b"[1, 2, 3]\n")  # +3
    written = len(live.entries)
    live.add({"type": "hologram", "payload": {"beams": 3}})  # +4, a type from a newer OpenClaw
    live.user("still read after all that")  # +5
    _append(path, live.entries[written:])

    report = harness.ingest()

    assert _problems(report) == [
        (ProblemKind.INVALID_UTF8, f"{path}:{lines + 1}"),
        (ProblemKind.MALFORMED_LINE, f"{path}:{lines + 2}"),
        (ProblemKind.MALFORMED_LINE, f"{path}:{lines + 3}"),
        (ProblemKind.UNKNOWN_TYPE, f"{path}:{lines + 4}"),
    ]
    assert (report.skipped["malformed"], report.skipped["unknown_type"]) == (3, 1)
    assert report.to_dict()["problems"] == 4
    assert report.to_dict()["problem_examples"][0]["where"] == f"{path}:{lines + 1}"
    assert report.turns == 3
    assert harness.turn_entries() == message_ids(live.entries)
    again = harness.ingest()
    assert (again.turns, again.problems) == (0, [])  # reported once, not on every run


def test_odd_shapes_cost_one_entry_and_never_stop_later_runs(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    live.user("Cut in the middle of an emoji CUT")
    path = writer.write_legacy("main", MAIN_KEY, live)
    # A lone surrogate, as a JavaScript writer leaves text cut in the middle of an emoji.
    path.write_bytes(path.read_bytes().replace(b"emoji CUT", b"emoji \\ud83d"))
    lines = len(live.entries)
    with path.open("ab") as handle:
        handle.write(b'{"type": [], "id": "x"}\n')  # a type that is not even a string
    written = len(live.entries)
    live.user("read after the odd ones")
    _append(path, live.entries[written:])

    report = harness.ingest()

    assert _problems(report) == [(ProblemKind.BAD_ENTRY, f"{path}:{lines + 1}")]
    texts = [t.text for t in harness.store.index.turns_between("main", 0, 2e9)]
    assert texts == ["Cut in the middle of an emoji \ufffd", "read after the odd ones"]
    live.user("and the next run goes on")
    _append(path, live.entries[-1:])
    assert harness.ingest().turns == 1
    harness.assert_consistent()


def test_a_source_that_fails_outright_leaves_the_others_read(
    writer: OpenClawWriter, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, fine = writer.new_session("main", T0), writer.new_session("main", SAMPLE_TODAY)
    _talk(broken, 2)
    _talk(fine, 2, topic="harbour")
    broken_path = writer.write_legacy("main", MAIN_KEY, broken)
    writer.write_legacy("main", "agent:main:other", fine)
    real = ingest.Ingest._jsonl

    def failing(self: ingest.Ingest, agent: Any, *, session: Any) -> None:
        if session.path == broken_path:
            raise RuntimeError("disk said no")
        real(self, agent, session=session)

    monkeypatch.setattr(ingest.Ingest, "_jsonl", failing)
    report = harness.ingest()
    assert [(p.kind, p.where, p.detail) for p in report.problems] == [
        (ProblemKind.SOURCE_FAILED, str(broken_path), "RuntimeError: disk said no")
    ]
    assert harness.turn_entries() == message_ids(fine.entries)
    monkeypatch.setattr(ingest.Ingest, "_jsonl", real)
    assert harness.ingest().turns == 2, "read once it works again"


def test_a_ten_megabyte_line_does_not_stop_the_rest(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    live.user("please read the big log")
    live.tool("read", {"path": "big.log"}, "x" * (10 * 1024 * 1024))
    live.assistant("The log is long and boring.")
    path = writer.write_legacy("main", MAIN_KEY, live)
    with path.open("ab") as handle:
        handle.write(b"{" + b"y" * (10 * 1024 * 1024) + b"\n")  # ten megabytes, not JSON
    written = len(live.entries)
    live.user("and after the garbage")
    _append(path, live.entries[written:])

    report = harness.ingest()

    assert report.turns == 3
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED_LINE]
    assert len(report.problems[0].detail) < 300  # the detail does not carry the line
    assert harness.turn_entries() == message_ids(live.entries)
    assert all(len(c.text) < 1000 for c in harness.chunks().values())


def test_a_transcript_appended_while_ingest_runs(writer: OpenClawWriter, harness: Harness) -> None:
    live = writer.new_session("main", T0)
    path = writer.write_legacy("main", MAIN_KEY, live)
    start = len(live.entries)
    _talk(live, 120)
    lines = [json.dumps(e).encode() + b"\n" for e in live.entries[start:]]
    batches = [lines[i : i + 12] for i in range(0, len(lines), 12)]
    runs = 0
    ran = threading.Condition()

    def ran_more_than(number: int) -> bool:
        return runs > number

    def append_in_pieces() -> None:
        """Lines in three writes each; a batch at a time, each after one more ingest run has
        finished, so that writing and reading overlap however fast either is."""
        with path.open("ab") as handle:
            for number, batch in enumerate(batches):
                with ran:
                    ran.wait_for(partial(ran_more_than, number), timeout=10)
                for line in batch:
                    for part in (line[:30], line[30:90], line[90:]):
                        handle.write(part)
                        handle.flush()
                        time.sleep(0.0001)

    appender = threading.Thread(target=append_in_pieces)
    appender.start()
    try:
        while appender.is_alive():
            assert harness.ingest().problems == []
            with ran:
                runs += 1
                ran.notify()
    finally:
        appender.join()
    harness.ingest()

    assert harness.turn_entries() == message_ids(live.entries)
    assert runs >= len(batches)
    harness.assert_consistent()
    windows = _windows(harness, live.session_id)
    assert len(windows) == 60  # a window every 2 turns, none twice


# --- SQLite ------------------------------------------------------------------------------------


def test_sqlite_rows_compressed_or_not_are_read_after_the_last_seq(
    writer: OpenClawWriter, harness: Harness
) -> None:
    first, second = writer.new_session("main", T0), writer.new_session("main", SAMPLE_TODAY)
    _talk(first, 3)
    _talk(second, 2, topic="harbour")
    writer.write_sqlite("main", MAIN_KEY, [first], compress=True)
    assert harness.ingest().turns == 3
    _talk(first, 1, topic="late")
    writer.append_sqlite("main", MAIN_KEY, [first, second])  # new rows, plain this time

    report = harness.ingest()

    assert (report.turns, report.problems) == (3, [])
    assert harness.turn_entries() == message_ids(first.entries) + message_ids(second.entries)
    assert harness.store.index.checkpoint("main:sqlite") == {
        "sessions": {
            first.session_id: [len(first.entries) - 1, None, None],
            second.session_id: [len(second.entries) - 1, None, None],
        },
        "archives": [],
    }
    assert harness.ingest().sources == 0
    harness.assert_consistent()


def test_a_corrupt_database_is_a_problem_and_other_agents_are_read(
    writer: OpenClawWriter, harness: Harness
) -> None:
    writer.add_agent("work", "Ledger", "Dana")
    live = writer.new_session("main", T0)
    _talk(live, 2)
    writer.write_legacy("main", MAIN_KEY, live)
    database = writer.database("work")
    database.parent.mkdir(parents=True)
    database.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))

    report = harness.ingest()

    assert report.turns == 2
    assert [(p.kind, p.where) for p in report.problems] == [
        (ProblemKind.CORRUPT_DATABASE, str(database))
    ]
    assert {c.agent for c in harness.chunks().values() if c.kind == "turns"} == {"main"}
    again = harness.ingest()
    assert (again.turns, again.sources) == (0, 0), "nothing to write while it stays broken"
    assert [p.kind for p in again.problems] == [ProblemKind.CORRUPT_DATABASE]

    session = writer.new_session("work", T0)
    _talk(session, 2)
    database.unlink()
    writer.write_sqlite("work", WORK_KEY, [session])
    healed = harness.ingest()
    assert (healed.turns, healed.problems) == (2, [])


def test_only_the_agent_asked_for_is_read(sample: Harness) -> None:
    report = sample.ingest(agent="work")
    assert (report.agents, report.turns) == (1, 4)
    assert {c.agent for c in sample.chunks().values()} == {"work"}
    assert sample.ingest().turns == 8


# --- notes -------------------------------------------------------------------------------------


def test_notes_are_indexed_changed_and_removed(writer: OpenClawWriter, harness: Harness) -> None:
    notes = writer.workspace("main") / "memory"
    trip = notes / "2026-03-09.md"
    trip.write_text("# Trip\n\n## Ferry\n\nThe ferry to Tangier leaves at noon.\n")
    first = harness.ingest()
    assert first.notes_indexed == 3  # MEMORY.md, USER.md and the daily note
    (chunk,) = [c for c in harness.chunks().values() if c.path == str(trip)]
    assert (chunk.line_start, chunk.line_end, chunk.kind, chunk.agent) == (3, 5, "note", "main")
    assert "Trip > Ferry" in chunk.text

    trip.write_text(
        "# Trip\n\n## Ferry\n\nThe ferry to Tangier leaves at four.\n\n## Hotel\n\nRiad Dar.\n"
    )
    changed = harness.ingest()
    assert (changed.notes_indexed, changed.notes_removed) == (1, 0)
    texts = sorted(c.text for c in harness.chunks().values() if c.path == str(trip))
    assert len(texts) == 2
    assert "leaves at four" in texts[0]
    assert "Riad Dar" in texts[1]
    assert not any("noon" in c.text for c in harness.chunks().values())
    harness.assert_consistent()

    os.utime(trip, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, not changed
    assert harness.ingest().notes_indexed == 0

    trip.unlink()
    removed = harness.ingest()
    assert (removed.notes_indexed, removed.notes_removed) == (0, 1)
    assert not any(c.path == str(trip) for c in harness.chunks().values())
    assert f"main:note:{trip}" not in harness.store.index.checkpoints()
    harness.assert_consistent()
    hits = harness.store.search(SearchQuery("ferry Tangier", k=5)).results
    assert [h for h in hits if h.source.path == str(trip) or "Tangier" in h.text] == []


def test_forgotten_turns_do_not_come_back_with_the_next_turn(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    for n in range(3):
        live.user(f"my old bank password is hunter{n}")
    path = writer.write_legacy("main", MAIN_KEY, live)
    harness.ingest()
    forgotten = harness.store.index.ids_where(session_id=live.session_id)
    assert harness.store.forget(forgotten) == 2

    written = len(live.entries)
    live.user("what time does the ferry leave?")
    _append(path, live.entries[written:])
    assert harness.ingest().turns == 1

    texts = [c.text for c in harness.chunks().values() if c.kind == "turns"]
    assert len(texts) == 2
    assert all("ferry" in t and "password" not in t for t in texts)
    assert (
        harness.store.search(SearchQuery("bank password hunter", k=5))
        .results[0]
        .text.count("password")
        == 0
    )
    harness.assert_consistent()


# --- crashes, rebuilds, settings ----------------------------------------------------------------


class _Killed(BaseException):
    """The process dying: no handler of the program's own runs (they catch ``Exception``)."""


@pytest.mark.parametrize("crash_at", [1, 2, 3, 5])
def test_a_crash_midway_loses_and_duplicates_nothing(
    sample: Harness, clean: Harness, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    apply = MemoryIndex.apply
    calls = 0

    def crash_once(self: MemoryIndex, write: Write, now: datetime) -> None:
        nonlocal calls
        calls += 1
        if calls == crash_at:
            raise _Killed("killed before the SQLite commit")
        apply(self, write, now)

    monkeypatch.setattr(MemoryIndex, "apply", crash_once)
    with pytest.raises(_Killed):
        sample.ingest()
    stored = set(sample.chunks())
    assert len(stored) < len(clean.chunks()), "the run stopped partway"
    assert sample.vector_ids() <= stored, "no vector without its row"
    assert sample.store.stats().to_embed == len(stored), "rows wait for vectors, not lost"
    for question in ("Mira Lisbon", "dentist Tuesday", "launch review", "tomatoes"):
        for hit in sample.store.search(SearchQuery(question, k=20)).results:
            assert hit.id in stored

    sample.ingest()
    assert sample.ingest().turns == 0
    assert sorted(sample.turn_entries()) == sorted(clean.turn_entries())
    assert {k: c.text for k, c in sample.chunks().items()} == {
        k: c.text for k, c in clean.chunks().items()
    }
    sample.assert_consistent()


def test_a_rebuild_reads_everything_again_and_keeps_manual_memories(sample: Harness) -> None:
    sample.ingest()
    text = "the spare key is under the blue pot"
    memory = Chunk("manual:k", "manual", None, "manual:k", text, text)
    sample.store.write(Write(chunks=[memory]), SAMPLE_TODAY)
    summarised = {"through": "2026-03-10T12:00:00+00:00", "days": ["2026-03-10"]}
    sample.store.index.apply(Write(checkpoints={"summary:main": summarised}), SAMPLE_TODAY)
    before = sample.chunks()

    report = sample.ingest(rebuild=True)

    assert (report.rebuilt, report.turns, report.notes_indexed) == (True, 12, 5)
    assert {k: c.text for k, c in sample.chunks().items()} == {k: c.text for k, c in before.items()}
    sample.assert_consistent()
    (hit,) = sample.store.search(SearchQuery("spare key blue pot", k=1)).results
    assert hit.id == "manual:k"
    assert sample.store.index.checkpoint("summary:main") == summarised, "summarize's own state"


def test_new_window_settings_rechunk_from_stored_turns(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    _talk(live, 6)
    writer.write_legacy("main", MAIN_KEY, live)
    harness.ingest()
    ids = message_ids(live.entries)
    harness.window, harness.stride = 3, 3

    report = harness.ingest()

    assert report.turns == 0  # nothing read again
    assert sorted(_windows(harness, live.session_id)) == [tuple(ids[0:3]), tuple(ids[3:6])]
    harness.assert_consistent()
    assert harness.ingest().chunks == 0


async def test_the_job_reports_and_logs_its_problems(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    _talk(live, 2)
    path = writer.write_legacy("main", MAIN_KEY, live)
    with path.open("ab") as handle:
        handle.write(b"not json\n")

    with capture_logs() as logs:
        result = await ingest.run(harness.context())

    assert result.summary == "2 new turns, 2 chunks from 3 sources; 1 problem"
    assert result.stats["turns"] == 2
    assert [(e["event"], e["where"]) for e in logs if e["event"] == "ingest.problem"] == [
        ("ingest.problem", f"{path}:{len(live.entries) + 1}")
    ]
    stats = harness.store.stats()
    assert (stats.turns, stats.chunks, stats.vectors) == (2, 2, 2)


async def test_a_problem_that_stays_is_logged_once_and_counted_every_run(
    writer: OpenClawWriter, harness: Harness
) -> None:
    live = writer.new_session("main", T0)
    _talk(live, 2)
    path = writer.write_legacy("main", MAIN_KEY, live)
    (path.parent / "sessions.json").unlink()  # keys unknown, on every run until it is back

    with capture_logs() as first:
        one = await ingest.run(harness.context())
    with capture_logs() as second:
        two = await ingest.run(harness.context())

    assert one.stats["problems"] == two.stats["problems"] == 1
    assert [e["event"] for e in first].count("ingest.problem") == 1
    assert [e["event"] for e in second].count("ingest.problem") == 0


async def test_the_job_refuses_to_run_without_a_store(harness: Harness) -> None:
    with pytest.raises(RuntimeError, match="memory store is not open"):
        await ingest.run(replace(harness.context(), memory=None))


def test_timestamps_are_the_entries_own(writer: OpenClawWriter, harness: Harness) -> None:
    live = writer.new_session("main", datetime(2026, 3, 8, 22, 3, tzinfo=UTC))
    _talk(live, 2)
    writer.write_legacy("main", MAIN_KEY, live)
    harness.ingest()
    (window,) = [c for c in harness.chunks().values() if c.kind == "turns"]
    messages = [e for e in live.entries if e.get("type") == "message"]
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in messages]
    assert (window.ts_start, window.ts_end) == (stamps[0].timestamp(), stamps[-1].timestamp())
    assert window.text.startswith("[2026-03-08 22:")
    assert window.speakers == ("Dana", "Juniper")
