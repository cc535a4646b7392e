from __future__ import annotations

from pathlib import Path

from daemon.sample.writer import OpenClawWriter
from stores.openclaw.home import ExtraPath
from stores.openclaw.notes import chunk_markdown, list_notes, read_note
from stores.openclaw.problems import ProblemKind

NOTE = """\
# MEMORY.md

- Dana prefers short replies.
- Dana's sister Mira lives in Lisbon.

## People

### Family

Mira: Rua das Flores 12, Lisbon.
Her birthday is on 3 May.

```markdown
# not a heading, inside a fence

still inside
```

## Work
"""


def test_notes_of_a_workspace(root: Path) -> None:
    ws = OpenClawWriter(root).add_agent("main", "Juniper", "Dana", "- a fact\n")
    for name in ("2026-03-08.md", "2026-03-09-garden.md", "archive/2025-12-31.md", ".tmp.md"):
        (ws / "memory" / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / "memory" / name).write_text("# note\n\ntext\n")
    (ws / "memory" / ".drafts").mkdir()
    (ws / "memory" / ".drafts" / "x.md").write_text("draft\n")
    (ws / "memory" / "photo.jpg").write_bytes(b"\xff\xd8")
    notes, problems = list_notes(ws)
    assert [n.relative_to(ws).as_posix() for n in notes] == [
        "MEMORY.md",
        "USER.md",
        "memory/2026-03-08.md",
        "memory/2026-03-09-garden.md",
        "memory/archive/2025-12-31.md",
    ]
    assert problems == []


def test_only_the_files_openclaw_indexes_are_notes(tmp_path: Path) -> None:
    """Exact-case MEMORY.md, no symlinks, and the configured extra paths (a file, a folder
    with a pattern), each once however it is reached."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "memory").mkdir(parents=True)
    outside.mkdir()
    (ws / "memory.md").write_text("lower-case: OpenClaw skips it\n")
    (outside / "secret.md").write_text("# not in the workspace\n")
    (ws / "memory" / "linked.md").symlink_to(outside / "secret.md")
    (ws / "memory" / "linked-dir").symlink_to(outside)
    (ws / "docs" / "deep").mkdir(parents=True)
    (ws / "docs" / "deep" / "a.md").write_text("a\n")
    (ws / "docs" / "b.txt").write_text("b\n")
    (ws / "extra.md").write_text("extra\n")
    extras = [ExtraPath(ws / "docs", "**/*.md"), ExtraPath(ws / "extra.md"), ExtraPath(ws / "docs")]
    notes, problems = list_notes(ws, extras)
    assert [n.relative_to(ws).as_posix() for n in notes] == ["docs/deep/a.md", "extra.md"]
    assert problems == []


def test_a_binary_note_is_reported_and_not_indexed(tmp_path: Path) -> None:
    path = tmp_path / "MEMORY.md"
    path.write_bytes(bytes(range(256)) * 64)
    note, problems = read_note(path, tmp_path)
    assert note is None
    assert [p.kind for p in problems] == [ProblemKind.NOT_TEXT]
    path.write_bytes(b"# Notes\n\x00\x00 a NUL in the middle\n")
    note, problems = read_note(path, tmp_path)
    assert (note, [p.kind for p in problems]) == (None, [ProblemKind.NOT_TEXT])


def test_a_workspace_without_notes(tmp_path: Path) -> None:
    assert list_notes(tmp_path / "missing") == ([], [])


def test_chunks_follow_headings_with_their_lines(tmp_path: Path) -> None:
    chunks = chunk_markdown(NOTE, tmp_path / "MEMORY.md")
    assert [(c.start_line, c.end_line, c.headings) for c in chunks] == [
        (1, 4, ("MEMORY.md",)),
        (8, 17, ("MEMORY.md", "People", "Family")),
    ]
    assert chunks[0].text == (
        "# MEMORY.md\n\n- Dana prefers short replies.\n- Dana's sister Mira lives in Lisbon."
    )
    assert chunks[1].text.startswith("### Family\n\nMira: Rua das Flores 12, Lisbon.\n")
    assert chunks[1].text.endswith("still inside\n```")
    lines = NOTE.splitlines()
    for chunk in chunks:  # a chunk's lines are where its text is
        assert lines[chunk.start_line - 1] in chunk.text
        assert lines[chunk.end_line - 1] in chunk.text
    assert chunks[1].where == f"{tmp_path / 'MEMORY.md'}:8-17"


def test_a_long_section_is_cut_at_paragraphs(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {n}: " + " ".join(["word"] * 40) for n in range(12)]
    text = "# Daily notes\n\n## Garden\n\n" + "\n\n".join(paragraphs) + "\n"
    chunks = chunk_markdown(text, tmp_path / "n.md", max_chars=500)
    assert len(chunks) > 3
    assert all(len(c.text) <= 500 for c in chunks)
    assert all(c.headings == ("Daily notes", "Garden") for c in chunks)
    body = [c.text.removeprefix("## Garden\n\n") for c in chunks]
    assert "\n\n".join(body) == "\n\n".join(paragraphs)  # nothing lost, nothing cut
    assert all(c.start_line % 2 == 1 and c.end_line % 2 == 1 for c in chunks)  # paragraph lines


def test_a_paragraph_or_line_longer_than_a_chunk_is_cut(tmp_path: Path) -> None:
    text = "# Log\n\n" + "\n".join(f"line {n} " + "x" * 30 for n in range(20)) + "\n\n" + "y" * 250
    chunks = chunk_markdown(text, tmp_path / "n.md", max_chars=100)
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text for c in chunks if c.text.startswith("y")) == "y" * 250
    assert {(c.start_line, c.end_line) for c in chunks if c.text.startswith("y")} == {(24, 24)}
    joined = "\n".join(c.text for c in chunks if "line" in c.text)
    assert all(f"line {n} " in joined for n in range(20))
    assert all(c.start_line <= c.end_line for c in chunks)


def test_hashes_change_only_where_the_note_changed(tmp_path: Path) -> None:
    before = chunk_markdown(NOTE, tmp_path / "MEMORY.md")
    after = chunk_markdown(NOTE.replace("3 May", "4 May"), tmp_path / "MEMORY.md")
    assert before[0].content_hash == after[0].content_hash
    assert before[1].content_hash != after[1].content_hash
    moved = chunk_markdown(NOTE.replace("### Family", "### Relatives"), tmp_path / "MEMORY.md")
    assert moved[1].content_hash != before[1].content_hash


def test_read_note_reports_bad_bytes_and_still_indexes(tmp_path: Path) -> None:
    ws = tmp_path
    (ws / "memory").mkdir()
    path = ws / "memory" / "2026-03-08.md"
    path.write_bytes(b"# Notes\n\nCaf\xe9 on the corner closed.\n")
    note, problems = read_note(path, ws)
    assert note is not None
    assert note.name == "memory/2026-03-08.md"
    assert [c.text for c in note.chunks] == ["# Notes\n\nCaf\ufffd on the corner closed."]
    assert [(p.kind, p.where) for p in problems] == [(ProblemKind.INVALID_UTF8, f"{path}:1")]


def test_read_note_of_a_vanished_file(tmp_path: Path) -> None:
    note, problems = read_note(tmp_path / "MEMORY.md", tmp_path)
    assert note is None
    assert [p.kind for p in problems] == [ProblemKind.UNREADABLE]
