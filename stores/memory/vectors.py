"""The memory store's vector half: one Chroma collection, embedded or behind ``chroma run``.

Vectors are computed by our embedder and handed to Chroma with their ids, so Chroma's own
embedding path is never on the hot path; the collection still records its embedding function
so that it reopens the same way (see ``stores.memory.chroma_embedding``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
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
from stores.memory.resting import Released, RestingClient

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
    """The collection ``name`` of a Chroma client, which an embedded store closes while it is
    idle (``release_if_idle``, see ``stores.memory.resting``) and opens again on the next
    call; siblings (a rebuild's collection) share the client."""

    def __init__(
        self,
        clients: RestingClient,
        embedder: Embedder,
        *,
        where: str,
        name: str = COLLECTION,
        owns_client: bool = True,
    ) -> None:
        self.clients = clients
        self.where = where
        self.embedder = embedder
        self._name = name
        self._owns_client = owns_client
        self._lock = threading.Lock()
        with self._using():  # created here if it does not exist
            pass

    @property
    def name(self) -> str:
        return self._name

    @property
    def client(self) -> Any:
        """The Chroma client, opened if it was released."""
        with self.clients.using() as (client, _):
            return client

    @property
    def collection(self) -> Any:
        """The Chroma collection, from a client opened if it was released."""
        with self._using() as collection:
            return collection

    def __repr__(self) -> str:
        return f"VectorIndex({self.where!r}, {self.embedder.id})"

    @contextlib.contextmanager
    def _using(self) -> Iterator[Any]:
        """The collection, fetched again from a client opened since it was last fetched."""
        with self.clients.using() as (client, tied):
            name = self._name
            collection = tied.get(name)
            if collection is None:
                with self.clients.fetching:
                    collection = tied.get(name)
                    if collection is None:
                        collection = client.get_or_create_collection(
                            name,
                            embedding_function=InfraEmbeddingFunction(self.embedder),
                            configuration={"hnsw": HNSW},
                        )
                        _load(collection)
                        tied[name] = collection
            yield collection

    @classmethod
    def open(
        cls,
        *,
        path: Path,
        url: str | None,
        embedder: Embedder,
        fresh: bool = False,
        name: str = COLLECTION,
        release_after: float | None = None,
    ) -> VectorIndex:
        """The collection at ``url`` (a ``chroma run`` server) or in ``path``; ``fresh`` drops
        the vectors it holds first (they belong to another embedder or to no row). An embedded
        store's client is closed after ``release_after`` idle seconds (None: never); a
        server's never is, its index lives in the server."""
        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if url:
            parsed = urlparse(url)

            def open_client() -> Any:
                try:
                    return chromadb.HttpClient(
                        host=parsed.hostname or "127.0.0.1",
                        port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                        ssl=parsed.scheme == "https",
                        settings=settings,
                    )
                except Exception as exc:  # chromadb says "a Chroma server", not which one
                    raise VectorStoreUnavailable(f"Chroma server {url}: {exc}") from exc

            where, release_after = url, None
        else:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

            def open_client() -> Any:
                return chromadb.PersistentClient(path=str(path), settings=settings)

            where = str(path)
        clients = RestingClient(open_client, _close, release_after=release_after)
        try:
            if fresh:
                _delete_collection(clients, name)
            return cls(clients, embedder, where=where, name=name)
        except BaseException:
            clients.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._owns_client:
                self.clients.close()

    def release_if_idle(self) -> Released | None:
        """Close the client if it has been idle long enough (``RestingClient``)."""
        return self.clients.release_if_idle()

    def sibling(self, name: str) -> VectorIndex:
        """A new collection on the same client, for a rebuild to fill beside this one."""
        _delete_collection(self.clients, name)
        return VectorIndex(
            self.clients, self.embedder, where=self.where, name=name, owns_client=False
        )

    def adopt(self, built: VectorIndex) -> None:
        """Answer from ``built``'s collection from now on; this one's is dropped."""
        with self._lock:
            old, self._name = self._name, built._name
        _delete_collection(self.clients, old)

    def drop(self) -> None:
        with self._lock:
            _delete_collection(self.clients, self._name)

    def drop_named(self, name: str) -> None:
        """Drop the collection ``name`` unless it is the one in use (a rebuild's, cut short)."""
        if name != self._name:
            _delete_collection(self.clients, name)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        found: dict[str, np.ndarray[Any, Any]] = {}
        with self._using() as collection:
            for start in range(0, len(ids), 2000):
                chunk = list(ids[start : start + 2000])
                got = collection.get(ids=chunk, include=["embeddings"])
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
        with self._lock, self._using() as collection:
            for start in range(0, len(ids), 2000):
                end = start + 2000
                collection.upsert(
                    ids=list(ids[start:end]),
                    embeddings=vectors[start:end],
                    metadatas=list(metadatas[start:end]),
                )

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock, self._using() as collection:
            for start in range(0, len(ids), 2000):
                collection.delete(ids=list(ids[start : start + 2000]))

    def query(
        self, vector: np.ndarray[Any, Any], n: int, where: dict[str, Any] | None
    ) -> list[VectorHit]:
        # No lock and no count() first: Chroma serves concurrent reads, answers an empty
        # collection with no ids, and caps n at its size; count() alone cost ~5 ms a query.
        with self._using() as collection:
            result = collection.query(
                query_embeddings=[vector], n_results=n, where=where or None, include=["distances"]
            )
        ids = result["ids"][0]
        distances = (result.get("distances") or [[0.0] * len(ids)])[0]
        return [VectorHit(i, float(d)) for i, d in zip(ids, distances, strict=True)]

    def count(self) -> int:
        with self._lock, self._using() as collection:
            return int(collection.count())


def _load(collection: Any) -> None:
    """Have Chroma load the collection's index now, before any other call can reach it: on a
    client just opened again, a query racing a write through the first load was seen to miss
    a vector written before the release (tests/test_resting.py, four threads). The probe is a
    vector the collection holds (an empty one has no index to load): asking the embedder would
    load a model or call a paid service just to open the store."""
    # Only a warm-up: whatever fails here fails again at the real call, which says what is wrong.
    with contextlib.suppress(Exception):
        rows = collection.get(limit=1, include=["embeddings"])["embeddings"]
        if rows is not None and len(rows):
            probe = np.asarray(rows[:1], dtype=np.float32)
            collection.query(query_embeddings=probe, n_results=1, include=[])


def _delete_collection(clients: RestingClient, name: str) -> None:
    """Drop the collection ``name`` if it exists, and the handle on it kept for this opening
    (a collection made again under that name is a new one)."""
    with clients.using() as (client, tied), contextlib.suppress(NotFoundError):
        tied.pop(name, None)
        client.delete_collection(name)


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
