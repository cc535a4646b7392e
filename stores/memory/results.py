"""From ranked chunks to what a search returns: neighbours merged, within the token budget.

Turn windows overlap (a new one every ``stride`` turns), so the best matches of a question are
often neighbouring windows of one conversation. Returned one by one they would repeat turns and
crowd other conversations out of the top k; merged into one stretch of the session they cost
fewer tokens and leave room for more places. A merged stretch stays short (``MAX_SPAN``) so a
result remains a snippet, not a whole session.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stores.memory.chunking import TURNS, window_chunks
from stores.memory.models import ConversationMetadata, VectorSearchResult
from stores.memory.records import Chunk

if TYPE_CHECKING:
    from stores.memory.index import MemoryIndex
    from stores.memory.records import SearchQuery

#: The longest stretch of one session a merged result covers, in turns.
MAX_SPAN = 8


def approx_tokens(text: str) -> int:
    """Words x 1.3: cheap, and the same measure the retrieval benchmark scores with."""
    return math.ceil(len(text.split()) * 1.3)


@dataclass
class Group:
    """One result: a chunk, or a stretch of a session made of several windows."""

    id: str
    score: float
    chunk: Chunk
    ids: list[str] = field(default_factory=list)
    lo: int | None = None
    hi: int | None = None


def merge_neighbours(
    ranked: Sequence[tuple[str, float]], chunks: dict[str, Chunk], index: MemoryIndex, k: int
) -> list[Group]:
    """The top ``k`` results in rank order, windows of a session that overlap or touch an
    earlier result folded into it (up to ``MAX_SPAN`` turns)."""
    spans = _spans(index, [chunks[cid] for cid, _ in ranked if chunks[cid].kind == TURNS])
    groups: list[Group] = []
    for cid, score in ranked:
        chunk = chunks[cid]
        span = spans.get(cid)
        target = _joinable(groups, chunk, span) if span else None
        if target is not None and span is not None:
            target.ids.append(cid)
            target.lo, target.hi = _union((target.lo, target.hi), span)
            continue
        if len(groups) == k:
            break
        lo, hi = span if span else (None, None)
        groups.append(Group(cid, score, chunk, [cid], lo, hi))
    for group in groups:
        if len(group.ids) > 1:
            group.chunk = _stretch(index, group)
    return groups


def _union(a: tuple[int | None, int | None], b: tuple[int, int]) -> tuple[int, int]:
    lo, hi = a
    return (b[0] if lo is None else min(lo, b[0])), (b[1] if hi is None else max(hi, b[1]))


def _joinable(groups: list[Group], chunk: Chunk, span: tuple[int, int]) -> Group | None:
    for group in groups:
        if (
            group.lo is None
            or group.hi is None
            or group.chunk.agent != chunk.agent
            or group.chunk.session_id != chunk.session_id
        ):
            continue
        touches = span[0] <= group.hi + 1 and span[1] >= group.lo - 1
        if touches and max(group.hi, span[1]) - min(group.lo, span[0]) < MAX_SPAN:
            return group
    return None


def _spans(index: MemoryIndex, windows: list[Chunk]) -> dict[str, tuple[int, int]]:
    """Each window's first and last turn position in its session."""
    positions = index.turn_positions(
        [(c.agent or "", c.session_id or "", list(c.entry_ids)) for c in windows]
    )
    spans = {}
    for chunk in windows:
        places = [
            positions.get((chunk.agent or "", chunk.session_id or "", e)) for e in chunk.entry_ids
        ]
        known = [p for p in places if p is not None]
        if known:
            spans[chunk.id] = (min(known), max(known))
    return spans


def _stretch(index: MemoryIndex, group: Group) -> Chunk:
    chunk = group.chunk
    assert group.lo is not None
    assert group.hi is not None
    turns = index.session_turns(
        chunk.agent or "", chunk.session_id or "", from_idx=group.lo, to_idx=group.hi
    )
    made = window_chunks(
        turns, range(group.lo, group.lo + 1), group.hi - group.lo + 1, chunk.source
    )
    return made[0] if made else chunk


def budgeted(
    groups: Sequence[Group], query: SearchQuery, vector_ids: list[str], keyword_ids: list[str]
) -> list[VectorSearchResult]:
    """Results in order, skipping ones whose entries are already shown, until k or the token
    budget is reached; a long one is cut to its share of the budget."""
    vector_rank = {cid: i + 1 for i, cid in enumerate(vector_ids)}
    keyword_rank = {cid: i + 1 for i, cid in enumerate(keyword_ids)}
    share = max(query.token_budget // max(query.k, 1) * 2, 60)
    results: list[VectorSearchResult] = []
    shown: set[str] = set()
    spent = 0
    for group in groups:
        chunk = group.chunk
        if chunk.entry_ids and shown.issuperset(chunk.entry_ids):
            continue
        text, truncated = snippet(
            chunk.text, min(share, query.token_budget - spent), focus=query.text
        )
        tokens = approx_tokens(text)
        if tokens == 0:
            break
        results.append(
            VectorSearchResult(
                id=group.id,
                text=text,
                score=round(group.score, 6),
                vector_rank=min(
                    (vector_rank[i] for i in group.ids if i in vector_rank), default=None
                ),
                keyword_rank=min(
                    (keyword_rank[i] for i in group.ids if i in keyword_rank), default=None
                ),
                tokens=tokens,
                truncated=truncated,
                source=ConversationMetadata.of(chunk),
            )
        )
        shown.update(chunk.entry_ids)
        spent += tokens
        if len(results) >= query.k or spent >= query.token_budget:
            break
    return results


def snippet(text: str, max_tokens: int, focus: str = "") -> tuple[str, bool]:
    """``text`` within ``max_tokens``: the stretch of it with the most of ``focus``'s words (a
    long turn or a merged stretch may hold the match far from its start), cuts marked."""
    if max_tokens <= 0:
        return "", True
    if approx_tokens(text) <= max_tokens:
        return text, False
    words = text.split()
    keep = int(max_tokens / 1.3)
    # The marks are glued to the end words, so the snippet's tokens stay within max_tokens.
    while keep > 0 and approx_tokens(" ".join(words[:keep])) > max_tokens:
        keep -= 1
    if not keep:
        return "", True
    start = _best_start(words, keep, _terms(focus))
    piece = words[start : start + keep]
    if start > 0:
        piece[0] = "…" + piece[0]
    if start + keep < len(words):
        piece[-1] += "…"
    return " ".join(piece), True


_WORD = re.compile(r"\w+")


def _terms(query: str) -> set[str]:
    return {w for w in _WORD.findall(query.lower()) if len(w) > 2 or w.isdigit()}


def _best_start(words: list[str], keep: int, terms: set[str]) -> int:
    """Where a run of ``keep`` words holds the most query terms; the earliest such run."""
    if not terms or keep >= len(words):
        return 0
    hits = [int(bool(terms.intersection(_WORD.findall(w.lower())))) for w in words]
    best = current = sum(hits[:keep])
    start = 0
    for i in range(1, len(words) - keep + 1):
        current += hits[i + keep - 1] - hits[i - 1]
        if current > best:
            best, start = current, i
    if not best:
        return 0
    # Centred on its matches when that keeps them all: context on both sides reads better.
    found = [i for i in range(start, start + keep) if hits[i]]
    centred = min(max((found[0] + found[-1]) // 2 - keep // 2, 0), len(words) - keep)
    return centred if sum(hits[centred : centred + keep]) == best else start
