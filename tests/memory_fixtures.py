"""Memory-store test helpers: a fast deterministic embedder, an ingest harness over real stores,
and ways to look at what an OpenClaw home holds and what the store holds."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard

from daemon.sample.home import write_sample_home
from jobs.base import (
    HealthConfig,
    JobContext,
    MemoryConfig,
    ScheduledJobView,
)
from jobs.ingest import Ingest, IngestReport
from stores.memory.embeddings import (
    Embedder,
    EmbedderSpec,
    FloatArray,
    MiniLMEmbedder,
    l2_normalise,
)
from stores.memory.records import Chunk, TurnRow
from stores.memory.store import MemoryStore
from stores.openclaw.home import OpenClawSource
from stores.runlog import RunLog

#: The sample home's "today": its sessions are two days, one day and a few hours before it.
SAMPLE_TODAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
MAIN_KEY = "agent:main:telegram:direct:5550001"
WORK_KEY = "agent:work:telegram:direct:5550001"
_WORD = re.compile(r"\w+")


class HashedWords:
    """A deterministic bag-of-words embedder: fast, and close vectors for shared words.

    Chroma records the embedding function of a collection; this one claims the shipped kind
    with an id of its own, so Chroma cannot rebuild it (see ``hashed_words_are_not_rebuilt``).
    """

    def __init__(self, id: str = "test/hashed-words-64", dimension: int = 64) -> None:
        self._id = id
        self._dimension = dimension

    def __repr__(self) -> str:
        return f"HashedWords({self._id!r})"

    @property
    def id(self) -> str:
        return self._id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def spec(self) -> EmbedderSpec:
        return EmbedderSpec()

    def embed(self, texts: Sequence[str]) -> FloatArray:
        rows = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            rows[row, 0] = 1e-3  # no zero vector for a text without words
            for word in _WORD.findall(text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                rows[row, int.from_bytes(digest[:4], "big") % self._dimension] += 1.0
        return l2_normalise(rows)


@cache
def minilm() -> MiniLMEmbedder:
    """The shipped model, loaded once per test process."""
    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


#: For modules whose stores use ``HashedWords``: Chroma records a collection's embedding function
#: and tries to rebuild it on every write; it cannot rebuild a test-only embedder, says so in a
#: warning and carries on (vectors are always handed to it, so it never needs the function).
hashed_words_are_not_rebuilt = pytest.mark.filterwarnings(
    "ignore:Could not reconstruct embedding function:UserWarning"
)


def open_store(
    state: Path,
    embedder: Embedder,
    *,
    chroma_url: str | None = None,
    allow_new_embedder: bool = False,
) -> MemoryStore:
    state.mkdir(parents=True, exist_ok=True)
    return MemoryStore.open(
        state, embedder, chroma_url=chroma_url, allow_new_embedder=allow_new_embedder
    )


class NoScheduler:
    started_at = datetime(2026, 1, 1, tzinfo=UTC)

    def is_running(self) -> bool:
        return True

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return []


@dataclass
class Harness:
    """A memory store in ``state`` fed from the OpenClaw home ``home`` by the real ingest."""

    home: Path
    state: Path
    store: MemoryStore
    run_log: RunLog
    clock: datetime = SAMPLE_TODAY + timedelta(hours=1)
    window: int = 4
    stride: int = 2

    @classmethod
    def open(
        cls, home: Path, state: Path, embedder: Embedder, *, chroma_url: str | None = None
    ) -> Harness:
        store = open_store(state, embedder, chroma_url=chroma_url)
        return cls(home, state, store, RunLog(state / "runs.sqlite"))

    def context(self, **params: Any) -> JobContext:
        return JobContext(
            clock=lambda: self.clock,
            tz=UTC,
            state_dir=self.state,
            run_log=self.run_log,
            scheduler=NoScheduler(),
            health=HealthConfig(min_free_disk_bytes=0),
            openclaw=OpenClawSource(self.home),
            memory=self.store,
            memory_config=MemoryConfig(self.window, self.stride),
            params=params,
        )

    def ingest(self, **params: Any) -> IngestReport:
        return Ingest(self.context(**params), self.store).run()

    def reopen(self, embedder: Embedder | None = None, **kw: Any) -> None:
        """Close and open the store again, as a restarted daemon would."""
        embedder = embedder or self.store.embedder
        url = self.store.vectors.where if self.store.vectors.where.startswith("http") else None
        self.store.close()
        self.store = open_store(self.state, embedder, chroma_url=url, **kw)

    def close(self) -> None:
        self.store.close()
        self.run_log.close()

    # --- what the store holds ---------------------------------------------------------

    def chunks(self) -> dict[str, Chunk]:
        return self.store.index.chunks(self.store.index.ids_where())

    def vector_ids(self) -> set[str]:
        got = self.store.vectors.collection.get(include=[])
        return set(got["ids"])

    def turns(self) -> list[TurnRow]:
        """Every stored turn, session by session in the order they began, each in its order."""
        index = self.store.index
        sessions = [index.session_turns(a, s) for a, s in index.sessions()]
        return [t for turns in sorted(sessions, key=lambda ts: ts[0].ts) for t in turns]

    def turn_entries(self) -> list[str]:
        return [t.entry_id for t in self.turns()]

    def assert_consistent(self) -> None:
        """Vectors for exactly the rows marked embedded (the rest wait for one, none without
        a row); each session's turns numbered 0..n-1."""
        waiting = {c.id for c in self.store.index.to_embed(10**9)}
        assert self.vector_ids() == set(self.chunks()) - waiting
        index = self.store.index
        for agent, session in index.sessions():
            idx = [t.idx for t in index.session_turns(agent, session)]
            assert idx == list(range(len(idx))), (agent, session)


