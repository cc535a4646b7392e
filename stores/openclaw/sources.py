"""Which files of an OpenClaw home hold memory, and whether any of them changed.

The watcher and the scheduled ingest both ask "did OpenClaw write anything?". Reading a WAL
database touches its ``-shm`` and may create or remove an empty ``-wal`` even read-only, so a
file's presence or a change event is not an answer: a ``Signature`` of sizes and modification
times, in which a missing or empty WAL counts the same and ``-shm`` not at all, is.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stores.openclaw.home import DATABASE_FILE, OpenClawHome
from stores.openclaw.notes import OWN_NOTE, list_notes

#: Files under ``agents/`` that hold transcripts (and their index), by name.
TRANSCRIPT_FILE = re.compile(
    r"(\.jsonl(\.(reset|deleted|bak)\.[0-9TZ.:-]+(\.[0-9a-f]{32})?(\.zst)?)?"
    r"|sessions\.json|" + re.escape(DATABASE_FILE) + r"(-wal)?)$"
)
_NOT_TRANSCRIPT = re.compile(r"(\.trajectory\.jsonl|\.checkpoint\.[0-9a-f-]{36}\.jsonl)$")


@dataclass(frozen=True)
class Stamp:
    """A file as far as a change matters: absent and empty are the same."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        try:
            info = path.stat()
        except OSError:
            return cls(0, 0)
        return cls(info.st_size, info.st_mtime_ns) if info.st_size else cls(0, 0)


def is_transcript_file(path: str) -> bool:
    return bool(TRANSCRIPT_FILE.search(path)) and not _NOT_TRANSCRIPT.search(path)


def is_note_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".md") and not name.startswith(".") and not OWN_NOTE.match(name)


def signature(home: OpenClawHome) -> str:
    """A digest of every memory file's stamp: equal digests, nothing new to read."""
    digest = hashlib.sha256()
    for path in sorted(_memory_files(home)):
        stamp = Stamp.of(path)
        digest.update(f"{path}\0{stamp.size}\0{stamp.mtime_ns}\n".encode())
    return digest.hexdigest()


def _memory_files(home: OpenClawHome) -> Iterator[Path]:
    if home.config_path is not None:
        yield home.config_path
    for agent in home.agents:
        yield agent.database
        yield Path(f"{agent.database}-wal")
        with contextlib.suppress(OSError):
            yield from (p for p in agent.sessions_dir.iterdir() if is_transcript_file(p.name))
        yield from list_notes(agent.workspace, agent.extra_paths)[0]
