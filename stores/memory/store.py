"""The memory store: chunks in SQLite (rows + keyword index) and Chroma (vectors), searched
together.

Writing: vectors go to Chroma first, then the rows, turns and checkpoints in one SQLite
transaction. A crash in between leaves vectors whose rows are missing; they are ignored by
search and overwritten when the same chunks are written again (ids are stable), so nothing is
duplicated and nothing is skipped.

Searching: the query's vector neighbours and its BM25 keyword matches are fused by reciprocal
rank, then returned as snippets until the token budget is spent, each with its source.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stores.atomic import ensure_private_dir
from stores.memory.chunking import TURNS, chunk_id, window_chunks
from stores.memory.diskfull import full_disk_named
from stores.memory.embeddings import Embedder
from stores.memory.heap import give_back
from stores.memory.index import MemoryIndex, built_files
from stores.memory.models import SearchResponse, VectorMemoryStats
from stores.memory.pieces import PIECES, WINDOW_VECTORS, PieceVectors, window_turns
from stores.memory.records import Chunk, ChunkFilter, SearchQuery, Write
from stores.memory.results import budgeted, merge_neighbours
from stores.memory.vectors import COLLECTION, VectorIndex, chroma_where
from stores.stopping import check

#: Reciprocal rank fusion constant; 60 is the value of the original paper and works broadly.
RRF_K = 60
#: Rows read per round: enough to sort them by length into well-filled batches.
EMBED_PAGE = 1024
#: Rows embedded and stored at once: how long a backup or a stop waits at most.
EMBED_SLICE = 128


class EmbedderChanged(Exception):
    pass


class VectorSource(Protocol):
    def find(self, embedder_id: str, texts: list[str]) -> dict[int, np.ndarray[Any, Any]]:
        """Position in ``texts`` -> a stored vector of that text by that embedder."""
        ...


def _clear_leftovers(index: MemoryIndex, vectors: VectorIndex) -> None:
    """What a rebuild cut short left (``stores.memory.rebuild``): its index file and the
    collection the live index names as being built. Only that one: a Chroma server may hold
    other stores' collections. The live pair is untouched: the file names its own."""
    for path in built_files(index.path):
        path.unlink(missing_ok=True)
    building = index.get_meta("rebuilding")
    if building:
        vectors.drop_named(building)
        index.set_meta("rebuilding", "")


