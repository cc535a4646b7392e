"""The memory store: hybrid search over what ingest stored, with filters, budget and sources.

Search quality is judged with the shipped MiniLM model on the sample home; the mechanics
(dedupe, recency, forgetting, a crash between the two halves, a change of embedder) with a
small deterministic embedder, so that each test builds its own store in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.sample.writer import OpenClawWriter
from stores.memory.index import MemoryIndex
from stores.memory.keywords import fts_query, keywords
from stores.memory.models import VectorSearchResult
from stores.memory.records import Chunk, ChunkFilter, SearchQuery, Write
from stores.memory.results import approx_tokens, snippet
from stores.memory.store import RRF_K, EmbedderChanged, MemoryStore, fuse
from stores.memory.vectors import VectorIndex
from tests.memory_fixtures import (
    MAIN_KEY,
    SAMPLE_TODAY,
    WORK_KEY,
    Harness,
    HashedWords,
    HomeEntries,
    hashed_words_are_not_rebuilt,
    home_entries,
    minilm,
    open_store,
    write_sample,
)

pytestmark = hashed_words_are_not_rebuilt
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The sample home (both layouts, an archive, notes) ingested once with the real model."""
    root = tmp_path_factory.mktemp("sample")
    harness = Harness.open(write_sample(root / "openclaw"), root / "state", minilm())
    report = harness.ingest()
    assert report.problems == []
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def entries(sample: Harness) -> HomeEntries:
    return home_entries(sample.home)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    store = open_store(tmp_path / "state", HashedWords())
    yield store
    store.close()


def _search(store: MemoryStore, text: str, **kw: object) -> list[VectorSearchResult]:
    return store.search(SearchQuery(text, **kw)).results  # type: ignore[arg-type]


def _chunk(cid: str, text: str, **kw: object) -> Chunk:
    fields: dict[str, object] = {"kind": "manual", "agent": "main", "ts_start": 0.0}
    fields.update(kw)
    fields.setdefault("ts_end", fields["ts_start"])
    return Chunk(id=cid, source=f"test:{cid}", text=text, search_text=text, **fields)  # type: ignore[arg-type]


# --- search quality and sources, on the sample home with the real model ---------------------


@dataclass(frozen=True)
class Fact:
    question: str
    #: Words of the entry that holds the answer.
    words: str
    agent: str
    #: None for a session archived by a reset: ``sessions.json`` names only live sessions.
    key: str | None
    speakers: frozenset[str]


WITH_JUNIPER = frozenset({"Dana", "Juniper"})  # main's IDENTITY.md; the Sender block
WITH_LEDGER = frozenset({"Dana", "Ledger"})
FACTS = [
    Fact("Where does my sister Mira live?", "Mira lives at Rua das", "main", None, WITH_JUNIPER),
    Fact("When is my dentist appointment?", "the dentist moved", "main", MAIN_KEY, WITH_JUNIPER),
    Fact("Who owns the revenue section?", "Priya owns the revenue", "work", WORK_KEY, WITH_LEDGER),
    Fact("When is the launch review?", "move the launch review", "work", WORK_KEY, WITH_LEDGER),
]


@pytest.mark.parametrize("fact", FACTS, ids=[f.words for f in FACTS])
def test_a_fact_is_found_with_exactly_where_it_was_said(
    sample: Harness, entries: HomeEntries, fact: Fact
) -> None:
    said = entries.containing(fact.words)
    results = _search(sample.store, fact.question, k=3)

    hit = next(r for r in results if said.entry["id"] in r.source.entry_ids)
    assert results.index(hit) <= 1, [r.text for r in results]
    assert fact.words in hit.text
    source = hit.source
    assert (source.kind, source.agent_id, source.session_key) == ("turns", fact.agent, fact.key)
    assert source.session_id == said.session_id
    covered = [entries.by_id[e] for e in source.entry_ids]
    assert {e.session_id for e in covered} == {said.session_id}
    assert source.started_at == covered[0].timestamp
    assert source.ended_at == covered[-1].timestamp
    assert set(source.speakers) == fact.speakers
    assert set(source.roles) == {"user", "assistant"}
    assert hit.tokens == approx_tokens(hit.text)
    assert hit.vector_rank is not None or hit.keyword_rank is not None


