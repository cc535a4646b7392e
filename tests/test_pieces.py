"""Turn windows from their turns' pieces: each piece embedded once, every word of a long turn in
the window's vector, the vectors kept by text and dropped when their words are forgotten."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from daemon.sample.writer import OpenClawWriter
from stores.memory.embeddings import FloatArray, l2_normalise
from stores.memory.pieces import MAX_PIECES, PIECE_WORDS, pieces_of
from stores.memory.records import SearchQuery
from tests.memory_fixtures import SAMPLE_TODAY, Harness, HashedWords, hashed_words_are_not_rebuilt

pytestmark = hashed_words_are_not_rebuilt
LONG = " ".join(f"word{n}" for n in range(PIECE_WORDS * 3 + 10))  # four pieces, uncapped


class Recording(HashedWords):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> FloatArray:
        self.texts.extend(texts)
        return super().embed(texts)


@pytest.fixture
def writer(tmp_path: Path) -> OpenClawWriter:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    return writer


@pytest.fixture
def harness(tmp_path: Path, writer: OpenClawWriter) -> Iterator[Harness]:
    harness = Harness.open(writer.home, tmp_path / "state", Recording())
    yield harness
    harness.close()


def test_a_long_turn_is_cut_into_pieces_that_each_name_the_speaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pieces = pieces_of("Juniper", LONG)
    assert MAX_PIECES is not None
    assert len(pieces) == MAX_PIECES  # its head: the rest is found by its words
    assert all(p.startswith("Juniper: ") for p in pieces)
    head = LONG.split()[: PIECE_WORDS * MAX_PIECES]
    assert " ".join(p.removeprefix("Juniper: ") for p in pieces) == " ".join(head)
    monkeypatch.setattr("stores.memory.pieces.MAX_PIECES", None)
    every = pieces_of("Juniper", LONG)
    assert len(every) == 4
    assert " ".join(p.removeprefix("Juniper: ") for p in every) == LONG
    assert pieces_of("", "a date line") == ["a date line"]
    assert pieces_of("Dana", "   ") == []


def test_a_window_vector_is_the_mean_of_its_date_line_and_pieces(
    writer: OpenClawWriter, harness: Harness
) -> None:
    session = writer.new_session("main", SAMPLE_TODAY - timedelta(days=1))
    session.user("what should I practise?", sender="Dana")
    session.assistant(LONG)
    writer.write_legacy("main", "agent:main:main", session)
    harness.ingest()

    (window,) = [c for c in harness.chunks().values() if c.kind == "turns"]
    header = window.search_text.split("\n", 1)[0]
    texts = [header, "Dana: what should I practise?", *pieces_of("Juniper", LONG)]
    expected = l2_normalise(np.mean(HashedWords().embed(texts), axis=0, keepdims=True))[0]
    got = harness.store.vectors.vectors_of([window.id])[window.id]
    assert np.allclose(got, expected, atol=1e-5)
    tail = f"word{PIECE_WORDS * 3 + 9}"
    embedded = harness.store.embedder.texts  # type: ignore[attr-defined]
    assert not any(tail in t for t in embedded)  # past the pieces: found by its words
    assert harness.store.search(SearchQuery(tail, k=1)).results[0].id == window.id


def test_a_growing_session_embeds_only_its_new_pieces(
    writer: OpenClawWriter, harness: Harness
) -> None:
    session = writer.new_session("main", SAMPLE_TODAY - timedelta(days=1))
    for n in range(6):
        session.user(f"question {n} about the ferry", sender="Dana")
        session.assistant(f"answer {n} about the ferry")
    path = writer.write_legacy("main", "agent:main:main", session)
    harness.ingest()
    embedder = harness.store.embedder
    assert isinstance(embedder, Recording)
    embedder.texts.clear()

    session.user("one more question about the ferry", sender="Dana")
    path.write_text(session.jsonl())
    report = harness.ingest()

    assert report.turns == 1
    rewritten = report.embedded  # the windows that hold the new turn
    assert rewritten >= 1
    # Only the new turn's piece and each rewritten window's date line were embedded.
    assert "Dana: one more question about the ferry" in embedder.texts
    assert not any("answer" in t for t in embedder.texts)


def test_forgetting_a_window_drops_its_pieces_vectors(
    writer: OpenClawWriter, harness: Harness
) -> None:
    session = writer.new_session("main", SAMPLE_TODAY - timedelta(days=1))
    session.user("my locker code is 4512", sender="Dana")
    session.assistant("noted, 4512 for the locker")
    writer.write_legacy("main", "agent:main:main", session)
    harness.ingest()
    pieces = harness.store.pieces
    assert pieces is not None
    said = ["Dana: my locker code is 4512", "Juniper: noted, 4512 for the locker"]
    assert set(pieces._stored([_key(t) for t in said])) == {_key(t) for t in said}

    (window,) = [cid for cid, c in harness.chunks().items() if c.kind == "turns"]
    harness.store.forget([window])

    assert pieces._stored([_key(t) for t in said]) == {}


def _key(text: str) -> bytes:
    from stores.memory.pieces import embed_key

    return embed_key(HashedWords().id, text)
