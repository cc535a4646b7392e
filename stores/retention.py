"""Retention: how long each store keeps what it records, in one table the ``retention`` job walks.

A store takes part by one entry: its name, how long it keeps rows, a callable that deletes one
batch of rows older than a moment (and says how many went), a row count, and the database whose
file should shrink afterwards. Deleting in batches keeps each write transaction short, so the
daemon's other writers are never held up for long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from stores.sqlite import Database

#: (older than this, at most this many) -> how many rows went.
PruneBatch = Callable[[datetime, int], int]


@dataclass(frozen=True)
class Retained:
    name: str
    #: Rows older than this go (each store says what "older" means: finished, closed, made).
    keep: timedelta
    prune: PruneBatch
    count: Callable[[], int]
    database: Database
    #: The setting that holds ``keep``, for status and messages.
    setting: str = ""

    def __repr__(self) -> str:
        return f"Retained({self.name!r}, keep={self.keep})"
