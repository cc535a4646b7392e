"""The summary written without a language model: the hour's own key sentences and keywords.

Used when no API key is configured or the API fails, so it must never fail itself and must say
the same thing every time for the same hour. A sentence scores by how often the hour repeats its
words (frequency summed over its distinct content words, divided by the square root of their
number, so a long sentence is not preferred just for being long). Decisions come first, then the
person's open questions, then the best scoring sentences; the pick is capped at a few sentences
and about 120 words, and shown in the order it was said.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from stores.coordination.activity import (
    SAID,
    HourlyActivity,
    clip,
    content_words,
    is_decision,
    sentences,
    word_counts,
)
from stores.memory.records import TurnRow

MAX_SENTENCES = 5
MAX_WORDS = 120
#: Words are counted by spaces, which a Chinese or Japanese sentence has none of: characters cap.
MAX_CHARS = 800


@dataclass(frozen=True)
class ExtractiveSummary:
    #: Markdown: one bullet per key sentence with who said it, then a keywords line.
    text: str
    key_sentences: tuple[str, ...]
    keywords: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        return not self.key_sentences


@dataclass(frozen=True)
class _Candidate:
    position: int
    sentence: str
    speaker: str
    #: 0 a decision, 1 an open question, 2 anything else: lower is picked first.
    tier: int
    score: float

    @property
    def words(self) -> int:
        return len(self.sentence.split())


def extractive_summary(
    activity: HourlyActivity,
    turns: Sequence[TurnRow],
    *,
    max_sentences: int = MAX_SENTENCES,
    max_words: int = MAX_WORDS,
) -> ExtractiveSummary:
    """Key sentences of ``turns`` (those of ``activity``'s agent and window count)."""
    start, end = activity.window.timestamps
    said = [
        t
        for t in turns
        if t.agent == activity.agent and start <= t.ts < end and t.role in SAID and t.text.strip()
    ]
    candidates = _candidates(said, activity)
    chosen = _pick(candidates, max_sentences, max_words)
    keywords = tuple(activity.keywords)
    lines = [f"- {c.speaker}: {c.sentence}" for c in chosen]
    if keywords and lines:
        lines += ["", f"Keywords: {', '.join(keywords)}"]
    return ExtractiveSummary("\n".join(lines), tuple(c.sentence for c in chosen), keywords)


def _candidates(said: Sequence[TurnRow], activity: HourlyActivity) -> list[_Candidate]:
    counts = word_counts(t.text for t in said)
    questions = {_normal(q) for q in activity.open_questions}
    found: list[_Candidate] = []
    seen: set[str] = set()
    for turn in said:
        speaker = turn.speaker or turn.role.capitalize()
        for sentence in sentences(turn.text):
            key = _normal(sentence)
            if key in seen:
                continue
            seen.add(key)
            tier = 0 if is_decision(sentence) else 1 if key in questions else 2
            found.append(_Candidate(len(found), sentence, speaker, tier, _score(sentence, counts)))
    return found


def _score(sentence: str, counts: Counter[str]) -> float:
    words = set(content_words(sentence))
    if not words:
        return 0.0
    return sum(counts[w] for w in words) / math.sqrt(len(words))


def _pick(candidates: Sequence[_Candidate], max_sentences: int, max_words: int) -> list[_Candidate]:
    """Best first within the budget, then back in the order they were said. A sentence with no
    word worth a keyword ("Ok.", "Thanks!") is picked only when the hour has nothing else."""
    ranked = sorted(candidates, key=lambda c: (c.tier, -c.score, c.position))
    worthy = [c for c in ranked if c.tier < 2 or c.score > 0] or ranked[:1]
    chosen: list[_Candidate] = []
    words = chars = 0
    for candidate in worthy:
        if len(chosen) >= max_sentences:
            break
        if words + candidate.words <= max_words and chars + len(candidate.sentence) <= MAX_CHARS:
            chosen.append(candidate)
            words += candidate.words
            chars += len(candidate.sentence)
    if not chosen and worthy:
        chosen.append(_shortened(worthy[0], max_words))
    return sorted(chosen, key=lambda c: c.position)


def _shortened(candidate: _Candidate, max_words: int) -> _Candidate:
    """The best sentence alone is over the budget: as many of its first words as fit, or its
    first characters if it has no spaces to cut at (Chinese, Japanese)."""
    kept: list[str] = []
    length = -1
    for word in candidate.sentence.split()[:max_words]:
        if length + 1 + len(word) > MAX_CHARS - 1:
            break
        kept.append(word)
        length += 1 + len(word)
    text = " ".join(kept) or candidate.sentence[: MAX_CHARS - 1]
    if text != candidate.sentence:
        text += "\u2026"
    return _Candidate(candidate.position, text, candidate.speaker, candidate.tier, candidate.score)


def _normal(sentence: str) -> str:
    return " ".join(clip(sentence).casefold().split())
