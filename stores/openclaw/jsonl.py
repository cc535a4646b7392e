"""Transcripts in OpenClaw's legacy layout: ``agents/<id>/sessions/*.jsonl``, read incrementally.

One JSON object a line. The live file is appended while we read, so a last line without its
newline is left for the next run; archives (``<file>.{reset,deleted,bak}.<time>``, and since
2026.9 ``...<time>.<generation>.zst``, compressed, beside the database's own copy) are final and
read to their end. Trajectories, compaction checkpoints and quarantined copies are not
transcripts and are not listed. A ``JsonlCheckpoint`` records where a read stopped (byte offset,
line number, last entry id) and which file it was (device, inode, a hash of the first bytes): a
file replaced or truncated under the same path is read again from the start, and the entries up
to the last one already read are dropped if the new file still holds them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import zstandard

from stores.openclaw.entries import EntryInterpreter, Names
from stores.openclaw.problems import Problem, ProblemKind, Skipped, SkipReason
from stores.openclaw.turns import JsonlSource, Turn, TurnCollector

INDEX_FILE = "sessions.json"
HEAD_BYTES = 1024
#: Longer lines are skipped unparsed: a transcript line is a message, not a data dump.
MAX_LINE_BYTES = 32 * 1024 * 1024

#: A compressed archive larger than this once decompressed is not read (and is reported).
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024

_SESSION_FILE = re.compile(
    r"^(?P<id>.+?)\.jsonl(?:\.(?P<state>reset|deleted|bak)\.(?P<stamp>"
    r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{3})?Z)(?:\.[0-9a-f]{32})?(?P<zst>\.zst)?)?$"
)
_NOT_TRANSCRIPT = re.compile(
    r"(\.trajectory\.jsonl|\.checkpoint\.[0-9a-f]{8}-[0-9a-f-]{27}\.jsonl|\.corrupt-[^/]*\.jsonl)$",
    re.IGNORECASE,
)
_ARCHIVE_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d+)?Z$")


class FileState(StrEnum):
    LIVE = "live"
    RESET = "reset"
    DELETED = "deleted"
    BACKUP = "bak"


@dataclass(frozen=True)
class SessionFile:
    path: Path
    session_id: str
    session_key: str | None
    state: FileState = FileState.LIVE
    archived_at: datetime | None = None
    compressed: bool = False

    @property
    def final(self) -> bool:
        """An archive is never appended again: its last line is complete even without newline."""
        return self.state is not FileState.LIVE


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int
    head_size: int
    head_sha256: str


@dataclass(frozen=True)
class JsonlCheckpoint:
    identity: FileIdentity
    offset: int = 0
    line_no: int = 0
    last_entry_id: str | None = None
    #: The turn being skipped when the read stopped (``EntryInterpreter.skipping``).
    skipping: SkipReason | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": vars(self.identity).copy(),
            "offset": self.offset,
            "line_no": self.line_no,
            "last_entry_id": self.last_entry_id,
            "skipping": self.skipping,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JsonlCheckpoint:
        return cls(
            FileIdentity(**data["identity"]),
            data["offset"],
            data["line_no"],
            data.get("last_entry_id"),
            skipping_of(data),
        )


def skipping_of(data: Mapping[str, Any]) -> SkipReason | None:
    """A checkpoint's skipped turn; older checkpoints knew only the memory flush."""
    value = data.get("skipping")
    if isinstance(value, str) and value in SkipReason._value2member_map_:
        return SkipReason(value)
    return SkipReason.MEMORY_FLUSH if data.get("in_flush") else None


@dataclass(frozen=True)
class JsonlRead:
    turns: tuple[Turn, ...]
    #: Where the next read starts; unchanged if the file could not be read.
    checkpoint: JsonlCheckpoint | None
    problems: tuple[Problem, ...] = ()
    skipped: Skipped = field(default_factory=Skipped)
    #: Bytes after the checkpoint: a line still being written, left for the next read.
    pending_bytes: int = 0


