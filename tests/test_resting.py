"""The vector index released while idle and opened again: nothing fails, nothing is lost."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from stores.memory.records import SearchQuery
from stores.memory.resting import RestingClient
from stores.memory.vectors import VectorIndex, _close
from tests.memory_fixtures import Harness, HashedWords, hashed_words_are_not_rebuilt, write_sample

pytestmark = hashed_words_are_not_rebuilt


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _resting(path: Path, clock: Clock, release_after: float | None = 600.0) -> RestingClient:
    settings = ChromaSettings(anonymized_telemetry=False)
    return RestingClient(
        lambda: chromadb.PersistentClient(path=str(path), settings=settings),
        _close,
        release_after=release_after,
        clock=clock,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vectors(tmp_path: Path, clock: Clock) -> Iterator[VectorIndex]:
    index = VectorIndex(_resting(tmp_path / "chroma", clock), HashedWords(), where="test")
    yield index
    index.close()


def _put(vectors: VectorIndex, ids: list[str]) -> np.ndarray:
    rows = vectors.embedder.embed(ids)
    vectors.upsert(ids, rows, [{"kind": "turns"} for _ in ids])
    return rows


def test_released_only_after_the_idle_period(vectors: VectorIndex, clock: Clock) -> None:
    _put(vectors, ["apples and pears"])
    clock.now += 599
    assert vectors.release_if_idle() is None
    assert vectors.clients.is_open
    clock.now += 2
    released = vectors.release_if_idle()
    assert released is not None
    assert released.idle_s == pytest.approx(601)
    assert not vectors.clients.is_open
    assert vectors.release_if_idle() is None  # nothing left to release


def test_a_release_lets_go_of_the_collection(vectors: VectorIndex, clock: Clock) -> None:
    """Nothing of the closed client stays reachable: a collection handle kept past the close
    would keep the index it loaded in memory."""
    _put(vectors, ["apples and pears"])
    handle = weakref.ref(vectors.collection)
    alive_at_close: list[bool] = []
    close = vectors.clients._close

    def closing(client: object) -> None:
        gc.collect()
        alive_at_close.append(handle() is not None)
        close(client)

    vectors.clients._close = closing
    clock.now += 601
    assert vectors.release_if_idle() is not None
    assert alive_at_close == [False]


def test_a_sibling_made_again_under_its_name_starts_empty(vectors: VectorIndex) -> None:
    """A rebuild cut short and begun again: the new collection is not the old one's handle."""
    first = vectors.sibling("memory-next")
    _put(first, ["apples and pears"])
    assert first.count() == 1
    again = vectors.sibling("memory-next")
    assert again.count() == 0
    _put(again, ["the train to Lyon"])
    vectors.adopt(again)
    assert vectors.count() == 1
    assert vectors.name == "memory-next"


def test_a_search_after_a_release_finds_what_was_written_before(
    vectors: VectorIndex, clock: Clock
) -> None:
    rows = _put(vectors, ["apples and pears", "the train to Lyon", "a red bicycle"])
    before = vectors.query(rows[1], 3, None)
    clock.now += 601
    assert vectors.release_if_idle() is not None
    after = vectors.query(rows[1], 3, None)
    assert after == before
    assert after[0].id == "the train to Lyon"
    assert vectors.clients.is_open
    assert len(vectors.clients.reopen_ms) == 1


def test_a_write_while_released_opens_the_index_and_is_kept(
    vectors: VectorIndex, clock: Clock
) -> None:
    _put(vectors, ["apples and pears"])
    clock.now += 601
    assert vectors.release_if_idle() is not None
    rows = _put(vectors, ["the train to Lyon"])
    vectors.delete(["apples and pears"])
    assert vectors.count() == 1
    clock.now += 601
    assert vectors.release_if_idle() is not None  # and once more: it reached Chroma's files
    assert [h.id for h in vectors.query(rows[0], 5, None)] == ["the train to Lyon"]
    assert set(vectors.vectors_of(["the train to Lyon", "apples and pears"])) == {
        "the train to Lyon"
    }