def test_a_compaction_summary_is_its_own_memory(sample: Harness, entries: HomeEntries) -> None:
    compaction = entries.containing("Dinner booked at Tasca")
    (hit,) = _search(
        sample.store,
        "What plans did we make for dinner?",
        k=1,
        where=ChunkFilter(kinds=("summary",)),
    )
    assert hit.source.entry_ids == [compaction.entry["id"]]
    assert hit.source.roles == ["summary"]
    assert (hit.source.session_id, hit.source.session_key) == (compaction.session_id, MAIN_KEY)
    assert hit.source.started_at == compaction.timestamp


def test_a_note_is_found_with_its_file_and_lines(sample: Harness) -> None:
    results = _search(sample.store, "Which tomatoes did Dana plant?", k=3)
    note = next(r for r in results if r.source.kind == "note")
    assert results.index(note) <= 1
    assert note.source.path is not None
    path = Path(note.source.path)
    assert path == sample.home / "workspace" / "memory" / "2026-03-08.md"
    assert note.source.line_start is not None
    assert note.source.line_end is not None
    lines = path.read_text().splitlines()[note.source.line_start - 1 : note.source.line_end]
    assert any("San Marzano" in line for line in lines)
    assert note.source.agent_id == "main"
    assert (note.source.session_id, note.source.entry_ids) == (None, [])


def test_the_memory_file_of_each_agent_is_indexed(sample: Harness) -> None:
    (hit,) = _search(
        sample.store, "quarterly report due date", k=1, where=ChunkFilter(kinds=("note",))
    )
    assert hit.source.agent_id == "work"
    assert hit.source.path == str(sample.home / "workspace-work" / "MEMORY.md")


_SINCE = SAMPLE_TODAY - timedelta(hours=21)  # after both older sessions, before today's


@pytest.mark.parametrize(
    ("where", "holds"),
    [
        (ChunkFilter(agents=("work",)), lambda r: r.source.agent_id == "work"),
        (ChunkFilter(kinds=("note",)), lambda r: r.source.kind == "note"),
        (ChunkFilter(kinds=("turns", "summary")), lambda r: r.source.kind in {"turns", "summary"}),
        (ChunkFilter(speaker="Ledger"), lambda r: "Ledger" in r.source.speakers),
        (ChunkFilter(role="summary"), lambda r: r.source.roles == ["summary"]),
        (ChunkFilter(role="user"), lambda r: "user" in r.source.roles),
        (
            ChunkFilter(since=_SINCE.timestamp()),
            lambda r: r.source.ended_at is not None and r.source.ended_at >= _SINCE,
        ),
        (
            ChunkFilter(until=_SINCE.timestamp()),
            lambda r: r.source.started_at is not None and r.source.started_at < _SINCE,
        ),
        (
            ChunkFilter(agents=("main",), kinds=("turns",), until=_SINCE.timestamp()),
            lambda r: (
                r.source.agent_id == "main"
                and r.source.kind == "turns"
                and r.source.started_at is not None
                and r.source.started_at < _SINCE
            ),
        ),
    ],
    ids=["agent", "kind", "kinds", "speaker", "role-summary", "role-user", "since", "until", "and"],
)
def test_each_filter_really_filters(
    sample: Harness, where: ChunkFilter, holds: Callable[[VectorSearchResult], bool]
) -> None:
    question = "What did Dana ask about plans, the report and the garden?"
    everything = _search(sample.store, question, k=50, token_budget=100_000)
    filtered = _search(sample.store, question, k=50, token_budget=100_000, where=where)
    assert not all(holds(r) for r in everything), "the filter would have nothing to remove"
    assert filtered
    assert all(holds(r) for r in filtered)