def list_session_files(sessions_dir: Path) -> tuple[list[SessionFile], list[Problem]]:
    """Archives first (oldest first), then live files; keys from ``sessions.json`` where known."""
    problems: list[Problem] = []
    try:
        names = sorted(p.name for p in sessions_dir.iterdir() if p.is_file())
    except FileNotFoundError:
        return [], problems
    except OSError as exc:
        return [], [Problem(str(sessions_dir), ProblemKind.UNREADABLE, str(exc))]
    matches = [
        m
        for m in map(_SESSION_FILE.match, names)
        if m is not None and not _NOT_TRANSCRIPT.search(m[0])
    ]
    live = any(m.group("state") is None for m in matches)
    # Current releases keep no sessions.json (sessions live in the database): only a home
    # with live JSONL transcripts has one to miss.
    keys = _session_keys(sessions_dir / INDEX_FILE, problems if live else []) if matches else {}
    files = []
    for match in matches:
        state = FileState(match.group("state") or "live")
        key = keys.get(match.group(0)) or keys.get(match.group("id"))
        files.append(
            SessionFile(
                sessions_dir / match.group(0),
                match.group("id"),
                key if state is FileState.LIVE else None,
                state,
                _archive_time(match.group("stamp")),
                compressed=match.group("zst") is not None,
            )
        )
    latest = datetime.max.replace(tzinfo=UTC)
    files.sort(key=lambda f: (not f.final, f.archived_at or latest, f.path.name))
    return files, problems


def checkpoint_for(
    path: Path, checkpoints: Mapping[Path, JsonlCheckpoint]
) -> JsonlCheckpoint | None:
    """The checkpoint of ``path``, or of the file it was before a rename (a reset's archive)."""
    if path in checkpoints:
        return checkpoints[path]
    try:
        info = path.stat()
    except OSError:
        return None
    for checkpoint in checkpoints.values():
        if (checkpoint.identity.device, checkpoint.identity.inode) == (info.st_dev, info.st_ino):
            return checkpoint
    return None


