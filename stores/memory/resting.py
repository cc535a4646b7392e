"""The embedded Chroma client, closed while the store is idle and opened again when needed.

Chroma keeps a collection's whole HNSW index in memory once it has been queried or written:
~190 MB at 100k vectors of 384 floats, more than the embedder, for a daemon that may go hours
between two searches. Closing the client gives it back (``heap.give_back`` returns the freed
pages); the next search or write opens the client again and Chroma loads the index from its
files, which costs that one call ~0.4 s at 100k vectors on 2 CPUs (``bench/footprint.py``).

Nothing waits on a closed client and nothing is lost: a call that finds it closed opens it
first, under the lock; the client is closed only when no call is using it, and only after
``release_after`` seconds without one. What Chroma holds on disk is the same either way: a
write is in its files before the call returns.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stores.memory.heap import give_back


@dataclass(frozen=True)
class Released:
    """One release: how long the store had been idle and how long closing took."""

    idle_s: float
    close_ms: float


class RestingClient:
    """A Chroma client that ``release_if_idle`` closes after ``release_after`` seconds
    without a call (None: never) and ``using`` opens again.

    Objects tied to one opening of the client (its collections) are kept in the dict that
    ``using`` yields beside it: a release empties it before closing the client, so that
    nothing still holds the index the close is meant to free."""

    def __init__(
        self,
        open_client: Callable[[], Any],
        close_client: Callable[[Any], None],
        *,
        release_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if release_after is not None and release_after <= 0:
            raise ValueError(f"release_after is a positive number of seconds, not {release_after}")
        self._open = open_client
        self._close = close_client
        self.release_after = release_after
        #: Seconds, monotonic; tests put a clock of their own here.
        self.clock = clock
        self._lock = threading.Lock()
        self._client: Any | None = open_client()
        self._busy = 0
        self._last_use = clock()
        self._closed = False
        self._tied: dict[str, Any] = {}
        #: Held by a holder fetching and loading a tied object, one at a time (see VectorIndex).
        self.fetching = threading.Lock()
        self.releases = 0
        #: How long each reopening took, in ms, since this client was made (for benches).
        self.reopen_ms: list[float] = []

    def __repr__(self) -> str:
        state = "open" if self._client is not None else "released"
        return f"RestingClient({state}, releases={self.releases})"

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @contextlib.contextmanager
    def using(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """The client (opened first if it was released) and the objects tied to this opening
        of it; it is not released while the block runs."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the vector store is closed")
            if self._client is None:
                began = time.perf_counter()
                self._client = self._open()
                self.reopen_ms.append((time.perf_counter() - began) * 1000)
            self._busy += 1
            client, tied = self._client, self._tied
        try:
            yield client, tied
        finally:
            with self._lock:
                self._busy -= 1
                self._last_use = self.clock()

    def release_if_idle(self) -> Released | None:
        """Close the client if no call has used it for ``release_after`` seconds and none is
        using it now; what was released, or None. Never waits: a call opening the client
        right now means it is not idle."""
        if self.release_after is None or not self._lock.acquire(blocking=False):
            return None
        try:
            idle = self.clock() - self._last_use
            if self._client is None or self._busy or idle < self.release_after:
                return None
            began = time.perf_counter()
            client, self._client = self._client, None
            self._tied = {}
            self._close(client)
            del client
            self.releases += 1
        finally:
            self._lock.release()
        gc.collect()  # the collections and segments the closed client's objects still held
        give_back()
        return Released(idle_s=idle, close_ms=(time.perf_counter() - began) * 1000)

    def close(self) -> None:
        """For good: later calls fail instead of opening it again."""
        with self._lock:
            client, self._client, self._closed = self._client, None, True
            self._tied = {}
        if client is not None:
            self._close(client)