class MemoryStore:
    def __init__(
        self,
        index: MemoryIndex,
        vectors: VectorIndex,
        embedder: Embedder,
        *,
        pieces: PieceVectors | None = None,
        owns_pieces: bool = True,
    ) -> None:
        self.index = index
        self.vectors = vectors
        self.embedder = embedder
        #: Turn windows' vectors from their turns' pieces (``stores.memory.pieces``), or None:
        #: each window embedded whole.
        self.pieces = pieces
        self._owns_pieces = owns_pieces
        self.state_dir = index.path.parent
        #: Held by every writer, and by a backup while it copies the store: writers wait.
        self._writes = threading.RLock()
        self._search_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")
        #: Vectors to take instead of embedding (a rebuild takes the live store's).
        self.reuse: VectorSource | None = None

    def __repr__(self) -> str:
        return f"MemoryStore({self.index!r}, {self.vectors!r})"

    @classmethod
    def open(
        cls,
        state_dir: Path,
        embedder: Embedder,
        *,
        chroma_url: str | None = None,
        allow_new_embedder: bool = False,
        window_vectors: str = PIECES,
        release_vectors_after: float | None = None,
    ) -> MemoryStore:
        if window_vectors not in WINDOW_VECTORS:
            raise ValueError(f"window_vectors is one of {WINDOW_VECTORS}, not {window_vectors!r}")
        index = MemoryIndex(ensure_private_dir(state_dir) / "memory.sqlite")
        recorded = index.get_meta("embedder")
        if recorded is not None and recorded != embedder.id and not allow_new_embedder:
            index.close()
            raise EmbedderChanged(
                f"the memory store was built with {recorded}, the settings now ask for"
                f" {embedder.id}; run `infractl memory reindex` to rebuild it"
            )
        try:
            # A new index (first start, or a corrupt one set aside) or another embedder: the
            # vectors in Chroma match no row, or not in this embedder's space (nor dimension).
            fresh = recorded != embedder.id
            vectors = VectorIndex.open(
                path=state_dir / "chroma",
                url=chroma_url,
                embedder=embedder,
                fresh=fresh,
                name=index.get_meta("collection") or COLLECTION,
                release_after=release_vectors_after,
            )
        except BaseException:
            index.close()
            raise
        try:
            _clear_leftovers(index, vectors)
            pieces = (
                PieceVectors(state_dir / "pieces.sqlite", embedder)
                if window_vectors == PIECES
                else None
            )
        except BaseException:
            index.close()
            vectors.close()
            raise
        store = cls(index, vectors, embedder, pieces=pieces)
        try:
            if recorded is not None and fresh:
                store._start_over()
            index.set_meta("embedder", embedder.id)
        except BaseException:
            store.close()
            raise
        return store

    def _start_over(self) -> None:
        """Another embedder: the collection was recreated empty and every row waits for a
        vector in the new space; the next ``sync_vectors`` (every ingest ends with one) embeds
        them. Nothing needs reading again."""
        self.index.embed_everything_again()

    def close(self) -> None:
        self._search_pool.shutdown(wait=True)
        self.index.close()
        self.vectors.close()
        if self.pieces is not None and self._owns_pieces:
            self.pieces.close()

    # --- writing -------------------------------------------------------------------------

    def write(self, write: Write, now: datetime, *, embed: bool = True) -> str | None:
        """Commit rows, turns and checkpoints together; then (``embed``) bring the vectors up
        to date. Ingest passes ``embed=False`` for each source and syncs once at the end, so
        the embedder sees large batches of similar lengths.

        Raises only if nothing was stored. Once the rows are committed they are searchable by
        keyword; if their vectors cannot be stored now (a full disk, an unreachable service),
        that is returned, not raised, and the next sync stores them: the write did happen."""
        with self._writes:
            with full_disk_named(self.state_dir):
                self.index.apply(write, now)
            if not embed:
                return None
            try:
                self.sync_vectors()
            except Exception as exc:  # stored; its vector waits in the queue for the next sync
                return str(exc) or type(exc).__name__
            return None

    def sync_vectors(
        self,
        progress: Callable[[int, int], None] | None = None,
        *,
        stop: threading.Event | None = None,
    ) -> int:
        """Delete the vectors of deleted rows and embed the rows that have none; both queues
        live in memory.sqlite, so work cut short by a crash is finished by the next call.
        The write lock is taken slice by slice, so a backup waits for one slice, not for all,
        and ``stop`` (a run's stop token) is seen between two slices, each stored whole."""
        with self._writes, full_disk_named(self.state_dir):
            while ids := self.index.vectors_to_delete(5000):
                self.vectors.delete(ids)
                self.index.vectors_deleted(ids)
            total = self.index.count_to_embed()
        done = 0
        while True:
            check(stop)
            with self._writes:
                page = self.index.to_embed(EMBED_PAGE)
                if not page:
                    if done:
                        self._release_memory()
                    return done
            # By length, so that each slice still gives the embedder batches of like lengths.
            page.sort(key=lambda c: len(c.search_text))
            for start in range(0, len(page), EMBED_SLICE):
                check(stop)
                chunks = page[start : start + EMBED_SLICE]
                with self._writes:
                    vectors = self._vectors_for(chunks)
                    with full_disk_named(self.state_dir):
                        self.vectors.upsert(
                            [c.id for c in chunks], vectors, [_vector_metadata(c) for c in chunks]
                        )
                        self.index.mark_embedded(chunks)
                done += len(chunks)
                if progress is not None:
                    progress(done, max(total, done))

    def _vectors_for(self, chunks: list[Chunk]) -> np.ndarray[Any, Any]:
        """Taken from ``reuse`` where it has them; the rest embedded, turn windows from their
        turns' pieces when ``pieces`` is set."""
        texts = [c.search_text for c in chunks]
        found = self.reuse.find(self.embedder.id, texts) if self.reuse is not None else {}
        if not found and self.pieces is None:
            return self.embedder.embed(texts)
        missing = [i for i in range(len(texts)) if i not in found]
        windows = [i for i in missing if self.pieces is not None and chunks[i].kind == TURNS]
        whole = sorted(set(missing) - set(windows))
        parts: list[tuple[list[int], np.ndarray[Any, Any]]] = []
        if windows and self.pieces is not None:
            turns = [window_turns(self.index, chunks[i]) for i in windows]
            parts.append((windows, self.pieces.windows(turns)))
        if whole:
            parts.append((whole, self.embedder.embed([texts[i] for i in whole])))
        width = len(next(iter(found.values()))) if found else parts[0][1].shape[1]
        vectors = np.empty((len(texts), width), dtype=np.float32)
        for rows, made in parts:
            vectors[rows] = made
        for i, vector in found.items():
            vectors[i] = vector
        return vectors

    def _release_memory(self) -> None:
        """A burst of embedding is over: what its batches held goes back to the system, so a
        daemon at rest holds the model and the index, not the largest batch it ever ran."""
        release = getattr(self.embedder, "release_memory", None)
        if release is not None:
            release()
        else:
            give_back()

    def forget(self, ids: Sequence[str]) -> int:
        """Forget chunks; a forgotten window's turns are also taken out of the windows that
        overlap it, so its words are not found there either."""
        with self._writes:
            forgotten = [c for c in self.index.chunks(ids).values() if c.kind == TURNS]
            if self.pieces is not None:  # nor kept, as vectors, in the pieces cache
                self.pieces.forget([window_turns(self.index, c)[1:] for c in forgotten])
            removed = self.index.delete(ids)
            self._rewrite_overlapping(forgotten)
            self.sync_vectors()
            return removed

    def _rewrite_overlapping(self, forgotten: Sequence[Chunk]) -> None:
        window = int((self.index.get_meta("windowing") or "4/2").split("/")[0])
        rewrite = Write()
        for agent, session in {(c.agent or "", c.session_id or "") for c in forgotten}:
            gone = {
                e
                for c in forgotten
                if (c.agent or "", c.session_id) == (agent, session)
                for e in c.entry_ids
            }
            ids = self.index.ids_where(agent=agent, session_id=session, kind=TURNS)
            turns = self.index.session_turns(agent, session)
            place = {t.entry_id: t.idx for t in turns}
            for chunk in self.index.chunks(ids).values():
                if not gone & set(chunk.entry_ids):
                    continue
                first = min(place.get(e, 0) for e in chunk.entry_ids)
                # The window's start: its id says which of the places it could begin at.
                start = next(
                    (
                        i
                        for i in range(max(0, first - window + 1), first + 1)
                        if chunk_id(TURNS, agent, session, str(i)) == chunk.id
                    ),
                    first,
                )
                made = window_chunks(turns, range(start, start + 1), window, chunk.source)
                if made:
                    rewrite.chunks.append(made[0])
                else:
                    rewrite.delete_ids.append(chunk.id)
        if rewrite:
            self.index.apply(rewrite, datetime.now(UTC))

    def reset(self, agent: str | None = None) -> int:
        with self._writes:
            ids = self.index.reset(agent)
            self.sync_vectors()
            return len(ids)

    @contextlib.contextmanager
    def writes_paused(self) -> Iterator[None]:
        """No write starts or is under way while this is held (a backup copying the files);
        writers block until it is released, they do not fail."""
        with self._writes:
            yield

    # --- reading -------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResponse:
        began = time.perf_counter()
        candidates = max(query.k * 4, 40)
        where = query.where
        # The keyword half runs beside the vector half: SQLite and ONNX both release the GIL.
        keywords = self._search_pool.submit(
            self.index.keyword_search, query.text, candidates, where
        )
        vector_ids, degraded = self._vector_half(query, candidates)
        keyword_ids = keywords.result()
        fused = fuse(vector_ids, keyword_ids, query.vector_weight, query.keyword_weight)
        chunks = self.index.chunks(fused)
        ranked = [
            (cid, score)
            for cid, score in fused.items()
            if cid in chunks and _matches(chunks[cid], where)
        ]
        if query.recency_half_life is not None:
            ranked = _by_recency(ranked, chunks, query.recency_half_life, query.now or time.time())
        groups = merge_neighbours(ranked, chunks, self.index, query.k)
        results = budgeted(groups, query, vector_ids, keyword_ids)
        return SearchResponse(
            query=query.text,
            results=results,
            tokens=sum(r.tokens for r in results),
            took_ms=round((time.perf_counter() - began) * 1000, 2),
            degraded=degraded,
        )

    def _vector_half(self, query: SearchQuery, candidates: int) -> tuple[list[str], str | None]:
        """The nearest vectors' ids; none if the vector store cannot answer (a disk so full
        that Chroma cannot apply its log, a server gone): the keyword half still does."""
        where = query.where
        vector = self.embedder.embed([query.text])[0]
        try:
            hits = self.vectors.query(
                vector,
                candidates,
                chroma_where(
                    agents=where.agents,
                    kinds=where.kinds,
                    session_id=where.session_id,
                    since=where.since,
                    until=where.until,
                ),
            )
        except Exception as exc:  # any failure of Chroma leaves the keyword half
            return [], f"vector search failed, keyword results only: {exc}"[:300]
        return [h.id for h in hits], None

    def stats(self) -> VectorMemoryStats:
        raw = self.index.stats()
        return VectorMemoryStats(
            chunks=sum(raw["by_kind"].values()),
            vectors=self.vectors.count(),
            turns=raw["turns"],
            sources=raw["sources"],
            to_embed=raw["to_embed"],
            by_kind=raw["by_kind"],
            by_agent=raw["by_agent"],
            embedder=self.embedder.id,
            store=self.vectors.where,
        )