def test_a_session_filter_keeps_one_session(sample: Harness, entries: HomeEntries) -> None:
    session = entries.containing("launch review to Thursday").session_id
    results = _search(
        sample.store, "report", k=50, token_budget=100_000, where=ChunkFilter(session_id=session)
    )
    assert results
    assert {r.source.session_id for r in results} == {session}


@pytest.mark.parametrize("budget", [5, 50, 120, 400])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_the_token_budget_holds_and_snippets_are_cut_not_invented(
    sample: Harness, budget: int, k: int
) -> None:
    response = sample.store.search(
        SearchQuery("Dana plans dinner report", k=k, token_budget=budget)
    )
    chunks = sample.chunks()
    assert response.tokens == sum(r.tokens for r in response.results) <= budget
    assert len(response.results) <= k
    for result in response.results:
        assert result.tokens == approx_tokens(result.text)
        full = chunks[result.id].text
        if result.truncated:  # a run of the memory's own words, each cut side marked
            assert result.text.startswith("…") or result.text.endswith("…")
            words = " ".join(result.text.removeprefix("…").removesuffix("…").split())
            assert words in " ".join(full.split())
        else:
            assert result.text == full


def test_a_long_memory_is_cut_to_its_share_of_the_budget(store: MemoryStore) -> None:
    long = " ".join(f"ferry{i % 7} timetable" for i in range(400))
    chunks = [_chunk(f"c{i}", f"ferry timetable {i} {long}") for i in range(3)]
    store.write(Write(chunks=chunks), NOW)
    response = store.search(SearchQuery("ferry timetable", k=3, token_budget=300))
    share = 300 // 3 * 2  # one result may take twice its even share, not the whole budget
    first, second = response.results
    assert (first.truncated, second.truncated) == (True, True)
    assert share - 2 <= first.tokens <= share
    assert 300 - 2 <= response.tokens <= 300  # the rest of the budget goes to the second
    tiny = store.search(SearchQuery("ferry timetable", k=3, token_budget=1))
    assert tiny.results == []  # not even one word fits: nothing, rather than over the budget


def test_stats_count_rows_and_vectors_alike(sample: Harness) -> None:
    stats = sample.store.stats()
    assert stats.chunks == stats.vectors == len(sample.chunks())
    assert stats.turns == len(sample.turns()) == 12
    assert stats.by_kind == {"turns": 6, "summary": 1, "note": 5}
    assert set(stats.by_agent) == {"main", "work"}
    assert stats.embedder == minilm().id
    assert stats.store == str(sample.state / "chroma")


# --- ranking mechanics, with the deterministic embedder ---------------------------------------


def test_fusion_adds_reciprocal_ranks() -> None:
    fused = fuse(["a", "b", "c"], ["c", "a"], vector_weight=1.0, keyword_weight=0.5)
    assert fused == {
        "a": pytest.approx(1 / (RRF_K + 1) + 0.5 / (RRF_K + 2)),
        "c": pytest.approx(1 / (RRF_K + 3) + 0.5 / (RRF_K + 1)),
        "b": pytest.approx(1 / (RRF_K + 2)),
    }
    assert list(fused) == ["a", "c", "b"]  # best first
    assert list(fuse(["a", "b", "c"], ["c", "a"], vector_weight=0.0)) == ["c", "a", "b"]


def test_a_window_whose_entries_are_all_shown_is_skipped(store: MemoryStore) -> None:
    store.write(
        Write(
            chunks=[
                _chunk("whole", "ferry ferry ferry", entry_ids=("e1", "e2", "e3", "e4")),
                _chunk("inside", "ferry to Tangier on Friday", entry_ids=("e3", "e4")),
                _chunk("overlap", "ferry tickets were bought", entry_ids=("e4", "e9")),
                _chunk("note", "ferry notes from the harbour"),
            ]
        ),
        NOW,
    )
    results = _search(store, "ferry", k=10)
    assert results[0].id == "whole"
    assert {r.id for r in results} == {"whole", "overlap", "note"}
    without_whole = [r.id for r in _search(store, "Tangier Friday", k=1)]
    assert without_whole == ["inside"]


