"""Sessions that left ``transcript_events``: deleted and cold-stored ones, still memory.

OpenClaw 2026.9 keeps a deleted (or reset-away) session in ``session_transcript_archives``: the
whole transcript as JSONL, plain or zstd, published as a ``.jsonl.deleted.<time>.<gen>.zst``
file beside it as well. With cold storage switched on it moves old sessions' rows out to
``session_transcript_cold_archives``: zstd JSONL records (``{"kind": "event", "row": {...}}``)
in ``sessions/cold/<name>`` or in the row itself. Both are read here into plain entries.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

#: An archive larger than this once decompressed is not read (and is reported).
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024

_ARCHIVES = (
    "SELECT session_id, session_key, archive_name, archive_sha256, encoding, archive_blob"
    " FROM session_transcript_archives ORDER BY created_at, archive_name"
)
_COLD = (
    "SELECT session_id, archive_name, archive_sha256, last_seq, storage, archive_blob"
    " FROM session_transcript_cold_archives ORDER BY archived_at, session_id"
)


class ArchiveError(Exception):
    """An archive that cannot be read: damaged, too large, of an unknown shape."""


@dataclass(frozen=True)
class Archive:
    """One archived session: which, where its bytes are, and its entries in order."""

    session_id: str
    session_key: str | None
    name: str
    sha256: str
    #: For a cold archive, the last ``seq`` it holds; deleted archives carry no seqs.
    last_seq: int | None
    blob: bytes | None = None
    #: A deleted archive: ``identity`` or ``zstd``. A cold one is always zstd records.
    encoding: str | None = None
    #: A cold archive kept as a file (``sessions/cold/<name>``) instead of in its row.
    path: Path | None = None

    def events(self) -> Iterator[tuple[int | None, Any]]:
        """``(seq, entry)``; an entry that is not JSON comes back as the ``ArchiveError``."""
        if self.last_seq is None:
            yield from _jsonl_events(self.blob, self.encoding or "identity")
        else:
            yield from _cold_events(self.blob, self.path)


def deleted_archives(conn: sqlite3.Connection) -> Iterator[Archive]:
    for session_id, key, name, sha, encoding, blob in conn.execute(_ARCHIVES):
        yield Archive(session_id, key, name, sha, None, blob, encoding)


def cold_archives(conn: sqlite3.Connection, sessions_dir: Path) -> Iterator[Archive]:
    for session_id, name, sha, last_seq, storage, blob in conn.execute(_COLD):
        where = sessions_dir / "cold" / name if storage == "file" else None
        yield Archive(session_id, None, name, sha, last_seq, blob, path=where)


def _jsonl_events(blob: Any, encoding: str) -> Iterator[tuple[int | None, Any]]:
    data = _bytes(blob, compressed=encoding == "zstd")
    for line in data.splitlines():
        if line.strip():
            yield None, _json(line)


def _cold_events(blob: Any, path: Path | None) -> Iterator[tuple[int | None, Any]]:
    if path is not None:
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ArchiveError(f"{path}: {exc}") from None
    for line in _bytes(blob, compressed=True).splitlines():
        record = _json(line) if line.strip() else None
        if not isinstance(record, dict) or record.get("kind") != "event":
            continue  # the header and the restoration records
        row = record.get("row")
        if not isinstance(row, dict) or not isinstance(row.get("seq"), int):
            yield None, ArchiveError("an event record without its row")
            continue
        text = row.get("event_json")
        yield (
            row["seq"],
            _json(text.encode())
            if isinstance(text, str)
            else ArchiveError(f"event {row['seq']} without its JSON"),
        )


def _bytes(blob: Any, *, compressed: bool) -> bytes:
    if not isinstance(blob, bytes):
        raise ArchiveError("the archive holds no bytes")
    if not compressed:
        return blob
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)) as stream:
            data = stream.read(MAX_ARCHIVE_BYTES + 1)
    except zstandard.ZstdError as exc:
        raise ArchiveError(f"not zstd: {exc}") from None
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(f"over {MAX_ARCHIVE_BYTES} bytes once decompressed")
    return data


def _json(line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return ArchiveError(f"not a JSON line: {str(exc)[:200]}")