def write_sample(home: Path) -> Path:
    return write_sample_home(home, today=SAMPLE_TODAY)


@dataclass(frozen=True)
class FixtureEntry:
    """One entry as OpenClaw wrote it: which session holds it, and the entry itself."""

    session_id: str
    entry: Mapping[str, Any]

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(str(self.entry["timestamp"]).replace("Z", "+00:00"))

    @property
    def text(self) -> str:
        """Every string in the entry, joined: enough to find a fact in it."""
        return json.dumps(self.entry, ensure_ascii=False)


@dataclass
class HomeEntries:
    by_id: dict[str, FixtureEntry] = field(default_factory=dict)

    def containing(self, words: str) -> FixtureEntry:
        found = [e for e in self.by_id.values() if words in e.text]
        assert len(found) == 1, f"{len(found)} entries hold {words!r}"
        return found[0]


def home_entries(home: Path) -> HomeEntries:
    """Every entry with an id in the home's transcripts, both layouts, archives included."""
    found = HomeEntries()
    for path in sorted(home.glob("agents/*/sessions/*.jsonl*")):
        session_id = path.name.split(".jsonl")[0]
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError):
                _keep(found, session_id, json.loads(line))
    for db in sorted(home.glob("agents/*/agent/openclaw-agent.sqlite")):
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT session_id, event_json, event_zstd FROM transcript_events")
            for session_id, text, blob in rows:
                event = text or zstandard.ZstdDecompressor().decompress(blob).decode()
                _keep(found, session_id, json.loads(event))
    return found


def _keep(found: HomeEntries, session_id: str, entry: Any) -> None:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"] != session_id:
        found.by_id[entry["id"]] = FixtureEntry(session_id, entry)


def message_ids(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids of the user and assistant messages that say something, among a builder's entries
    (the fixtures here hold no heartbeats or flushes, whose texts are housekeeping)."""
    return [str(e["id"]) for e in entries if _says_something(e)]


def _says_something(entry: Mapping[str, Any]) -> bool:
    if entry.get("type") != "message" or entry["message"]["role"] not in {"user", "assistant"}:
        return False
    content = entry["message"]["content"]
    if isinstance(content, str):
        return bool(content.strip())
    return any(b.get("type") == "text" and b.get("text", "").strip() for b in content)