def test_recency_weighting_puts_the_newer_of_two_equals_first(store: MemoryStore) -> None:
    text = "Dana booked the ferry to Tangier."
    new, old = NOW.timestamp(), (NOW - timedelta(days=365)).timestamp()

    def ranked(a_ts: float, b_ts: float, recent: bool) -> list[str]:
        store.write(
            Write(chunks=[_chunk("a", text, ts_start=a_ts), _chunk("b", text, ts_start=b_ts)]),
            NOW,
        )
        half_life = timedelta(days=30) if recent else None
        query = SearchQuery(text, recency_half_life=half_life, now=NOW.timestamp())
        return [r.id for r in store.search(query).results]

    plain = ranked(new, old, recent=False)
    assert sorted(plain) == ["a", "b"]
    assert ranked(old, new, recent=False) == plain, "without recency, time plays no part"
    assert ranked(new, old, recent=True) == ["a", "b"]
    assert ranked(old, new, recent=True) == ["b", "a"]


def test_queries_that_are_not_fts_syntax_are_safe(store: MemoryStore) -> None:
    store.write(Write(chunks=[_chunk("m", "the NEAR harbour AND the ferry")]), NOW)
    for question in ['"', "AND OR NOT", "ferry*", "(harbour", "NEAR(", "c'est où ?", "the of and"]:
        _search(store, question)  # never an FTS syntax error
    assert fts_query('ferry" OR *') == '"ferry"'
    assert keywords("When did she go to the Harbour, the harbour?") == ["go", "harbour"]
    assert [r.id for r in _search(store, "harbour")] == ["m"]


# --- writing, forgetting, crashes -------------------------------------------------------------


def test_a_manual_memory_is_added_found_and_forgotten(store: MemoryStore) -> None:
    memory = _chunk("manual:1", "The spare key is under the blue flower pot.", tags=("home",))
    store.write(Write(chunks=[memory]), NOW)
    (hit,) = _search(store, "where is the spare key")
    assert (hit.id, hit.source.kind, hit.source.tags) == ("manual:1", "manual", ["home"])
    assert store.stats().vectors == 1

    assert store.forget(["manual:1"]) == 1
    assert _search(store, "where is the spare key") == []
    assert (store.stats().chunks, store.stats().vectors) == (0, 0)
    assert store.forget(["manual:1", "never-there"]) == 0


def test_a_vector_without_a_row_is_never_returned(store: MemoryStore) -> None:
    store.write(Write(chunks=[_chunk("kept", "lighthouse keeper")]), NOW)
    stray = store.embedder.embed(["lighthouse lighthouse"])
    store.vectors.upsert(["stray"], stray, [{"kind": "turns", "agent": "main"}])
    assert store.stats().vectors == 2
    assert [r.id for r in _search(store, "lighthouse lighthouse")] == ["kept"]


def test_a_crash_before_the_rows_commit_leaves_nothing_and_heals(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: MemoryIndex, write: Write, now: datetime) -> None:
        raise OSError("killed before SQLite committed")

    write = Write(
        chunks=[_chunk("w1", "the boat leaves at noon")], checkpoints={"test:src": {"n": 1}}
    )
    with monkeypatch.context() as patch:
        patch.setattr(MemoryIndex, "apply", crash)
        with pytest.raises(OSError, match="killed"):
            store.write(write, NOW)
    assert (store.stats().chunks, store.vectors.count()) == (0, 0)
    assert store.index.checkpoint("test:src") is None, "a checkpoint never moves ahead of rows"

    store.write(write, NOW)  # the same step again: the same id, written over
    assert [r.id for r in _search(store, "boat noon")] == ["w1"]
    assert (store.stats().chunks, store.stats().vectors) == (1, 1)
    assert store.index.checkpoint("test:src") == {"n": 1}


