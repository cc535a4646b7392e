"""The memory store's vector half: one Chroma collection, embedded or behind ``chroma run``.

Vectors are computed by our embedder and handed to Chroma with their ids, so Chroma's own
embedding path is never on the hot path; the collection still records its embedding function
so that it reopens the same way (see ``stores.memory.chroma_embedding``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from stores.memory.chroma_embedding import InfraEmbeddingFunction
from stores.memory.embeddings import Embedder

COLLECTION = "memory"
#: ef_search trades recall of the approximate search against its speed; bench/scale.py measures
#: recall@10 against exact search with it.
HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 128, "max_neighbors": 16}


class VectorStoreUnavailable(Exception):
    pass


@dataclass(frozen=True)
class VectorHit:
    id: str
    distance: float


class VectorIndex:
    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        *,
        where: str,
        name: str = COLLECTION,
        owns_client: bool = True,
    ) -> None:
        self.client = client
        self.where = where
        self.embedder = embedder
        self.collection = client.get_or_create_collection(
            name,
            embedding_function=InfraEmbeddingFunction(embedder),
            configuration={"hnsw": HNSW},
        )
        self._owns_client = owns_client
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return str(self.collection.name)

    def __repr__(self) -> str:
        return f"VectorIndex({self.where!r}, {self.embedder.id})"

    @classmethod
    def open(
        cls,
        *,
        path: Path,
        url: str | None,
        embedder: Embedder,
        fresh: bool = False,
        name: str = COLLECTION,
    ) -> VectorIndex:
        """The collection at ``url`` (a ``chroma run`` server) or in ``path``; ``fresh`` drops
        the vectors it holds first (they belong to another embedder or to no row)."""
        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if url:
            parsed = urlparse(url)
            try:
                client = chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1",
                    port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https",
                    settings=settings,
                )
            except Exception as exc:  # chromadb says "a Chroma server", not which one
                raise VectorStoreUnavailable(f"Chroma server {url}: {exc}") from exc
            where = url
        else:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=settings)
            where = str(path)
        try:
            if fresh:
                with contextlib.suppress(NotFoundError):
                    client.delete_collection(name)
            return cls(client, embedder, where=where, name=name)
        except BaseException:
            _close(client)
            raise

    def close(self) -> None:
        with self._lock:
            if self._owns_client:
                _close(self.client)

    def sibling(self, name: str) -> VectorIndex:
        """A new collection on the same client, for a rebuild to fill beside this one."""
        with contextlib.suppress(NotFoundError):
            self.client.delete_collection(name)
        return VectorIndex(
            self.client, self.embedder, where=self.where, name=name, owns_client=False
        )

    def adopt(self, built: VectorIndex) -> None:
        """Answer from ``built``'s collection from now on; this one's is dropped."""
        with self._lock:
            old, self.collection = self.collection, built.collection
        with contextlib.suppress(NotFoundError):
            self.client.delete_collection(old.name)

    def drop(self) -> None:
        with self._lock, contextlib.suppress(NotFoundError):
            self.client.delete_collection(self.name)

    def drop_named(self, name: str) -> None:
        """Drop the collection ``name`` unless it is the one in use (a rebuild's, cut short)."""
        if name != self.name:
            with contextlib.suppress(NotFoundError):
                self.client.delete_collection(name)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        found: dict[str, np.ndarray[Any, Any]] = {}
        for start in range(0, len(ids), 2000):
            got = self.collection.get(ids=list(ids[start : start + 2000]), include=["embeddings"])
            rows = got["embeddings"]
            if rows is None:
                continue
            found.update(zip(got["ids"], np.asarray(rows, dtype=np.float32), strict=True))
        return found

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray[Any, Any], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        if not ids:
            return
        with self._lock:
            for start in range(0, len(ids), 2000):
                end = start + 2000
                self.collection.upsert(
                    ids=list(ids[start:end]),
                    embeddings=vectors[start:end],
                    metadatas=list(metadatas[start:end]),
                )

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            for start in range(0, len(ids), 2000):
                self.collection.delete(ids=list(ids[start : start + 2000]))

    def query(
        self, vector: np.ndarray[Any, Any], n: int, where: dict[str, Any] | None
    ) -> list[VectorHit]:
        # No lock and no count() first: Chroma serves concurrent reads, answers an empty
        # collection with no ids, and caps n at its size; count() alone cost ~5 ms a query.
        result = self.collection.query(
            query_embeddings=[vector], n_results=n, where=where or None, include=["distances"]
        )
        ids = result["ids"][0]
        distances = (result.get("distances") or [[0.0] * len(ids)])[0]
        return [VectorHit(i, float(d)) for i, d in zip(ids, distances, strict=True)]

    def count(self) -> int:
        with self._lock:
            return int(self.collection.count())


def _close(client: Any) -> None:
    """Release the client: the embedded store's files, or the server's connections, which
    chromadb 1.5 leaves open when it stops an HTTP client (and its admin client)."""
    client.close()
    for part in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(part, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.close()


def chroma_where(
    *,
    agents: Sequence[str] = (),
    kinds: Sequence[str] = (),
    session_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, Any] | None:
    """Chroma's filter syntax for the filters it can apply itself."""
    clauses: list[dict[str, Any]] = []
    if agents:
        clauses.append({"agent": {"$in": list(agents)}})
    if kinds:
        clauses.append({"kind": {"$in": list(kinds)}})
    if session_id is not None:
        clauses.append({"session_id": session_id})
    if since is not None:
        clauses.append({"ts_end": {"$gte": since}})
    if until is not None:
        clauses.append({"ts_start": {"$lt": until}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
