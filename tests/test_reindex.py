"""Reindex builds beside the live memory and swaps at the end: searches answer from the old
memory until then, a stop or a kill midway leaves it whole, and unchanged text is not embedded
again. The rebuild is held midway by a hook at one of its steps, never by a clock."""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import chromadb
import pytest

from jobs import ingest
from stores.memory.embeddings import FloatArray
from stores.memory.records import Chunk, SearchQuery, Write
from stores.stopping import Stopped
from tests.memory_fixtures import (
    SAMPLE_TODAY,
    Harness,
    HashedWords,
    hashed_words_are_not_rebuilt,
    write_sample,
)
from tests.support import running_daemon, wait_for

pytestmark = hashed_words_are_not_rebuilt
QUESTIONS = ["Where does my sister Mira live?", "dentist", "launch review", "tomatoes"]


class CountingWords(HashedWords):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> FloatArray:
        self.texts += len(texts)
        return super().embed(texts)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.open(write_sample(tmp_path / "openclaw"), tmp_path / "state", CountingWords())
    harness.ingest()
    text = "the spare key is under the blue pot"
    harness.store.write(
        Write(chunks=[Chunk("manual:k", "manual", None, "manual:k", text, text)]), SAMPLE_TODAY
    )
    yield harness
    harness.close()


def answers(harness: Harness) -> list[list[tuple[str, str]]]:
    return [
        [(r.id, r.text) for r in harness.store.search(SearchQuery(q, k=5)).results]
        for q in QUESTIONS
    ]


def leftovers(harness: Harness) -> tuple[list[str], list[str]]:
    files = sorted(p.name for p in harness.state.glob("memory.sqlite.next*"))
    names = [c.name for c in harness.store.vectors.client.list_collections()]
    return files, names


class Held:
    """The rebuild's second source step waits here until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        self.steps = 0
        real = ingest.Ingest._store

        def store(this: ingest.Ingest, write: Write) -> None:
            real(this, write)
            self.steps += 1
            if self.steps == 2:
                self.reached.set()
                assert self.release.wait(30)

        monkeypatch.setattr(ingest.Ingest, "_store", store)


def test_search_answers_from_the_old_memory_while_a_reindex_runs(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, stats = answers(harness), harness.store.stats()
    held = Held(monkeypatch)
    reports: list[ingest.IngestReport] = []
    rebuild = threading.Thread(target=lambda: reports.append(harness.ingest(rebuild=True)))
    rebuild.start()
    try:
        assert held.reached.wait(30)  # midway: some sources read into the new index
        assert answers(harness) == before
        assert harness.store.stats() == stats
        assert "memory.sqlite.next" in leftovers(harness)[0]  # the new one, being built
    finally:
        held.release.set()
        rebuild.join(30)
    (report,) = reports
    assert (report.rebuilt, report.turns) == (True, 12)
    assert answers(harness) == before
    assert harness.store.stats() == stats
    assert leftovers(harness) == ([], [harness.store.vectors.name])
    harness.assert_consistent()


def test_a_reindex_embeds_only_what_changed_and_counts_the_rest_as_reused(
    harness: Harness,
) -> None:
    embedder = harness.store.embedder
    assert isinstance(embedder, CountingWords)
    chunks = harness.store.stats().chunks
    embedder.texts = 0

    report = harness.ingest(rebuild=True)

    assert (report.reused, report.embedded, embedder.texts) == (chunks, 0, 0)
    assert harness.store.stats().vectors == chunks


def test_a_reindex_stopped_midway_leaves_the_live_memory_and_nothing_else(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, stats = answers(harness), harness.store.stats()
    held = Held(monkeypatch)
    ctx = harness.context(rebuild=True)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ingest.Ingest(ctx, harness.store).run()
        except BaseException as exc:
            errors.append(exc)

    rebuild = threading.Thread(target=run)
    rebuild.start()
    assert held.reached.wait(30)
    ctx.stop.stop("the daemon stopped")
    held.release.set()
    rebuild.join(30)

    assert [type(e) for e in errors] == [Stopped]
    assert answers(harness) == before
    assert harness.store.stats() == stats
    assert leftovers(harness) == ([], [harness.store.vectors.name])


def test_kill_9_midway_through_a_reindex_then_restart_keeps_the_memory_whole(root: Path) -> None:
    write_sample(root / "openclaw")
    held = root / "held"
    env = {"REINDEX_HELD": str(held)}
    with running_daemon(root, env, [sys.executable, "-m", "tests.reindex_daemon"]) as daemon:
        wait_for(lambda: _ingested(daemon), timeout=120, what="the start-up ingest")
        daemon.call("pause", {"job": "ingest"})
        added = daemon.call("memory.add", {"text": "Dana's bike lock code is in the safe."})
        stats = daemon.call("memory.stats")
        before = [_ids(daemon, q) for q in QUESTIONS]
        daemon.call("memory.reindex")
        wait_for(held.exists, timeout=120, what="the rebuild to reach its swap")
        assert (root / "state" / "memory.sqlite.next").exists()
        assert [_ids(daemon, q) for q in QUESTIONS] == before  # still the old memory
        daemon.signal(signal.SIGKILL)
        daemon.wait()

    with running_daemon(root) as daemon:
        wait_for(lambda: _ingested(daemon), timeout=120, what="the start-up ingest")
        assert daemon.call("memory.stats") == stats
        assert [_ids(daemon, q) for q in QUESTIONS] == before
        assert (
            daemon.call("memory.search", {"query": "bike lock code"})["results"][0]["id"]
            == (added["id"])
        )
        assert daemon.stop() == 0

    assert not list((root / "state").glob("memory.sqlite.next*"))
    client = chromadb.PersistentClient(path=str(root / "state" / "chroma"))
    assert len(client.list_collections()) == 1  # the half-built collection was removed
    with sqlite3.connect(root / "state" / "memory.sqlite") as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks")]
    assert len(ids) == len(set(ids)) == stats["chunks"]


def _ingested(daemon: Any) -> bool:
    runs = daemon.call("runs", {"job": "ingest"})["runs"]
    return any(r["status"] == "success" for r in runs)


def _ids(daemon: Any, query: str) -> list[str]:
    return [r["id"] for r in daemon.call("memory.search", {"query": query, "k": 5})["results"]]
