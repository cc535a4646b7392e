"""Keyword retrieval that stays fast on a big index.

FTS5 ranks every document an OR query matches: on a large index, a question made of common
words ("when did I buy the tickets at the station") matches a quarter of everything and costs
a hundred milliseconds. So the query is planned from each word's document frequency (read from
the index's own vocabulary, in O(1) per word): while the words together match few documents,
the plain OR query runs; past ``POSTINGS_BUDGET`` the words are first required together (AND,
cheap: the rarest list drives), then in pairs, rarest first, and only the rare words that fit
the budget are OR-ed. Rare words carry most of BM25's weight anyway, and every plan's cost is
bounded.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable

from stores.memory.keywords import keywords

#: Postings an OR query may rank: about 15 ms of FTS5 work on a laptop core.
POSTINGS_BUDGET = 12_000
#: At most this many pairs are tried when all the words together match too little.
MAX_PAIRS = 3
#: Words whose terms are remembered, so a repeated word costs no tokenizer round trip.
STEM_CACHE = 4096
#: How long a term's document frequency is trusted; it only steers the plan, so a minute-old
#: count is as good as a fresh one, and a lookup costs ~0.7 ms at 100k chunks.
DF_TTL_S = 60.0

Run = Callable[[str, int], list[str]]


def quoted(words: list[str]) -> list[str]:
    return [f'"{w}"' for w in words]


class KeywordPlanner:
    """Document frequencies of query words, from the FTS5 vocabulary of ``chunks_fts``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._terms: dict[str, tuple[str, ...]] = {}
        self._df: dict[str, tuple[float, int]] = {}
        # Temporary tables: the index's vocabulary, and a scratch table whose tokenizer turns
        # a query's words into the terms (porter stems) the vocabulary holds.
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab"
            " USING fts5vocab(main, 'chunks_fts', 'row')"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stemmer"
            " USING fts5(word, tokenize = 'porter unicode61')"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stemmer_terms"
            " USING fts5vocab(temp, 'stemmer', 'instance')"
        )

    def doc_freqs(self, words: list[str]) -> dict[str, int]:
        """Documents containing each word (for a word of several terms, its rarest term)."""
        terms = self._terms_of(words)
        found: dict[str, int] = {}
        for word in words:
            counts = [self._doc_freq(term) for term in terms.get(word, ())]
            found[word] = min(counts, default=0)
        return found

    def _doc_freq(self, term: str) -> int:
        now = time.monotonic()
        cached = self._df.get(term)
        if cached is not None and now - cached[0] < DF_TTL_S:
            return cached[1]
        if len(self._df) > STEM_CACHE:
            self._df.clear()
        row = self._conn.execute("SELECT doc FROM temp.chunks_vocab WHERE term = ?", (term,))
        count = int((row.fetchone() or (0,))[0])
        self._df[term] = (now, count)
        return count

    def _terms_of(self, words: list[str]) -> dict[str, tuple[str, ...]]:
        new = [w for w in words if w not in self._terms]
        if new:
            if len(self._terms) > STEM_CACHE:
                self._terms.clear()
            conn = self._conn
            conn.execute("DELETE FROM temp.stemmer")
            conn.executemany(
                "INSERT INTO temp.stemmer (rowid, word) VALUES (?, ?)", list(enumerate(new))
            )
            made: dict[str, list[str]] = {w: [] for w in new}
            for index, term in conn.execute("SELECT doc, term FROM temp.stemmer_terms"):
                made[new[index]].append(term)
            self._terms.update((w, tuple(t)) for w, t in made.items())
        return {w: self._terms[w] for w in words}

    def search(self, text: str, limit: int, run: Run) -> list[str]:
        words = keywords(text)
        if not words:
            return []
        df = self.doc_freqs(words)
        if sum(df.values()) <= POSTINGS_BUDGET:
            return run(" OR ".join(quoted(words)), limit)
        return _bounded(sorted((w for w in words if df[w]), key=df.__getitem__), df, limit, run)


def _bounded(words: list[str], df: dict[str, int], limit: int, run: Run) -> list[str]:
    """All the words, then pairs of them, then the rare ones that fit the budget, OR-ed."""
    found: dict[str, None] = {}
    for match in _plan(words, df):
        if len(found) >= limit // 2:  # enough to fuse with the vector neighbours
            break
        found.update(dict.fromkeys(run(match, limit)))
    if not found:  # one very common word alone: rank it after all, rather than find nothing
        found.update(dict.fromkeys(run(quoted(words[:1])[0], limit)))
    return list(found)[:limit]


def _plan(words: list[str], df: dict[str, int]) -> list[str]:
    """The MATCH expressions to try in turn; ``words`` are rarest first."""
    plan = [" AND ".join(quoted(words))] if len(words) > 1 else []
    if len(words) > 2:
        pairs = list(itertools.combinations(words, 2))[:MAX_PAIRS]
        plan += [" AND ".join(quoted(list(pair))) for pair in pairs]
    rare: list[str] = []
    for word in words:
        if sum(df[w] for w in rare) + df[word] > POSTINGS_BUDGET:
            break
        rare.append(word)
    if rare:
        plan.append(" OR ".join(quoted(rare)))
    return plan