def test_a_crash_between_rows_and_vectors_is_finished_by_the_next_sync(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: VectorIndex, *args: object) -> None:
        raise OSError("killed before Chroma stored the vectors")

    write = Write(
        chunks=[_chunk("w1", "the boat leaves at noon")], checkpoints={"test:src": {"n": 1}}
    )
    with monkeypatch.context() as patch:
        patch.setattr(VectorIndex, "upsert", crash)
        pending = store.write(write, NOW)  # stored: only the vectors wait, and it says so
    assert pending == "killed before Chroma stored the vectors"
    stats = store.stats()
    assert (stats.chunks, stats.vectors, stats.to_embed) == (1, 0, 1)
    assert store.index.checkpoint("test:src") == {"n": 1}, "rows and checkpoint moved together"
    hits = _search(store, "boat noon")
    assert [(r.id, r.vector_rank) for r in hits] == [("w1", None)], "keyword search finds it"

    assert store.sync_vectors() == 1
    stats = store.stats()
    assert (stats.chunks, stats.vectors, stats.to_embed) == (1, 1, 0)
    assert _search(store, "boat noon")[0].vector_rank == 1


def test_deleted_rows_lose_their_vectors_even_after_a_crash(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(Write(chunks=[_chunk("gone", "a lantern in the window")]), NOW)
    assert store.stats().vectors == 1

    def crash(self: VectorIndex, ids: object) -> None:
        raise OSError("killed before Chroma deleted the vectors")

    with monkeypatch.context() as patch:
        patch.setattr(VectorIndex, "delete", crash)
        with pytest.raises(OSError, match="killed"):
            store.forget(["gone"])
    assert store.stats().chunks == 0
    assert store.vectors.count() == 1, "the vector outlived its row"
    assert store.index.vectors_to_delete(10) == ["gone"], "and the deletion is remembered"
    store.sync_vectors()
    assert store.vectors.count() == 0
    assert store.index.vectors_to_delete(10) == []


def test_forgetting_a_session_removes_all_of_it(tmp_path: Path) -> None:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    old = writer.new_session("main", SAMPLE_TODAY - timedelta(days=1))
    for n in range(5):
        old.user(f"the ferry question number {n}")
        old.assistant(f"the ferry answer number {n}")
    new = writer.new_session("main", SAMPLE_TODAY)
    new.user("the ferry leaves at noon")
    writer.write_legacy("main", MAIN_KEY, new, [old])
    harness = Harness.open(writer.home, tmp_path / "state", HashedWords())
    try:
        harness.ingest()
        ids = harness.store.index.ids_where(session_id=old.session_id)
        assert len(ids) == 5  # windows of 4 turns every 2 turns over 10 turns
        assert harness.store.forget(ids) == 5
        results = _search(harness.store, "ferry", k=20, token_budget=100_000)
        assert {r.source.session_id for r in results if r.source.kind == "turns"} == {
            new.session_id
        }
        harness.assert_consistent()
    finally:
        harness.close()


def test_forgetting_a_window_takes_its_words_out_of_overlapping_windows(tmp_path: Path) -> None:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    session = writer.new_session("main", SAMPLE_TODAY)
    words = ["apple", "birch", "cedar", "dune", "ochre", "fjord", "grove", "heath"]
    for word in words:
        session.user(f"remember the word {word}")
    writer.write_legacy("main", MAIN_KEY, session)
    harness = Harness.open(writer.home, tmp_path / "state", HashedWords())
    try:
        harness.ingest()
        index = harness.store.index
        windows = index.chunks(index.ids_where(session_id=session.session_id))
        second = next(c for c in windows.values() if "cedar" in c.text and "ochre" in c.text)
        harness.store.forget([second.id])  # covers cedar, dune, ochre, fjord
        texts = [c.text for c in index.chunks(index.ids_where()).values()]
        for gone in ("cedar", "dune", "ochre", "fjord"):
            assert not any(gone in t for t in texts), gone
            assert not any(gone in r.text for r in _search(harness.store, gone, k=20))
        for kept in ("apple", "birch", "grove", "heath"):
            assert any(kept in t for t in texts), kept
        harness.assert_consistent()
        harness.store.sync_vectors()
        harness.assert_consistent()
    finally:
        harness.close()


def test_reset_forgets_what_was_read_and_keeps_manual_memories(tmp_path: Path) -> None:
    harness = Harness.open(write_sample(tmp_path / "openclaw"), tmp_path / "state", HashedWords())
    try:
        harness.ingest()
        harness.store.write(Write(chunks=[_chunk("manual:k", "spare key under the pot")]), NOW)
        read = set(harness.chunks()) - {"manual:k"}

        removed = harness.store.reset("work")
        assert removed == 4  # two windows, MEMORY.md and USER.md
        assert {c.agent for c in harness.chunks().values()} == {"main"}
        assert harness.store.index.checkpoints("work:") == {}
        assert harness.store.reset() == len(read) - 4
        assert list(harness.chunks()) == ["manual:k"]
        assert (harness.turns(), harness.store.index.checkpoints()) == ([], {})
        harness.assert_consistent()

        assert harness.ingest().turns == 12  # read again from the start
        assert set(harness.chunks()) == read | {"manual:k"}
        harness.assert_consistent()
    finally:
        harness.close()


# --- the embedder a store was built with ------------------------------------------------------


def test_a_store_refuses_another_embedder_until_told_to_start_over(tmp_path: Path) -> None:
    harness = Harness.open(write_sample(tmp_path / "openclaw"), tmp_path / "state", HashedWords())
    harness.ingest()
    harness.store.write(Write(chunks=[_chunk("manual:k", "spare key under the pot")]), NOW)
    before = set(harness.chunks())
    harness.store.close()
    other = HashedWords("test/hashed-words-16", dimension=16)

    with pytest.raises(EmbedderChanged, match=r"test/hashed-words-64.*test/hashed-words-16"):
        open_store(harness.state, other)
    harness.reopen()  # the store itself is untouched by the refusal
    assert set(harness.chunks()) == before
    harness.assert_consistent()

    harness.reopen(other, allow_new_embedder=True)
    try:
        stats = harness.store.stats()
        assert stats.embedder == other.id
        assert set(harness.chunks()) == before, "rows stay: nothing needs reading again"
        assert (stats.vectors, stats.to_embed) == (0, len(before)), "but every vector is new"
        harness.assert_consistent()
        report = harness.ingest()
        assert (report.turns, report.embedded) == (0, len(before))
        assert harness.store.stats().vectors == len(before)
        assert _search(harness.store, "spare key")[0].id == "manual:k"
        harness.assert_consistent()
        harness.reopen(other)  # and from now on it is this embedder's store
    finally:
        harness.close()
    with pytest.raises(EmbedderChanged):
        MemoryStore.open(harness.state, HashedWords())


def test_a_cut_snippet_keeps_the_words_that_matched() -> None:
    """A long turn (or a merged stretch) cut to the budget shows where the query's words are,
    not only its beginning."""
    text = " ".join(f"w{i}" for i in range(500)) + " the ibex-cobalt-81 came " + "x " * 300
    cut, truncated = snippet(text, 60, focus="where is ibex-cobalt-81")
    assert truncated
    assert "ibex-cobalt-81" in cut
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert approx_tokens(cut) <= 60
    head, _ = snippet(text, 60, focus="no such words")
    assert head.startswith("w0 w1")