def test_never_released_while_a_call_is_using_it(vectors: VectorIndex, clock: Clock) -> None:
    _put(vectors, ["apples and pears"])
    with vectors.clients.using():
        clock.now += 10_000
        assert vectors.release_if_idle() is None
        assert vectors.clients.is_open
    # The call's end counts as a use: idle again from there.
    assert vectors.release_if_idle() is None
    clock.now += 601
    assert vectors.release_if_idle() is not None


class Unreachable(HashedWords):
    """An embedder whose service cannot be asked anything (a remote one, down)."""

    @property
    def dimension(self) -> int:
        raise ConnectionError("the embedding service is down")

    def embed(self, texts: object) -> np.ndarray:
        raise ConnectionError("the embedding service is down")


def test_opening_again_asks_nothing_of_the_embedder(tmp_path: Path, clock: Clock) -> None:
    """Loading the index uses a vector it holds: opening the store must not need a remote
    embedder's answer (nor load a local model)."""
    rows = np.eye(3, 64, dtype=np.float32)
    first = VectorIndex(_resting(tmp_path, clock), HashedWords(), where="test")
    first.upsert(["a", "b", "c"], rows, [{"kind": "turns"}] * 3)
    first.close()
    index = VectorIndex(_resting(tmp_path, clock), Unreachable(), where="test")
    try:
        clock.now += 601
        assert index.release_if_idle() is not None
        assert [h.id for h in index.query(rows[1], 1, None)] == ["b"]
    finally:
        index.close()


def test_never_released_without_a_period(tmp_path: Path, clock: Clock) -> None:
    index = VectorIndex(_resting(tmp_path, clock, None), HashedWords(), where="test")
    try:
        clock.now += 10**9
        assert index.release_if_idle() is None
        assert index.clients.is_open
    finally:
        index.close()


def test_a_period_is_positive(tmp_path: Path, clock: Clock) -> None:
    with pytest.raises(ValueError, match="positive number of seconds, not 0"):
        _resting(tmp_path, clock, 0)


def test_a_closed_index_is_not_opened_again(vectors: VectorIndex) -> None:
    vectors.close()
    with pytest.raises(RuntimeError, match="the vector store is closed"):
        vectors.count()


def test_searches_and_writes_beside_releases_all_succeed(
    vectors: VectorIndex, clock: Clock
) -> None:
    """Releases as often as they can happen (the clock jumps past the period at every look)
    while four threads write and search: no call fails, no write is lost."""

    def jumping() -> float:
        clock.now += 1000
        return clock.now

    vectors.clients.clock = jumping
    errors: list[BaseException] = []
    done = threading.Event()

    def work(worker: int) -> None:
        try:
            rng = np.random.default_rng(worker)
            for i in range(15):
                row = rng.standard_normal((1, 64)).astype(np.float32)
                vectors.upsert([f"{worker}/{i}"], row, [{"kind": "turns"}])
                assert vectors.query(row[0], 1, None)[0].id == f"{worker}/{i}"
        except BaseException as exc:
            errors.append(exc)

    def release() -> None:
        while not done.is_set():
            vectors.release_if_idle()

    releaser = threading.Thread(target=release)
    releaser.start()
    workers = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    releaser.join()
    assert errors == []
    assert vectors.clients.releases > 0
    assert vectors.count() == 60


def test_the_store_searches_and_ingests_across_a_release(root: Path, clock: Clock) -> None:
    home = write_sample(root / "openclaw")
    harness = Harness.open(home, root / "state", HashedWords())
    try:
        harness.ingest()
        resting = harness.store.vectors.clients
        resting.clock, resting.release_after = clock, 600.0
        query = SearchQuery("train tickets to Lyon", k=5)
        before = harness.store.search(query)
        clock.now += 601
        assert harness.store.vectors.release_if_idle() is not None
        after = harness.store.search(query)
        assert after.degraded is None
        ranks = [(r.id, r.vector_rank) for r in after.results]
        assert ranks == [(r.id, r.vector_rank) for r in before.results]
        assert any(rank is not None for _, rank in ranks)  # the vector half answered
        clock.now += 601
        assert harness.store.vectors.release_if_idle() is not None
        (home / "workspace" / "memory").mkdir(parents=True, exist_ok=True)
        (home / "workspace" / "memory" / "extra.md").write_text("# Bikes\n\nA red bicycle.\n")
        harness.ingest()
        harness.assert_consistent()
    finally:
        harness.close()
