from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stores.memory.index import MemoryIndex
from stores.memory.keyword_search import POSTINGS_BUDGET, KeywordPlanner, _plan
from stores.memory.records import Chunk, ChunkFilter, Write


def _index(tmp_path: Path, texts: list[str]) -> MemoryIndex:
    index = MemoryIndex(tmp_path / "memory.sqlite")
    chunks = [
        Chunk(id=f"c{i}", kind="manual", agent="main", source=f"s{i}", text=t, search_text=t)
        for i, t in enumerate(texts)
    ]
    index.apply(Write(chunks=chunks), datetime(2026, 1, 1, tzinfo=UTC))
    return index


def test_doc_freqs_come_from_the_index_vocabulary_with_stemming(tmp_path: Path) -> None:
    index = _index(tmp_path, ["the ferries leave early", "a ferry to Vis", "bikes and ferries"])
    planner = KeywordPlanner(index._conn)
    assert planner.doc_freqs(["ferry", "ferries", "vis", "zeppelin"]) == {
        "ferry": 3,
        "ferries": 3,
        "vis": 1,
        "zeppelin": 0,
    }


def test_a_small_index_gets_the_plain_or_query(tmp_path: Path) -> None:
    index = _index(tmp_path, ["ferry to Vis at noon", "the bus to Split", "ferry tickets"])
    seen: list[str] = []

    def run(match: str, n: int) -> list[str]:
        seen.append(match)
        return []

    KeywordPlanner(index._conn).search("When does the ferry to Vis leave?", 10, run)
    assert seen == ['"ferry" OR "vis" OR "leave"']
    hits = index.keyword_search("ferry to Vis", 10, ChunkFilter())
    assert hits[0] == "c0"


def test_common_words_are_required_together_then_in_pairs_then_rare_ones_or_ed() -> None:
    df = {"clinic": 100, "invoice": 9_000, "bought": 25_000}
    plan = _plan(["clinic", "invoice", "bought"], df)
    assert plan == [
        '"clinic" AND "invoice" AND "bought"',
        '"clinic" AND "invoice"',
        '"clinic" AND "bought"',
        '"invoice" AND "bought"',
        '"clinic" OR "invoice"',
    ]
    assert df["clinic"] + df["invoice"] <= POSTINGS_BUDGET


def test_a_plan_never_ors_more_postings_than_the_budget() -> None:
    df = {"a1": 20_000, "b2": 30_000}
    plan = _plan(["a1", "b2"], df)
    assert plan == ['"a1" AND "b2"'], "no OR: even the rarer word is over the budget"


def test_past_the_budget_documents_with_all_the_words_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"bought tickets at the station {i}" for i in range(6)]
    texts += ["bought a cake at the market", "tickets for the market, bought at the station"]
    index = _index(tmp_path, texts)
    monkeypatch.setattr("stores.memory.keyword_search.POSTINGS_BUDGET", 3)
    hits = index.keyword_search("bought tickets at the market", 4, ChunkFilter())
    assert hits[0] == "c7", "the only chunk with every word"
    assert len(hits) >= 2
