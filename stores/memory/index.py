"""The memory store's SQLite half: chunk rows, the FTS5 keyword index, turns and checkpoints.

This file is the source of truth for what the memory holds. Chroma keeps the vectors under the
same ids; a chunk is searchable once its row is here, and a checkpoint only moves in the same
transaction that stores the chunks it covers, so a crash never skips or duplicates anything.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from stores.atomic import fsync_dir
from stores.memory.keyword_search import KeywordPlanner
from stores.memory.records import Chunk, ChunkFilter, TurnRow, Write
from stores.memory.rows import (
    CHUNK_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    UPSERT_CHUNK,
    UPSERT_TURN,
    chunk_row,
    filter_sql,
    like_prefix,
    row_to_chunk,
    row_to_turn,
    turn_row,
    where_sql,
)
from stores.sqlite import connect, transaction


class MemoryIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, SCHEMA, SCHEMA_VERSION)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._planner: KeywordPlanner | None = None

    def __repr__(self) -> str:
        return f"MemoryIndex({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def replace_file(self, built: Path) -> None:
        """Become the index built in ``built`` (closed, beside this one): the file takes this
        one's place in one rename, the commit point of a rebuild, and this object reconnects,
        so whoever holds it goes on with the new rows."""
        with self._lock:
            self._conn.close()  # the last connection: its WAL is checkpointed and removed
            for leftover in (_beside(self.path, "-wal"), _beside(self.path, "-shm")):
                leftover.unlink(missing_ok=True)  # never to be read as the new file's
            os.replace(built, self.path)
            fsync_dir(self.path.parent)
            self._conn = connect(self.path, SCHEMA, SCHEMA_VERSION)
            self._conn.row_factory = sqlite3.Row
            self._planner = None

    def carry_over(self, live: Path, agent: str | None) -> None:
        """Copy from the live index at ``live`` what a rebuild does not read again: what the
        daemon wrote itself (manual memories, hourly, sync and weekly notes), other agents'
        rows when one agent is rebuilt, and the checkpoints of other jobs. Copied rows wait for
        vectors, which the live store's vectors give without embedding anything."""
        scope, args = ("", ()) if agent is None else (" AND agent = ?", (agent,))
        with self._lock:
            self._conn.execute("ATTACH DATABASE ? AS live", (str(live),))
            try:
                with transaction(self._conn):
                    self._conn.execute(
                        f"INSERT OR IGNORE INTO chunks ({CHUNK_COLUMNS}) SELECT {CHUNK_COLUMNS}"
                        " FROM live.chunks WHERE NOT (kind IN ('turns', 'summary', 'note')"
                        f"{scope})",
                        args,
                    )
                    self._conn.execute(
                        f"INSERT OR IGNORE INTO turns SELECT * FROM live.turns WHERE NOT (1 = 1"
                        f"{scope})",
                        args,
                    )
                    rows = self._conn.execute("SELECT * FROM live.checkpoints").fetchall()
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO checkpoints (source, data, updated_at)"
                        " VALUES (?, ?, ?)",
                        [tuple(r) for r in rows if not _is_reading_position(r[0], agent)],
                    )
            finally:
                self._conn.execute("DETACH DATABASE live")

    def embedded_texts(self, after: str = "", limit: int = 5000) -> list[tuple[str, str]]:
        """(id, embedded text) of rows whose vectors are stored, by id from ``after``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, search_text FROM chunks WHERE embedded = 1 AND id > ?"
                " ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def apply(self, write: Write, now: datetime) -> None:
        stamp = now.timestamp()
        with self._lock, transaction(self._conn):
            self._delete(write.delete_ids)
            self._conn.executemany(UPSERT_CHUNK, [chunk_row(c, stamp) for c in write.chunks])
            self._conn.executemany(UPSERT_TURN, [turn_row(t) for t in write.turns])
            self._conn.executemany(
                "INSERT INTO checkpoints (source, data, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at",
                [(s, json.dumps(d), stamp) for s, d in write.checkpoints.items()],
            )
            self._conn.executemany(
                "DELETE FROM checkpoints WHERE source = ?", [(s,) for s in write.drop_checkpoints]
            )

    def _delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        self._conn.executemany(
            "INSERT OR IGNORE INTO vector_deletes (id) VALUES (?)", [(i,) for i in ids]
        )
        cursor = self._conn.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
        return cursor.rowcount  # rows of chunks only; total_changes would count the FTS too

    def checkpoint(self, source: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM checkpoints WHERE source = ?", (source,)
            ).fetchone()
        return json.loads(row["data"]) if row else None

    def checkpoints(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, data FROM checkpoints WHERE source LIKE ? ESCAPE '\\'",
                (like_prefix(prefix),),
            ).fetchall()
        return {row["source"]: json.loads(row["data"]) for row in rows}

    def session_turns(
        self, agent: str, session_id: str, from_idx: int = 0, to_idx: int | None = None
    ) -> list[TurnRow]:
        """The session's turns from ``from_idx`` to ``to_idx`` (inclusive; None: the end)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM turns WHERE agent = ? AND session_id = ? AND idx >= ? AND idx <= ?"
                " ORDER BY idx",
                (agent, session_id, from_idx, 2**62 if to_idx is None else to_idx),
            ).fetchall()
        return [row_to_turn(r) for r in rows]

    def known_entries(self, agent: str, session_id: str, entry_ids: Sequence[str]) -> set[str]:
        """Which of ``entry_ids`` are already stored as turns of the session."""
        known: set[str] = set()
        with self._lock:
            for start in range(0, len(entry_ids), 500):
                part = list(entry_ids[start : start + 500])
                rows = self._conn.execute(
                    "SELECT entry_id FROM turns WHERE agent = ? AND session_id = ?"
                    f" AND entry_id IN ({','.join('?' * len(part))})",
                    (agent, session_id, *part),
                ).fetchall()
                known.update(r["entry_id"] for r in rows)
        return known

    def sessions(self, agent: str | None = None) -> list[tuple[str, str]]:
        """(agent, session id) of every session with stored turns."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT agent, session_id FROM turns"
                + (" WHERE agent = ?" if agent else ""),
                (agent,) if agent else (),
            ).fetchall()
        return [(r["agent"], r["session_id"]) for r in rows]

    def turn_positions(
        self, wanted: Sequence[tuple[str, str, Sequence[str]]]
    ) -> dict[tuple[str, str, str], int]:
        """(agent, session, entry id) -> position in its session, for the entries asked."""
        entries = list({e for _, _, ids in wanted for e in ids})
        sessions = {(agent, session) for agent, session, _ in wanted}
        found: dict[tuple[str, str, str], int] = {}
        with self._lock:
            for start in range(0, len(entries), 500):
                part = entries[start : start + 500]
                rows = self._conn.execute(
                    "SELECT agent, session_id, entry_id, idx FROM turns"
                    f" WHERE entry_id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                for r in rows:
                    if (r["agent"], r["session_id"]) in sessions:
                        found[(r["agent"], r["session_id"], r["entry_id"])] = r["idx"]
        return found

    def turn_count(self, agent: str, session_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM turns"
                " WHERE agent = ? AND session_id = ?",
                (agent, session_id),
            ).fetchone()
        return int(row["n"])

    def turns_between(self, agent: str, start: float, end: float) -> list[TurnRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM turns WHERE agent = ? AND ts >= ? AND ts < ? ORDER BY ts, idx",
                (agent, start, end),
            ).fetchall()
        return [row_to_turn(r) for r in rows]

    def chunks(self, ids: Iterable[str]) -> dict[str, Chunk]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Chunk] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._conn.execute(
                    f"SELECT * FROM chunks WHERE id IN ({marks})",
                    part,
                ).fetchall()
                found.update((r["id"], row_to_chunk(r)) for r in rows)
        return found

    def ids_where(self, **fields: str | None) -> list[str]:
        """Ids of the chunks whose columns equal the given values (None: any)."""
        clauses, args = where_sql(fields)
        with self._lock:
            rows = self._conn.execute(f"SELECT id FROM chunks {clauses}", args).fetchall()
        return [r["id"] for r in rows]

    def keyword_search(self, query: str, limit: int, where: ChunkFilter) -> list[str]:
        """Chunk ids best first by BM25; an empty list when the query has no usable word.
        How the words are combined is planned from their frequencies (``KeywordPlanner``)."""
        clauses, args = filter_sql(where)

        def run(match: str, n: int) -> list[str]:
            if not clauses:
                # Unfiltered, FTS5 ranks on its own and keeps only the best `n` as it goes;
                # the ids are looked up after (a join re-evaluated the rank: +2 ms at 100k).
                best = [
                    r[0]
                    for r in self._conn.execute(
                        "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?"
                        " ORDER BY rank LIMIT ?",
                        (match, n),
                    )
                ]
                marks = ",".join("?" * len(best))
                ids = dict(
                    self._conn.execute(
                        f"SELECT rowid, id FROM chunks WHERE rowid IN ({marks})", best
                    ).fetchall()
                )
                return [ids[rowid] for rowid in best if rowid in ids]
            sql = (
                "SELECT c.id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
                f" WHERE chunks_fts MATCH ? {clauses} ORDER BY rank LIMIT ?"
            )
            return [r["id"] for r in self._conn.execute(sql, (match, *args, n)).fetchall()]

        with self._lock:
            if self._planner is None:
                self._planner = KeywordPlanner(self._conn)
            return self._planner.search(query, limit, run)

    def to_embed(self, limit: int) -> list[Chunk]:
        """Rows whose vectors Chroma does not hold yet."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM chunks WHERE embedded = 0 LIMIT ?", (limit,)
            ).fetchall()
        return [row_to_chunk(r) for r in rows]

    def count_to_embed(self) -> int:
        with self._lock:
            return int(
                self._conn.execute("SELECT COUNT(*) FROM chunks WHERE embedded = 0").fetchone()[0]
            )

    def mark_embedded(self, chunks: Sequence[Chunk]) -> None:
        """Only rows still holding the embedded text: one rewritten meanwhile stays to embed."""
        with self._lock, transaction(self._conn):
            self._conn.executemany(
                "UPDATE chunks SET embedded = 1 WHERE id = ? AND search_text = ?",
                [(c.id, c.search_text) for c in chunks],
            )

    def vectors_to_delete(self, limit: int) -> list[str]:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM vector_deletes LIMIT ?", (limit,)).fetchall()
        return [r["id"] for r in rows]

    def vectors_deleted(self, ids: Sequence[str]) -> None:
        with self._lock, transaction(self._conn):
            self._conn.executemany("DELETE FROM vector_deletes WHERE id = ?", [(i,) for i in ids])

    def embed_everything_again(self) -> None:
        """Another embedder: every row waits for a vector in the new space."""
        with self._lock, transaction(self._conn):
            self._conn.execute("UPDATE chunks SET embedded = 0")
            self._conn.execute("DELETE FROM vector_deletes")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_kind = self._conn.execute(
                "SELECT kind, COUNT(*) AS n FROM chunks GROUP BY kind"
            ).fetchall()
            by_agent = self._conn.execute(
                "SELECT COALESCE(agent, '') AS agent, COUNT(*) AS n, MIN(ts_start) AS first,"
                " MAX(ts_end) AS last FROM chunks GROUP BY agent"
            ).fetchall()
            turns = self._conn.execute("SELECT COUNT(*) AS n FROM turns").fetchone()["n"]
            sources = self._conn.execute("SELECT COUNT(*) AS n FROM checkpoints").fetchone()["n"]
            to_embed = self._conn.execute(
                "SELECT COUNT(*) AS n FROM chunks WHERE embedded = 0"
            ).fetchone()["n"]
        return {
            "by_kind": {r["kind"]: r["n"] for r in by_kind},
            "by_agent": {
                r["agent"]: {"chunks": r["n"], "first": r["first"], "last": r["last"]}
                for r in by_agent
            },
            "turns": turns,
            "sources": sources,
            "to_embed": to_embed,
        }

    def reset(self, agent: str | None) -> list[str]:
        """Forget what was read from OpenClaw (of one agent, or all): chunks, turns and
        checkpoints, so the next ingest reads everything again. What the daemon wrote itself
        (manual memories, hourly, sync and weekly notes) stays: nothing else holds it. Returns the
        chunk ids removed."""
        scope = "" if agent is None else " AND agent = ?"
        args: tuple[str, ...] = () if agent is None else (agent,)
        with self._lock, transaction(self._conn):
            ids = [
                r["id"]
                for r in self._conn.execute(
                    f"SELECT id FROM chunks WHERE kind IN ('turns', 'summary', 'note'){scope}", args
                )
            ]
            self._delete(ids)
            self._conn.execute(f"DELETE FROM turns WHERE 1 = 1{scope}", args)
            # Only the reading positions: other jobs keep theirs here too (``summary:<agent>``).
            sources = [r[0] for r in self._conn.execute("SELECT source FROM checkpoints")]
            reading = [(src,) for src in sources if _is_reading_position(src, agent)]
            self._conn.executemany("DELETE FROM checkpoints WHERE source = ?", reading)
            return ids

    def manual_chunks(self) -> list[Chunk]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM chunks WHERE kind = 'manual'").fetchall()
        return [row_to_chunk(r) for r in rows]

    def delete(self, ids: Sequence[str]) -> int:
        """Forget chunks. The turns a forgotten window covered keep their place, so they are
        never read again as new, but lose their words, so no later window brings them back."""
        with self._lock, transaction(self._conn):
            self._silence_turns(ids)
            return self._delete(ids)

    def _silence_turns(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            rows = self._conn.execute(
                "SELECT agent, session_id, entry_ids FROM chunks"
                f" WHERE kind = 'turns' AND id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
            self._conn.executemany(
                "UPDATE turns SET text = '' WHERE agent = ? AND session_id = ? AND entry_id = ?",
                [
                    (r["agent"], r["session_id"], e)
                    for r in rows
                    for e in json.loads(r["entry_ids"])
                ],
            )

    def probe_writable(self, at: datetime) -> None:
        """A real write, so that a read-only or full disk shows up in health."""
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('probe', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (at.isoformat(),),
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


#: Where ingest keeps its reading positions: ``<agent>:jsonl:<path>``, ``<agent>:sqlite``,
#: ``<agent>:note:<path>`` and ``<agent>:session:<id>`` (agent ids hold no ':').
_READING_POSITION = re.compile(r"^(?P<agent>[^:]+):(?:jsonl:|sqlite$|note:|session:)")


def _is_reading_position(source: str, agent: str | None) -> bool:
    match = _READING_POSITION.match(source)
    return match is not None and (agent is None or match["agent"] == agent)


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def built_files(path: Path) -> list[Path]:
    """The files of an index being rebuilt beside the one at ``path`` (the file first)."""
    built = _beside(path, ".next")
    return [built, _beside(built, "-wal"), _beside(built, "-shm")]
