"""How a long run in a worker thread learns that it should stop.

asyncio can cancel the await on a thread, never the thread itself: the thread goes on writing
after its run was recorded as over. So every long job gets a :class:`StopToken` in its context;
the runner sets it when the run times out, is cancelled or the daemon stops, and the blocking
loops (ingest's sources, the embedding pages, a backup's files and chunks) call ``check()``
between two steps, which raises :class:`Stopped` there. Each loop stops at a point where what it
stored is whole: a step is one transaction, so the next run goes on from where this one ended.
"""

from __future__ import annotations

import threading


class Stopped(Exception):
    """The run was told to stop (its timeout, a cancel, the daemon stopping) and did, between
    two steps."""


class StopToken(threading.Event):
    """A ``threading.Event`` that says why it was set, and raises :class:`Stopped` once set.

    An Event, so that code written for one (the backup stores take ``stop: threading.Event``)
    takes a token as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def __repr__(self) -> str:
        return f"StopToken({'set: ' + self.reason if self.is_set() else 'clear'})"

    def stop(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()

    def check(self) -> None:
        if self.is_set():
            raise Stopped(self.reason or "stopped")


def check(token: threading.Event | None) -> None:
    """``token.check()`` for loops that may run without one (tests, benchmarks, the CLI)."""
    if token is None or not token.is_set():
        return
    raise Stopped(getattr(token, "reason", "") or "stopped")
