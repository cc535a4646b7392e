"""Find phrases in what OpenClaw wrote: files, JSONL (plain or .zst), and SQLite rows.

Stdlib only, plus zstd decompression from the ``zstandard`` module when it is importable
(e.g. the project's ``.venv/bin/python``) or else the ``zstd`` command-line tool (Debian
package ``zstd``). Nothing is written.

Every "document" is a piece of text with a location string:

* a regular file (decompressed if it ends in ``.zst``), location ``path`` or, for JSONL
  files, ``path#L<line>``;
* a SQLite row: for ``transcript_events`` ``db:transcript_events[session_id,seq]`` (the
  ``event_json`` column, or ``event_zstd`` decompressed); for the archive tables the blob
  decompressed (``db:session_transcript_archives[archive_name]``); for every other table
  each TEXT/BLOB cell (``db:table[rowid].column``).

Usage as a tool::

    python3 verify.py FIXTURE_STATE_DIR PHRASE...
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

try:  # optional
    import zstandard as _zstd  # type: ignore
except Exception:  # pragma: no cover - depends on the interpreter
    _zstd = None


def zstd_decompress(data: bytes) -> bytes:
    if _zstd is not None:
        return _zstd.ZstdDecompressor().decompressobj().decompress(data)
    exe = shutil.which("zstd")
    if not exe:
        raise RuntimeError("need the zstandard module or the zstd CLI to read compressed rows")
    return subprocess.run([exe, "-dc"], input=data, capture_output=True, check=True).stdout


def zstd_backend() -> str:
    return "zstandard module" if _zstd is not None else f"zstd CLI ({shutil.which('zstd')})"


@dataclass(frozen=True)
class Doc:
    location: str
    text: str
    #: "transcript" (a transcript event/line, live), "archive" (reset/deleted/imported
    #: transcripts), "trajectory" (run traces, not transcripts), "workspace" (a Markdown
    #: note), "config", "sqlite-other" (any other table, e.g. trajectory_runtime_events,
    #: FTS indexes), "file"
    kind: str
    #: The parsed JSON object for transcript lines/rows (None otherwise).
    obj: dict | None = None


def _decode(b: bytes | str | None) -> str:
    if b is None:
        return ""
    if isinstance(b, str):
        return b
    if b[:4] == ZSTD_MAGIC:
        try:
            b = zstd_decompress(b)
        except Exception:
            return ""
    return b.decode("utf-8", "replace")


def _json_or_none(text: str) -> dict | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _is_sqlite(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _transcriptish(name: str) -> bool:
    return ".jsonl" in name and ".trajectory" not in name and ".checkpoint." not in name


def _file_kind(rel: str, name: str) -> str:
    if ".trajectory" in name:
        return "trajectory"  # run traces (<sid>.trajectory.jsonl), not transcripts
    if name.endswith(".md"):
        return "workspace"
    if name.startswith("openclaw.json"):
        return "config"
    if _transcriptish(name) or ".imported-" in name:
        if (
            any(t in name for t in (".reset.", ".deleted.", ".bak.", ".imported-"))
            or "session-sqlite-import-archive" in rel
        ):
            return "archive"
        return "transcript"
    return "file"


def iter_docs(root: Path, *, immutable: bool = False) -> Iterator[Doc]:
    """Every document under root. ``immutable=True`` opens databases with SQLite's
    ``immutable=1`` (no -wal/-shm files are created: use it for a finished fixture, never
    while OpenClaw is writing, since it ignores the WAL)."""
    root = Path(root)
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        rel = str(p.relative_to(root))
        if p.name.endswith(("-wal", "-shm")):
            continue
        if _is_sqlite(p):
            yield from _sqlite_docs(p, rel, immutable)
            continue
        try:
            raw = p.read_bytes()
        except OSError:
            continue
        if p.name.endswith(".zst") or raw[:4] == ZSTD_MAGIC:
            try:
                raw = zstd_decompress(raw)
            except Exception as exc:  # a damaged archive is reported, not fatal
                print(f"# cannot decompress {rel}: {exc}", file=sys.stderr)
                continue
        text = raw.decode("utf-8", "replace")
        kind = _file_kind(rel, p.name)
        if kind in ("transcript", "archive", "trajectory") or p.name.endswith(".jsonl"):
            for i, line in enumerate(text.splitlines(), 1):
                obj = _json_or_none(line)
                yield Doc(f"{rel}#L{i}", line, kind, obj if isinstance(obj, dict) else None)
        else:
            yield Doc(rel, text, kind)


def _sqlite_docs(db: Path, rel: str, immutable: bool = False) -> Iterator[Doc]:
    uri = f"file:{db}?mode=ro" + ("&immutable=1" if immutable else "")
    con = sqlite3.connect(uri, uri=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for t in tables:
            if t == "transcript_events":
                for sid, seq, ej, ez in con.execute(
                    "SELECT session_id, seq, event_json, event_zstd FROM transcript_events"
                    " ORDER BY session_id, seq"
                ):
                    text = ej if ej is not None else _decode(ez)
                    obj = _json_or_none(text)
                    where = f"{rel}:transcript_events[{sid},{seq}]" + (
                        " (zstd)" if ej is None else ""
                    )
                    yield Doc(where, text, "transcript", obj)
                continue
            if t in ("session_transcript_archives", "session_transcript_cold_archives"):
                cols = [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]
                if "archive_blob" in cols:
                    for name, blob in con.execute(f'SELECT archive_name, archive_blob FROM "{t}"'):
                        text = _decode(blob)
                        for i, line in enumerate(text.splitlines(), 1):
                            obj = _json_or_none(line)
                            yield Doc(
                                f"{rel}:{t}[{name}]#L{i}",
                                line,
                                "archive",
                                obj if isinstance(obj, dict) else None,
                            )
                continue
            cols = [(r[1], (r[2] or "").upper()) for r in con.execute(f'PRAGMA table_info("{t}")')]
            try:
                rows = con.execute(f'SELECT rowid, * FROM "{t}"')
            except sqlite3.DatabaseError:
                try:
                    rows = con.execute(f'SELECT NULL, * FROM "{t}"')
                except sqlite3.DatabaseError:
                    continue
            for row in rows:
                rid = row[0]
                for (cname, _ctype), val in zip(cols, row[1:], strict=False):
                    if isinstance(val, (str, bytes)) and val:
                        text = _decode(val)
                        if text:
                            yield Doc(f"{rel}:{t}[{rid}].{cname}", text, "sqlite-other")
    finally:
        con.close()


KIND_ORDER = ["transcript", "archive", "workspace", "config", "trajectory", "sqlite-other", "file"]


def find(root: Path, phrases: list[str], *, immutable: bool = False) -> dict[str, list[Doc]]:
    """phrase -> documents holding it, transcripts first."""
    hits: dict[str, list[Doc]] = {p: [] for p in phrases}
    for doc in iter_docs(root, immutable=immutable):
        for p in phrases:
            if p in doc.text:
                hits[p].append(doc)
    for docs in hits.values():
        docs.sort(key=lambda d: KIND_ORDER.index(d.kind) if d.kind in KIND_ORDER else 99)
    return hits


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    root = Path(argv[0])
    # A fixture (nothing writes to it): do not leave -wal/-shm files behind.
    res = find(root, argv[1:], immutable=True)
    print(f"# zstd via {zstd_backend()}")
    missing = 0
    for phrase, docs in res.items():
        print(f"{phrase}: {len(docs)} hit(s)")
        for d in docs[:20]:
            print(f"   [{d.kind}] {d.location}")
        missing += not docs
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
