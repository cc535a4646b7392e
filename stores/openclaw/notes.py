"""A workspace's notes: ``MEMORY.md``, ``USER.md``, ``memory/**/*.md`` and the configured
extra paths, cut into chunks worth indexing.

The same files OpenClaw indexes for its own memory_search. A chunk is a run of whole paragraphs
under one heading, at most ``max_chars`` long (OpenClaw's own chunks are ~400 tokens, about
1,600 characters), and knows its lines and the path of headings above it, so that a search hit
can say "MEMORY.md:12-18, under People > Family". Each chunk has a hash of what it says, so an
indexer re-embeds only the chunks that changed when a note is edited.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stores.openclaw.home import ExtraPath
from stores.openclaw.problems import Problem, ProblemKind

MAX_CHARS = 1600
#: Notes the daemon writes itself (hourly summaries, daily sync, weekly synthesis): they go into
#: the memory store as records of their own, so reading them back would store them twice.
OWN_NOTE = re.compile(r"^\d{4}-\d{2}-\d{2}-(hourly|sync|weekly)\.md$")
#: The notes at a workspace's top, by their exact names (OpenClaw skips ``memory.md``).
ROOT_NOTES = ("MEMORY.md", "USER.md")
#: A note bigger than this is not a note; it is read up to here and reported.
MAX_NOTE_BYTES = 4 * 1024 * 1024

_NOT_TEXT = "not text (binary bytes in a .md file); not indexed"
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


@dataclass(frozen=True)
class NoteChunk:
    path: Path
    #: 1-based, inclusive.
    start_line: int
    end_line: int
    headings: tuple[str, ...]
    text: str
    #: sha256 of the heading path and the text: changes when either does.
    content_hash: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"


@dataclass(frozen=True)
class Note:
    path: Path
    #: Relative to the workspace: ``MEMORY.md``, ``memory/2026-03-08.md``.
    name: str
    file_hash: str
    chunks: tuple[NoteChunk, ...]


def list_notes(
    workspace: Path, extra_paths: Sequence[ExtraPath] = ()
) -> tuple[list[Path], list[Problem]]:
    """OpenClaw's own memory set: ``MEMORY.md`` (that exact name), ``USER.md``, every ``*.md``
    under ``memory/`` and the configured extra paths; symlinks and hidden folders left out."""
    problems: list[Problem] = []
    found: list[Path] = []
    names = _names_in(workspace)
    for name in ROOT_NOTES:
        path = workspace / name
        # Exact case, as OpenClaw: on a case-insensitive disk memory.md would pass is_file().
        if name in names and _regular(path):
            found.append(path)
    found.extend(_markdown_under(workspace / "memory", None, problems))
    for extra in extra_paths:
        if extra.path.is_symlink():
            continue
        if extra.path.is_dir():
            found.extend(_markdown_under(extra.path, extra.pattern, problems))
        elif extra.path.suffix == ".md" and _regular(extra.path):
            found.append(extra.path)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(_real(path), path)
    return [p for p in unique.values() if not OWN_NOTE.match(p.name)], problems


def _markdown_under(root: Path, pattern: str | None, problems: list[Problem]) -> list[Path]:
    if root.is_symlink() or not root.is_dir():
        return []
    found = []
    try:
        for path in sorted(root.glob(pattern or "**/*.md")):
            parts = path.relative_to(root).parts
            hidden = any(part.startswith(".") for part in parts)
            linked = any((root / Path(*parts[: i + 1])).is_symlink() for i in range(len(parts)))
            if not hidden and not linked and path.suffix == ".md" and path.is_file():
                found.append(path)
    except (OSError, ValueError) as exc:  # ValueError: a pattern glob refuses
        problems.append(Problem(str(root), ProblemKind.UNREADABLE, str(exc)))
    return found


def _names_in(folder: Path) -> set[str]:
    try:
        return {entry.name for entry in folder.iterdir()}
    except OSError:
        return set()


def _regular(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def read_note(
    path: Path, workspace: Path, *, max_chars: int = MAX_CHARS
) -> tuple[Note | None, list[Problem]]:
    problems: list[Problem] = []
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        return None, [Problem(str(path), ProblemKind.UNREADABLE, str(exc))]
    if len(data) > MAX_NOTE_BYTES:
        detail = f"larger than {MAX_NOTE_BYTES} bytes; only the start is indexed"
        problems.append(Problem(str(path), ProblemKind.OVERSIZED_LINE, detail))
        data = data[:MAX_NOTE_BYTES]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        if text.count("\ufffd") > max(8, len(text) // 100):
            problems.append(Problem(str(path), ProblemKind.NOT_TEXT, _NOT_TEXT))
            return None, problems
        problems.append(Problem(f"{path}:1", ProblemKind.INVALID_UTF8, str(exc)))
    if "\x00" in text:
        problems.append(Problem(str(path), ProblemKind.NOT_TEXT, _NOT_TEXT))
        return None, problems
    chunks = chunk_markdown(text, path, max_chars=max_chars)
    name = path.relative_to(workspace).as_posix() if path.is_relative_to(workspace) else str(path)
    return Note(path, name, hashlib.sha256(data).hexdigest(), tuple(chunks)), problems


@dataclass
class _Block:
    """A paragraph, a fenced code block or a heading: lines that stay together if they can."""

    start: int
    lines: list[str]
    heading: tuple[int, str] | None = None

    @property
    def size(self) -> int:
        """Its length as text: its lines joined by newlines."""
        return sum(len(line) for line in self.lines) + len(self.lines) - 1


def chunk_markdown(text: str, path: Path, *, max_chars: int = MAX_CHARS) -> list[NoteChunk]:
    """Chunks by heading, then by size at paragraph boundaries; a chunk holds some body text."""
    chunks: list[NoteChunk] = []
    stack: list[tuple[int, str]] = []
    pending: list[_Block] = []

    def flush() -> None:
        if any(b.heading is None for b in pending):
            chunks.extend(_pack(pending, tuple(t for _, t in stack), path, max_chars))
        pending.clear()

    for block in _blocks(text.splitlines()):
        if block.heading is not None:
            flush()
            level, title = block.heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        pending.append(block)
    flush()
    return chunks


def _blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        marker = _FENCE.match(line)
        if fence is not None:
            assert current is not None
            current.lines.append(line)
            if marker and marker.group(1) == fence:
                fence = None
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(_Block(number, [line], (len(heading.group(1)), heading.group(2))))
            current = None
        elif not line.strip():
            current = None
        else:
            if current is None:
                current = _Block(number, [])
                blocks.append(current)
            current.lines.append(line)
            if marker:
                fence = marker.group(1)
    return blocks


def _pack(
    blocks: list[_Block], headings: tuple[str, ...], path: Path, max_chars: int
) -> list[NoteChunk]:
    """Whole blocks into chunks of at most ``max_chars``; an oversized block is cut by lines."""
    pieces = [piece for block in blocks for piece in _split(block, max_chars)]
    chunks: list[NoteChunk] = []
    group: list[_Block] = []
    size = 0
    for piece in pieces:
        if group and size + 2 + piece.size > max_chars:  # blocks are joined by a blank line
            chunks.append(_chunk(group, headings, path))
            group, size = [], 0
        size += (2 if group else 0) + piece.size
        group.append(piece)
    if group:
        chunks.append(_chunk(group, headings, path))
    return chunks


def _split(block: _Block, max_chars: int) -> list[_Block]:
    if block.size <= max_chars:
        return [block]
    pieces: list[_Block] = []
    for offset, line in enumerate(block.lines):
        number = block.start + offset
        # A single line longer than a chunk is cut where it must be; its pieces share the line.
        parts = [line[i : i + max_chars] for i in range(0, len(line), max_chars)] or [""]
        for part in parts:
            if pieces and pieces[-1].size + 1 + len(part) <= max_chars:
                pieces[-1].lines.append(part)
            else:
                pieces.append(_Block(number, [part]))
    return pieces


def _chunk(group: list[_Block], headings: tuple[str, ...], path: Path) -> NoteChunk:
    text = "\n\n".join("\n".join(b.lines) for b in group).strip()
    last = group[-1]
    end = last.start + len(last.lines) - 1
    digest = hashlib.sha256("\x1f".join((*headings, text)).encode()).hexdigest()
    return NoteChunk(path, group[0].start, end, headings, text, digest)
