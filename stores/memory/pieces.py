"""A turn window's vector from its turns', each turn embedded once.

Embedding a window's text whole costs a full model pass per window, with every turn embedded
twice (windows overlap by ``window - stride`` turns) and nothing past the model's 256 tokens in
the vector: a long reply fills the window alone. Here each turn is cut into pieces the model
takes whole (``PIECE_WORDS`` words; the first ``MAX_PIECES`` of them), each piece is embedded
once and kept by the hash of the embedder's id and its text (``pieces.sqlite``), and a
window's vector is the normalised mean of its date line's and its pieces' vectors. A window
that grows as the session goes on, or is rebuilt, embeds only the pieces it has not seen.
``bench/ingest_speed.py`` measures both ways side by side, and
``bench/retrieval.py --window-vectors`` the quality of each.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stores.memory.embeddings import Embedder, FloatArray, l2_normalise
from stores.memory.index import MemoryIndex
from stores.memory.records import Chunk
from stores.sqlite import connect, transaction

#: Words per piece (~64 word pieces with the speaker's name, well inside the model's 256): the
#: model gives ~1.3x the tokens a second at this length than at 256, and the LoCoMo scores are
#: those of 160-word pieces (bench/ingest_speed.py, bench/retrieval.py --piece-words).
PIECE_WORDS = 48
#: Pieces per turn at most. A whole window gave the model its first 256 tokens, mostly the
#: head of one reply; two pieces of every turn take in all four turns' heads for less than half
#: the model's time (bench/ingest_speed.py: 2.4x the windows a second on replies of ~300 words,
#: where every word took as long as whole windows), and the LoCoMo scores do not move. What
#: lies past them is found by its words. None: every word.
MAX_PIECES: int | None = 2
WHOLE = "whole"
PIECES = "pieces"
WINDOW_VECTORS = (WHOLE, PIECES)

SCHEMA = "CREATE TABLE pieces (key BLOB PRIMARY KEY, vector BLOB NOT NULL);"


def pieces_of(speaker: str, text: str) -> list[str]:
    """A turn as the texts to embed: ``speaker: words`` in runs of at most PIECE_WORDS."""
    words = text.split()
    prefix = f"{speaker}: " if speaker else ""
    starts = range(0, len(words), PIECE_WORDS)
    if MAX_PIECES is not None:
        starts = starts[:MAX_PIECES]
    return [prefix + " ".join(words[start : start + PIECE_WORDS]) for start in starts]


class PieceVectors:
    """Piece vectors by (embedder id, text), embedded on first sight and kept on disk."""

    def __init__(self, path: Path, embedder: Embedder) -> None:
        self.path = path
        self.embedder = embedder
        self._conn = connect(path, SCHEMA, 1)
        self._lock = threading.Lock()
        self.embedded = 0
        self.cached = 0

    def __repr__(self) -> str:
        return f"PieceVectors({str(self.path)!r}, embedded={self.embedded}, cached={self.cached})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def windows(self, windows: Sequence[Sequence[tuple[str, str]]]) -> FloatArray:
        """One vector per window, given as its turns' (speaker, text)."""
        parts = [[p for speaker, text in w for p in pieces_of(speaker, text)] for w in windows]
        vectors = self.vectors(list({p for pieces in parts for p in pieces}))
        rows = np.zeros((len(windows), self._width(vectors)), dtype=np.float32)
        for row, pieces in enumerate(parts):
            if pieces:
                rows[row] = np.mean([vectors[p] for p in pieces], axis=0)
        return l2_normalise(rows)

    def vectors(self, texts: list[str]) -> dict[str, FloatArray]:
        keys = {t: embed_key(self.embedder.id, t) for t in texts}
        found = self._stored(list(keys.values()))
        by_text = {t: found[k] for t, k in keys.items() if k in found}
        missing = [t for t in texts if t not in by_text]
        if missing:
            made = self.embedder.embed(missing)
            by_text.update(zip(missing, made, strict=True))
            self._store([(keys[t], v) for t, v in zip(missing, made, strict=True)])
        self.embedded += len(missing)
        self.cached += len(texts) - len(missing)
        return by_text

    def forget(self, windows: Sequence[Sequence[tuple[str, str]]]) -> None:
        """Drop the vectors of these turns' pieces (their words were forgotten)."""
        keys = [
            (embed_key(self.embedder.id, p),)
            for w in windows
            for speaker, text in w
            for p in pieces_of(speaker, text)
        ]
        with self._lock, transaction(self._conn):
            self._conn.executemany("DELETE FROM pieces WHERE key = ?", keys)

    def _stored(self, keys: list[bytes]) -> dict[bytes, FloatArray]:
        found: dict[bytes, FloatArray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                sql = f"SELECT key, vector FROM pieces WHERE key IN ({marks})"  # noqa: S608 - marks
                rows = self._conn.execute(sql, part).fetchall()
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def _store(self, rows: list[tuple[bytes, FloatArray]]) -> None:
        with self._lock, transaction(self._conn):
            self._conn.executemany(
                "INSERT OR REPLACE INTO pieces (key, vector) VALUES (?, ?)",
                [(k, sqlite3.Binary(np.asarray(v, dtype=np.float32).tobytes())) for k, v in rows],
            )

    def _width(self, vectors: dict[str, FloatArray]) -> int:
        return len(next(iter(vectors.values()))) if vectors else self.embedder.dimension


def embed_key(embedder_id: str, text: str) -> bytes:
    """What a text's vector by one embedder is kept under (here, and by a rebuild's reuse)."""
    return hashlib.sha256(f"{embedder_id}\0{text}".encode()).digest()[:20]


def window_turns(index: MemoryIndex, chunk: Chunk) -> list[tuple[str, str]]:
    """A turn window as (speaker, text): its date line first, then its turns in order."""
    agent, session = chunk.agent or "", chunk.session_id or ""
    places = index.turn_positions([(agent, session, chunk.entry_ids)])
    if not places:
        return [("", chunk.search_text)]
    members = set(chunk.entry_ids)
    turns = index.session_turns(agent, session, min(places.values()), max(places.values()))
    # The date line is a piece too: questions ask when, and it is what places the window.
    header = chunk.search_text.split("\n", 1)[0]
    return [("", header)] + [
        (t.speaker or t.role, t.text) for t in turns if t.entry_id in members and t.text
    ]