def read_jsonl(
    session: SessionFile,
    checkpoint: JsonlCheckpoint | None,
    *,
    agent_id: str,
    names: Names,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> JsonlRead:
    """The turns added to ``session`` since ``checkpoint`` (all of them if None)."""
    reader = _JsonlReader(session, agent_id, names, max_line_bytes)
    try:
        with session.path.open("rb") as handle:
            info = _Stat.of(os.fstat(handle.fileno()))
            if not session.compressed:
                return reader.read(handle, info, checkpoint)
            data = _decompressed(handle)
    except OSError as exc:
        problem = Problem(str(session.path), ProblemKind.UNREADABLE, str(exc))
        return JsonlRead((), checkpoint, (problem,))
    except (zstandard.ZstdError, ArchiveTooLarge) as exc:
        problem = Problem(
            str(session.path), ProblemKind.UNREADABLE, f"not a readable archive: {exc}"
        )
        return JsonlRead((), checkpoint, (problem,))
    plain = _Stat(info.st_dev, info.st_ino, len(data))
    return reader.read(io.BytesIO(data), plain, checkpoint)


class ArchiveTooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Stat:
    """What the reader needs of a file: which it is, and how long its text is."""

    st_dev: int
    st_ino: int
    st_size: int

    @classmethod
    def of(cls, info: os.stat_result) -> _Stat:
        return cls(info.st_dev, info.st_ino, info.st_size)


def _decompressed(handle: IO[bytes]) -> bytes:
    """A zstd archive's text, up to ``MAX_ARCHIVE_BYTES``."""
    with zstandard.ZstdDecompressor().stream_reader(handle) as stream:
        data = stream.read(MAX_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveTooLarge(f"over {MAX_ARCHIVE_BYTES} bytes once decompressed")
    return data


class _JsonlReader:
    def __init__(self, session: SessionFile, agent_id: str, names: Names, limit: int) -> None:
        self.session = session
        #: The file's name, unless its header says otherwise (a long id is hashed in the name).
        self.session_id = session.session_id
        self.names = names
        self.limit = limit
        self.found = TurnCollector(agent_id)

    def read(self, handle: IO[bytes], info: _Stat, checkpoint: JsonlCheckpoint | None) -> JsonlRead:
        start, already_read = self._resume(handle, info, checkpoint)
        interpreter = EntryInterpreter(self.names, skipping=start.skipping)
        offset, line_no, last_id = start.offset, start.line_no, start.last_entry_id
        found = self.found
        kept_problems = len(found.problems)
        handle.seek(offset)
        while True:
            raw, size, complete = _next_line(handle, self.limit)
            if size == 0 or not (complete or self.session.final):
                break  # the end, or a line still being written: the next run reads it whole
            line_no += 1
            source = JsonlSource(self.session.path, offset, line_no)
            entry_id = self._line(raw, interpreter, source, last_id)
            offset += size
            if entry_id is not None and entry_id == already_read:
                # The replaced file still holds what was read before: only what follows is new.
                found.turns.clear()
                found.skipped = Skipped({SkipReason.DUPLICATE: line_no})
                del found.problems[kept_problems:]
                already_read = None
            if entry_id is not None:
                last_id = entry_id
        end = handle.tell()
        after = JsonlCheckpoint(
            _identity(handle, info), offset, line_no, last_id, interpreter.skipping
        )
        turns, problems = tuple(found.turns), tuple(found.problems)
        return JsonlRead(turns, after, problems, found.skipped, end - offset)

    def _resume(
        self, handle: IO[bytes], info: _Stat, checkpoint: JsonlCheckpoint | None
    ) -> tuple[JsonlCheckpoint, str | None]:
        """Where to start, and the last entry id read from a file this one replaced."""
        fresh = JsonlCheckpoint(_identity(handle, info))
        if checkpoint is None:
            return fresh, None
        known = checkpoint.identity
        if (known.device, known.inode) != (info.st_dev, info.st_ino):
            why = "a different file now has this path"
        elif info.st_size < checkpoint.offset:
            why = f"truncated from {checkpoint.offset} to {info.st_size} bytes"
        elif _head_hash(handle, known.head_size) != known.head_sha256:
            why = "its first bytes changed"
        else:
            return checkpoint, None
        detail = f"{why}; read again from the start"
        self.found.problems.append(
            Problem(str(self.session.path), ProblemKind.FILE_REPLACED, detail)
        )
        return fresh, checkpoint.last_entry_id

    def _line(
        self,
        raw: bytes | None,
        interpreter: EntryInterpreter,
        source: JsonlSource,
        last_id: str | None,
    ) -> str | None:
        """One line into a turn or a skip; returns the entry's id if it had one."""
        if raw is None:
            self.found.skip(source, SkipReason.OVERSIZED, ProblemKind.OVERSIZED_LINE, "too long")
            return None
        if not raw.strip():
            return None
        try:
            entry = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self.found.skip(source, SkipReason.MALFORMED, ProblemKind.INVALID_UTF8, str(exc))
            return None
        except (ValueError, RecursionError) as exc:
            detail = f"not JSON: {str(exc)[:200]}"
            self.found.skip(source, SkipReason.MALFORMED, ProblemKind.MALFORMED_LINE, detail)
            return None
        if not isinstance(entry, dict):
            detail = "not a JSON object"
            self.found.skip(source, SkipReason.MALFORMED, ProblemKind.MALFORMED_LINE, detail)
            return None
        entry_id = entry.get("id") if isinstance(entry.get("id"), str) else None
        if entry_id is not None and entry_id == last_id:
            # A writer that retried its line: the entry was read from the line before.
            self.found.skipped[SkipReason.DUPLICATE] += 1
        else:
            key = self.session.session_key
            if source.line == 1 and entry.get("type") == "session" and isinstance(entry_id, str):
                self.session_id = entry_id
            self.found.add(entry, interpreter, (key, self.session_id), source)
        return entry_id


def _next_line(handle: IO[bytes], limit: int) -> tuple[bytes | None, int, bool]:
    """The next line (None if longer than ``limit``), its size in bytes, whether it ended."""
    raw = handle.readline(limit + 1)
    if len(raw) <= limit or raw.endswith(b"\n"):
        return raw, len(raw), raw.endswith(b"\n")
    size = len(raw)
    while chunk := handle.readline(1 << 20):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            return None, size, True
    return None, size, False


def _identity(handle: IO[bytes], info: _Stat) -> FileIdentity:
    size = min(HEAD_BYTES, info.st_size)
    return FileIdentity(info.st_dev, info.st_ino, size, _head_hash(handle, size))


def _head_hash(handle: IO[bytes], size: int) -> str:
    handle.seek(0)
    return hashlib.sha256(handle.read(size)).hexdigest()


def _session_keys(index: Path, problems: list[Problem]) -> dict[str, str]:
    """sessionId and session file name -> session key, from ``sessions.json``."""
    try:
        data = json.loads(index.read_bytes())
    except FileNotFoundError:
        problems.append(Problem(str(index), ProblemKind.BAD_INDEX, "missing; session keys unknown"))
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        detail = f"unreadable ({str(exc)[:200]}); session keys unknown"
        problems.append(Problem(str(index), ProblemKind.BAD_INDEX, detail))
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(str(index), ProblemKind.BAD_INDEX, "not an object"))
        return {}
    keys: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        session_id = value.get("sessionId")
        if isinstance(session_id, str):
            keys.setdefault(session_id, key)
        session_file = value.get("sessionFile")
        if isinstance(session_file, str):
            # The path is the writer's machine's; only its name means something here.
            keys.setdefault(Path(session_file).name, key)
    return keys


def _archive_time(stamp: str | None) -> datetime | None:
    match = _ARCHIVE_STAMP.match(stamp or "")
    if match is None:
        return None
    day, hour, minute, second, fraction = match.groups()
    with contextlib.suppress(ValueError):
        text = f"{day}T{hour}:{minute}:{second}{fraction or ''}+00:00"
        return datetime.fromisoformat(text)
    return None
