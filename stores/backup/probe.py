"""Open a restored Chroma copy and check it against its memory.sqlite; run in a subprocess.

    python -m stores.backup.probe CHROMA_DIR MEMORY_SQLITE

Prints one JSON line: the number of vectors, how many rows marked embedded have none
(``missing``), how many vectors belong to no row nor to a pending delete (``extra``), and one
search: a stored vector, queried, must come back as its own nearest neighbour. The vector is
taken from the store itself, so no embedder (no model) is needed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

COLLECTION = "memory"
PAGE = 10_000


def probe(chroma_dir: Path, memory: Path) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings

    client: Any = chromadb.PersistentClient(
        path=str(chroma_dir), settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )
    try:
        collection = client.get_collection(_collection_name(memory))
        vectors = _all_ids(collection)
        count = int(collection.count())
        rows, embedded, pending = _rows(memory)
        missing = sorted(embedded - vectors)
        report: dict[str, Any] = {
            "count": count,
            "rows": len(rows),
            "embedded": len(embedded),
            "missing": len(missing),
            "missing_example": missing[0] if missing else None,
            "extra": len(vectors - rows - pending),
            "search": _search(collection, sorted(embedded & vectors)),
        }
    finally:
        client.close()
    return report


def _all_ids(collection: Any) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        got = collection.get(include=[], limit=PAGE, offset=offset)
        ids.update(got["ids"])
        if len(got["ids"]) < PAGE:
            return ids
        offset += PAGE


def _collection_name(memory: Path) -> str:
    """The collection memory.sqlite goes with: a reindex builds a new one and names it there."""
    uri = f"file:{quote(str(memory))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'collection'").fetchone()
    return str(row[0]) if row else COLLECTION


def _rows(memory: Path) -> tuple[set[str], set[str], set[str]]:
    uri = f"file:{quote(str(memory))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = {r[0] for r in conn.execute("SELECT id FROM chunks")}
        embedded = {r[0] for r in conn.execute("SELECT id FROM chunks WHERE embedded = 1")}
        pending = {r[0] for r in conn.execute("SELECT id FROM vector_deletes")}
    return rows, embedded, pending


def _search(collection: Any, candidates: list[str]) -> dict[str, Any] | None:
    if not candidates:
        return None
    wanted = candidates[len(candidates) // 2]
    got = collection.get(ids=[wanted], include=["embeddings"])
    hits = collection.query(
        query_embeddings=[got["embeddings"][0]], n_results=3, include=["distances"]
    )
    return {
        "id": wanted,
        "found": wanted in hits["ids"][0],
        "distance": float(hits["distances"][0][0]) if hits["distances"][0] else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m stores.backup.probe CHROMA_DIR MEMORY_SQLITE", file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        # Chroma tries to rebuild the collection's embedding function; none is needed here.
        warnings.simplefilter("ignore")
        report = probe(Path(args[0]), Path(args[1]))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
