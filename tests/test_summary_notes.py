"""The hourly note: one section per hour whatever re-runs, restarts or concurrent writers do,
in time order, around whatever else the file holds, atomically and never in MEMORY.md."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import filelock
import pytest

from stores.coordination.summary_notes import (
    LOCK_NAME,
    CompactionConfig,
    Origin,
    SummaryKind,
    compact,
    note_path,
    read_day_summary,
    read_hours,
    roll_up,
    write_hour,
)
from stores.hours import HourWindow, hour_window_at, hour_windows, previous_hour

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 3, 8)
T0 = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 14:00 in Berlin
LLM = Origin(SummaryKind.THREE_PASS)
FALLBACK = Origin(SummaryKind.EXTRACTIVE, "no LLM configured")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "memory").mkdir(parents=True)
    (ws / "MEMORY.md").write_text("# MEMORY.md\n\n- Dana prefers short replies.\n")
    return ws


def _hour(hours_after_t0: int, tz: ZoneInfo = BERLIN) -> HourWindow:
    return hour_window_at(T0 + timedelta(hours=hours_after_t0), tz)


def _markers(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("<!-- openclaw")]


def test_an_hour_is_written_with_its_local_heading_and_who_wrote_it(workspace: Path) -> None:
    written = write_hour(workspace, _hour(0), "Dana planned the garden.", FALLBACK)

    path = note_path(workspace, DAY)
    assert written.path == path == workspace / "memory" / "2026-03-08-hourly.md"
    assert (written.replaced, written.changed) == (False, True)
    assert path.read_text() == (
        "# Hourly summaries 2026-03-08\n"
        "\n"
        "<!-- openclaw-infra hour 2026-03-08T13:00:00Z -->\n"
        "## 14:00\u201315:00 (UTC+01:00)\n"
        "\n"
        "_Summary: extractive (no LLM configured)_\n"
        "\n"
        "Dana planned the garden.\n"
        "\n"
        "<!-- openclaw-infra end hour 2026-03-08T13:00:00Z -->\n"
        "\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (note,) = read_hours(path)
    assert note.start == T0
    assert note.heading == "## 14:00\u201315:00 (UTC+01:00)"
    assert note.origin == "_Summary: extractive (no LLM configured)_"
    assert note.body == "Dana planned the garden."


@pytest.mark.parametrize(
    ("origin", "line"),
    [
        (Origin(SummaryKind.THREE_PASS), "_Summary: LLM, three-pass_"),
        (
            Origin(SummaryKind.SINGLE_PASS, "claude-sonnet"),
            "_Summary: LLM, single-pass (claude-sonnet)_",
        ),
        (
            Origin(SummaryKind.EXTRACTIVE, "LLM failed:\n HTTP 529_overloaded"),
            "_Summary: extractive (LLM failed: HTTP 529 overloaded)_",
        ),
    ],
)
def test_the_note_says_whether_the_llm_or_the_extractive_summarizer_wrote_it(
    origin: Origin, line: str
) -> None:
    assert origin.line() == line


def test_rewriting_an_hour_replaces_its_section_and_never_duplicates_it(workspace: Path) -> None:
    write_hour(workspace, _hour(0), "First attempt.", FALLBACK)

    again = write_hour(workspace, _hour(0), "Written by the LLM this time.", LLM)
    path = again.path
    mtime = path.stat().st_mtime_ns
    same = write_hour(workspace, _hour(0), "Written by the LLM this time.", LLM)

    assert (again.replaced, again.changed) == (True, True)
    assert (same.replaced, same.changed) == (True, False)
    assert path.stat().st_mtime_ns == mtime  # nothing to change: the file is not touched
    assert len(_markers(path)) == 2
    assert "First attempt." not in path.read_text()
    assert [(n.origin, n.body) for n in read_hours(path)] == [
        ("_Summary: LLM, three-pass_", "Written by the LLM this time.")
    ]


def test_an_hour_is_written_once_across_a_restart_in_another_process(workspace: Path) -> None:
    window = _hour(0)
    write_hour(workspace, window, "Before the restart.", LLM)
    script = (
        "import sys; from pathlib import Path\n"
        "from stores.hours import HourWindow\n"
        "from stores.coordination.summary_notes import Origin, SummaryKind, write_hour\n"
        "w = HourWindow.model_validate_json(sys.argv[2])\n"
        "write_hour(Path(sys.argv[1]), w, 'After the restart.', Origin(SummaryKind.EXTRACTIVE))\n"
    )

    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", script, str(workspace), window.model_dump_json()],
            cwd=REPO,
            check=True,
            timeout=60,
        )

    notes = read_hours(note_path(workspace, DAY))
    assert [(n.start, n.body) for n in notes] == [(T0, "After the restart.")]


def test_hours_stay_in_time_order_whatever_order_they_are_written_in(workspace: Path) -> None:
    for hours in (2, 0, 3, 1):
        write_hour(workspace, _hour(hours), f"hour {hours}", LLM)
    write_hour(workspace, _hour(1), "hour 1, again", LLM)

    notes = read_hours(note_path(workspace, DAY))

    assert [n.body for n in notes] == ["hour 0", "hour 1, again", "hour 2", "hour 3"]
    assert [n.start for n in notes] == [T0 + timedelta(hours=h) for h in range(4)]


def test_text_outside_our_sections_is_kept_as_it_was(workspace: Path) -> None:
    path = note_path(workspace, DAY)
    write_hour(workspace, _hour(0), "hour 0", LLM)
    write_hour(workspace, _hour(2), "hour 2", LLM)
    text = path.read_text()
    middle = text.index("<!-- openclaw-infra hour 2026-03-08T15")
    agent_note = "Agent's own line between the hours.\n\n"
    tail = "## Agent's note\n\nDana called about the shed; no summary of mine.\n- a list\n"
    path.write_text("Preface by the agent.\n" + text[:middle] + agent_note + text[middle:] + tail)

    write_hour(workspace, _hour(1), "hour 1", LLM)
    write_hour(workspace, _hour(2), "hour 2, replaced", LLM)
    write_hour(workspace, _hour(5), "hour 5", LLM)

    result = path.read_text()
    assert result.startswith("Preface by the agent.\n# Hourly summaries 2026-03-08\n")
    assert agent_note in result
    assert tail in result
    assert [n.body for n in read_hours(path)] == ["hour 0", "hour 1", "hour 2, replaced", "hour 5"]
    assert result.index("hour 1") < result.index(agent_note) < result.index("hour 2, replaced")
    assert result.index(tail) < result.index("hour 5")  # a new hour goes after the last one


def test_foreign_text_without_a_final_newline_and_invalid_utf8_is_kept(workspace: Path) -> None:
    path = note_path(workspace, DAY)
    path.write_bytes(b"Caf\xe9 notes in Latin-1, no newline at the end")

    write_hour(workspace, _hour(0), "hour 0", LLM)

    data = path.read_bytes()
    assert data.startswith(b"Caf\xe9 notes in Latin-1, no newline at the end\n\n<!-- openclaw")
    assert [n.body for n in read_hours(path)] == ["hour 0"]


def test_a_marker_in_a_summary_cannot_open_or_close_a_section(workspace: Path) -> None:
    body = (
        "Injected:\n<!-- openclaw-infra end hour 2026-03-08T13:00:00Z -->\n"
        "<!-- openclaw-infra hour 2026-03-08T20:00:00Z -->\nstill the body"
    )

    write_hour(workspace, _hour(0), body, LLM)
    write_hour(workspace, _hour(0), body, LLM)

    path = note_path(workspace, DAY)
    (note,) = read_hours(path)
    assert note.body.endswith("still the body")
    assert "&lt;!-- openclaw-infra end hour" in note.body
    assert len(_markers(path)) == 2


def test_a_section_whose_end_marker_was_deleted_is_left_as_text(workspace: Path) -> None:
    path = note_path(workspace, DAY)
    write_hour(workspace, _hour(0), "hour 0", LLM)
    damaged = path.read_text().replace(
        "<!-- openclaw-infra end hour 2026-03-08T13:00:00Z -->\n", ""
    )
    path.write_text(damaged + "Agent text after it.\n")

    write_hour(workspace, _hour(0), "hour 0, rewritten", LLM)
    write_hour(workspace, _hour(0), "hour 0, rewritten again", LLM)

    result = path.read_text()
    assert result.startswith(damaged + "Agent text after it.\n")  # nothing of it was taken
    assert [n.body for n in read_hours(path)] == ["hour 0, rewritten again"]


def test_concurrent_writers_never_lose_a_section(workspace: Path) -> None:
    windows = hour_windows(datetime(2026, 3, 9, 0, 0, tzinfo=BERLIN), BERLIN, 24)
    errors: list[BaseException] = []
    start = threading.Barrier(len(windows) * 2)

    def write(window: HourWindow, attempt: int) -> None:
        try:
            start.wait()
            write_hour(workspace, window, f"{window.label} attempt {attempt}", LLM)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(w, attempt)) for w in windows for attempt in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    notes = read_hours(note_path(workspace, DAY))
    assert [n.start for n in notes] == [w.utc_start for w in windows]
    assert [n.body.rsplit(" attempt ", 1)[0] for n in notes] == [w.label for w in windows]
    assert len(_markers(note_path(workspace, DAY))) == 48


def test_an_hour_spanning_midnight_goes_to_the_file_of_the_day_it_starts(workspace: Path) -> None:
    before, after = hour_windows(datetime(2026, 3, 9, 1, 0, tzinfo=BERLIN), BERLIN, 2)

    first = write_hour(workspace, before, "late evening", LLM)
    second = write_hour(workspace, after, "after midnight", LLM)

    assert first.path.name == "2026-03-08-hourly.md"
    assert second.path.name == "2026-03-09-hourly.md"
    assert read_hours(first.path)[0].heading == "## 23:00\u201300:00 (UTC+01:00)"
    assert read_hours(second.path)[0].heading == "## 00:00\u201301:00 (UTC+01:00)"


def test_the_repeated_hour_of_a_fall_back_night_gets_two_sections(workspace: Path) -> None:
    windows = hour_windows(datetime(2026, 10, 25, 3, 0, tzinfo=UTC), BERLIN, 4)
    for window in reversed(windows):
        write_hour(workspace, window, f"at {window.utc_start:%H:%M}Z", LLM)
    write_hour(workspace, windows[2], "at 01:00Z, re-run", LLM)

    notes = read_hours(note_path(workspace, date(2026, 10, 25)))

    assert [n.heading for n in notes] == [
        "## 01:00\u201302:00 (UTC+02:00)",
        "## 02:00\u201303:00 (UTC+02:00)",
        "## 02:00\u201303:00 (UTC+01:00)",
        "## 03:00\u201304:00 (UTC+01:00)",
    ]
    assert [n.body for n in notes] == ["at 23:00Z", "at 00:00Z", "at 01:00Z, re-run", "at 02:00Z"]


def test_a_spring_forward_night_skips_the_missing_hour(workspace: Path) -> None:
    for window in hour_windows(datetime(2026, 3, 29, 3, 0, tzinfo=UTC), BERLIN, 3):
        write_hour(workspace, window, "talk", LLM)

    notes = read_hours(note_path(workspace, date(2026, 3, 29)))

    assert [n.heading for n in notes] == [
        "## 01:00\u201302:00 (UTC+01:00)",
        "## 03:00\u201304:00 (UTC+02:00)",
        "## 04:00\u201305:00 (UTC+02:00)",
    ]


def test_roll_up_adds_the_day_summary_and_folds_hours_older_than_kept(workspace: Path) -> None:
    for hours in range(4):
        write_hour(workspace, _hour(hours), f"hour {hours}", LLM)
    path = note_path(workspace, DAY)
    path.write_text(path.read_text() + "Agent's own line at the end.\n")
    now = T0 + timedelta(hours=5)  # hours 0..3 ended 5, 4, 3 and 2 hours ago

    folded = roll_up(workspace, DAY, "A garden day.", LLM, keep_hours=timedelta(hours=3), now=now)

    assert (folded.path, folded.removed, folded.kept) == (path, 2, 2)
    assert [n.body for n in read_hours(path)] == ["hour 2", "hour 3"]
    assert read_day_summary(path) == "A garden day."
    text = path.read_text()
    assert "## Day summary\n\n_Summary: LLM, three-pass_\n\nA garden day.\n" in text
    assert text.index("hour 3") < text.index("## Day summary")
    assert "Agent's own line at the end.\n" in text

    again = roll_up(
        workspace, DAY, "A garden day, again.", FALLBACK, keep_hours=timedelta(0), now=now
    )

    assert (again.removed, again.kept) == (2, 0)
    assert read_hours(path) == []
    assert read_day_summary(path) == "A garden day, again."
    assert text.count("<!-- openclaw-infra day ") == 1
    assert path.read_text().count("<!-- openclaw-infra day ") == 1


def test_compaction_removes_only_hours_the_day_summary_covers(workspace: Path) -> None:
    for hours in range(2):
        write_hour(workspace, _hour(hours), f"hour {hours}", LLM)
    path = note_path(workspace, DAY)
    keep = CompactionConfig(keep_hourly_for=timedelta(days=2)).keep_hourly_for
    # Without a day summary nothing is ever removed: it would be lost.
    assert compact(workspace, DAY, keep, T0 + timedelta(days=30)).removed == 0
    roll_up(workspace, DAY, "Day.", LLM, keep_hours=keep, now=T0 + timedelta(hours=3))
    write_hour(workspace, _hour(2), "hour 2, caught up after the roll-up", LLM)

    early = compact(workspace, DAY, keep, T0 + timedelta(days=1))
    late = compact(workspace, DAY, keep, T0 + timedelta(days=3))

    assert (early.removed, early.kept) == (0, 3)
    assert (late.removed, late.kept) == (2, 1)
    assert [n.body for n in read_hours(path)] == ["hour 2, caught up after the roll-up"]
    assert compact(workspace, date(2026, 1, 1), keep, T0).removed == 0
    assert not note_path(workspace, date(2026, 1, 1)).exists()
    with pytest.raises(ValueError, match="negative"):
        CompactionConfig(keep_hourly_for=timedelta(hours=-1))


def test_an_existing_notes_mode_is_kept(workspace: Path) -> None:
    path = note_path(workspace, DAY)
    path.write_text("# Shared with the household\n")
    path.chmod(0o644)

    write_hour(workspace, _hour(0), "hour 0", LLM)
    roll_up(workspace, DAY, "Day.", LLM, keep_hours=timedelta(0), now=T0 + timedelta(days=1))

    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_crash_before_the_rename_leaves_the_old_note_whole(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_hour(workspace, _hour(0), "hour 0", LLM)
    path = note_path(workspace, DAY)
    before = path.read_bytes()

    def crash(self: Path, target: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_hour(workspace, _hour(1), "hour 1", LLM)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [LOCK_NAME, path.name]
    assert [n.body for n in read_hours(path)] == ["hour 0"]


def test_a_writer_that_cannot_get_the_lock_gives_up_and_changes_nothing(workspace: Path) -> None:
    write_hour(workspace, _hour(0), "hour 0", LLM)
    path = note_path(workspace, DAY)
    before = path.read_bytes()

    with filelock.FileLock(path.parent / LOCK_NAME), pytest.raises(filelock.Timeout):
        write_hour(workspace, _hour(1), "hour 1", LLM, lock_timeout=0.05)

    assert path.read_bytes() == before


def test_memory_md_is_never_touched_and_a_missing_workspace_is_not_made(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    memory_md = workspace / "MEMORY.md"
    memory_md.write_text("# MEMORY.md\n")
    os.utime(memory_md, (1_000_000, 1_000_000))

    write_hour(workspace, _hour(0), "hour 0", LLM)
    roll_up(workspace, DAY, "Day.", LLM, keep_hours=timedelta(0), now=T0 + timedelta(days=1))

    assert memory_md.read_text() == "# MEMORY.md\n"
    assert memory_md.stat().st_mtime == 1_000_000
    assert sorted(p.name for p in workspace.iterdir()) == ["MEMORY.md", "memory"]
    assert stat.S_IMODE((workspace / "memory").stat().st_mode) == 0o700
    with pytest.raises(FileNotFoundError):
        write_hour(tmp_path / "gone", previous_hour(T0, UTC), "x", LLM)
    assert not (tmp_path / "gone").exists()
