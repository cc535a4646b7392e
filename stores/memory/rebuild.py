"""Rebuilding the memory beside the live one, and swapping it in at the end.

A reindex reads everything again into a new index file (``memory.sqlite.next``) and a new Chroma
collection, while searches go on answering from the live ones. At the end, with the live
store's writers held, what the rebuild does not read again (the daemon's own notes and manual
memories, other agents' rows, other jobs' checkpoints) is carried over, then the new file takes
the live one's place in one rename: that rename is the commit point. The file names the
collection it goes with (meta ``collection``), so before the rename the old pair is whole, and
after it the new pair is. A rebuild cut short (kill -9) leaves a file that nothing names and a
collection that the live index names as being built (meta ``rebuilding``); the next start
removes both, and nothing else (a Chroma server may hold other stores' collections).

Vectors are not computed again for text that did not change: a row whose embedded text and
embedder are those of a live row takes the live row's vector (keyed by a hash of both).
"""

from __future__ import annotations

import threading
import uuid
from types import TracebackType
from typing import Any

import numpy as np

from stores.memory.index import MemoryIndex, built_files
from stores.memory.pieces import embed_key
from stores.memory.store import MemoryStore
from stores.memory.vectors import COLLECTION


class VectorReuse:
    """The live store's vectors, found by the hash of (embedder id, embedded text)."""

    def __init__(self, live: MemoryStore) -> None:
        self.live = live
        self.reused = 0
        self._ids: dict[bytes, str] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VectorReuse({self.live!r}, reused={self.reused})"

    def find(self, embedder_id: str, texts: list[str]) -> dict[int, np.ndarray[Any, Any]]:
        """Position in ``texts`` -> the live vector of that text, where there is one."""
        ids = self._by_key()
        wanted = {i: ids.get(embed_key(embedder_id, t)) for i, t in enumerate(texts)}
        # Two chunks may say the same words (two agents' identical notes): one vector serves both.
        unique = list(dict.fromkeys(v for v in wanted.values() if v is not None))
        vectors = self.live.vectors.vectors_of(unique)
        found = {i: vectors[cid] for i, cid in wanted.items() if cid is not None and cid in vectors}
        self.reused += len(found)
        return found

    def _by_key(self) -> dict[bytes, str]:
        with self._lock:
            if self._ids is None:
                ids: dict[bytes, str] = {}
                after, embedder_id = "", self.live.embedder.id
                while page := self.live.index.embedded_texts(after):
                    ids.update((embed_key(embedder_id, text), cid) for cid, text in page)
                    after = page[-1][0]
                self._ids = ids
            return self._ids


class Beside:
    """A store being rebuilt beside ``live``: ``store`` to fill, then ``swap()``; leaving the
    block without a swap (an error, a stop) removes it and leaves the live one as it was."""

    def __init__(self, live: MemoryStore, agent: str | None) -> None:
        self.live = live
        self.agent = agent
        path, *_ = files = built_files(live.index.path)
        for leftover in files:
            leftover.unlink(missing_ok=True)
        index = MemoryIndex(path)
        name = f"{COLLECTION}-{uuid.uuid4().hex[:12]}"
        try:
            index.set_meta("embedder", live.embedder.id)
            index.set_meta("collection", name)
            live.index.set_meta("rebuilding", name)  # for the next start, if this one dies
            vectors = live.vectors.sibling(name)
        except BaseException:
            index.close()
            path.unlink(missing_ok=True)
            raise
        self.store = MemoryStore(
            index, vectors, live.embedder, pieces=live.pieces, owns_pieces=False
        )
        self.reuse = self.store.reuse = VectorReuse(live)
        self.swapped = False

    def __repr__(self) -> str:
        return f"Beside({self.store!r}, swapped={self.swapped})"

    def __enter__(self) -> Beside:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.swapped:
            self.abandon()

    def swap(self) -> None:
        """Carry over, give the carried rows their vectors, rename: from here on the live store
        answers from what was built. Writers of the live store wait meanwhile."""
        built = self.store
        with self.live.writes_paused():
            built.index.carry_over(self.live.index.path, self.agent)
            built.sync_vectors()
            built.index.close()
            self.live.index.replace_file(built.index.path)
            self.swapped = True
            self.live.vectors.adopt(built.vectors)
        built.close()  # its index file is the live one's now; the collection too

    def abandon(self) -> None:
        built = self.store
        built.close()
        built.vectors.drop()
        self.live.index.set_meta("rebuilding", "")
        for path in built_files(self.live.index.path):
            path.unlink(missing_ok=True)