def fuse(
    vector_ids: Sequence[str],
    keyword_ids: Sequence[str],
    vector_weight: float = 1.0,
    keyword_weight: float = 1.0,
) -> dict[str, float]:
    """Reciprocal rank fusion, best first."""
    scores: dict[str, float] = {}
    for weight, ids in ((vector_weight, vector_ids), (keyword_weight, keyword_ids)):
        for rank, cid in enumerate(ids):
            scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def _matches(chunk: Chunk, where: ChunkFilter) -> bool:
    """The filters Chroma cannot apply (list-valued metadata), checked on the rows."""
    if where.speaker is not None and where.speaker not in chunk.speakers:
        return False
    return where.role is None or where.role in chunk.roles


def _by_recency(
    ranked: list[tuple[str, float]], chunks: dict[str, Chunk], half_life: timedelta, now: float
) -> list[tuple[str, float]]:
    def weight(cid: str) -> float:
        ts = chunks[cid].ts_end or chunks[cid].ts_start
        if ts is None:
            return 1.0
        age = max(0.0, now - ts)
        return float(0.5 + 0.5 * 0.5 ** (age / half_life.total_seconds()))

    return sorted(((cid, s * weight(cid)) for cid, s in ranked), key=lambda item: -item[1])


def _vector_metadata(chunk: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {"kind": chunk.kind, "agent": chunk.agent or ""}
    if chunk.session_id:
        meta["session_id"] = chunk.session_id
    meta["ts_start"] = chunk.ts_start if chunk.ts_start is not None else 0.0
    meta["ts_end"] = chunk.ts_end if chunk.ts_end is not None else meta["ts_start"]
    return meta
