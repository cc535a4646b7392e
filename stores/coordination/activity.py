"""What one agent did in one hour: the facts an hourly summary is written from.

Built from two sources (``build_activity``): the memory store's turns for the window (what was
said; a forgotten turn has empty text and is left out) and a scan of the raw transcripts
(``stores.openclaw.usage``: tools, tokens, cost, which the turns do not keep). Decisions and
open questions are found by small, literal rules that prefer missing one to inventing one:

- a decision is a sentence that says one was made ("we decided", "let's go with", "I'll book",
  "booked", "confirmed", "agreed to", "settled on"), is not a question and holds no negation or
  condition ("not booked yet", "if it is confirmed");
- an open question is a sentence of the person's ending in a question mark that no reply of the
  agent follows in the same session within the window.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from stores.hours import HourWindow
from stores.memory.keywords import STOPWORDS
from stores.memory.records import TurnRow
from stores.openclaw.usage import TranscriptUsage

KEYWORDS = 10
MAX_LISTED = 10
#: A decision or question longer than this is cut: the note quotes it, it does not archive it.
MAX_SENTENCE_CHARS = 300
SAID = ("user", "assistant")

#: Chat words that say nothing about what an hour was about, on top of the query stopwords.
CHAT_STOPWORDS = frozenset(
    (  # noqa: SIM905 - a word list reads best as text
        "ok okay yes yeah yep no nope thanks thank please sure hi hello hey let ll ve re don didn"
        " doesn isn wasn won got get just like one also well right good great fine"
    ).split()
)
_WORD = re.compile(r"\w+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_MARK = re.compile(r"^\s*(?:[-*+>]|\d{1,3}[.)]|#{1,6})\s+")
# After . ! ? or an ellipsis followed by space; after CJK full stops even without space.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+(?=\S)|(?<=[\u3002\uff01\uff1f])")
_QUESTION_MARKS = ("?", "\uff1f", "\u061f")
_CLOSERS = "\"')]}\u201d\u2019*_ "
_DECISION = re.compile(
    r"\b(?:(?:we|i)(?:'ve| have)? decided|decided to|let's go with|let us go with"
    r"|we'll go with|we will go with|i'll book|i will book|booked|confirmed|agreed to"
    r"|we agreed|settled on)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(r"n't\b|\b(?:not|never|no|nothing|cannot|if|unless|whether)\b", re.IGNORECASE)


class EntryRef(BaseModel):
    """A transcript entry, which is unique within its session."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    entry_id: str


class HourlyActivity(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent: str
    window: HourWindow
    #: Session ids with something said in the window, first seen first.
    sessions: tuple[str, ...] = ()
    #: Turns by role: ``user``, ``assistant``, ``summary`` (a compaction's recap).
    messages_by_role: dict[str, int] = Field(default_factory=dict)
    #: Tool name -> calls, most used first.
    tools: dict[str, int] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cache_read: int = 0
    cache_write: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    keywords: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    open_questions: tuple[str, ...] = ()
    #: Every turn the summary covers, in time order: what its memory record links to.
    entries: tuple[EntryRef, ...] = ()
    #: Assistant lines or rows of the raw transcripts that could not be read.
    unreadable: int = 0

    @property
    def entry_ids(self) -> tuple[str, ...]:
        return tuple(e.entry_id for e in self.entries)

    @property
    def messages(self) -> int:
        return sum(self.messages_by_role.get(role, 0) for role in SAID)

    @property
    def is_empty(self) -> bool:
        """Nothing said by the person or the agent: such an hour gets no note. Tokens spent on
        heartbeats alone do not make an hour worth summarising."""
        return self.messages == 0

    def facts(self) -> list[str]:
        """One line per fact, for the top of a note: ``Messages: 4 user, 5 assistant``."""
        lines = [f"Sessions: {len(self.sessions)}"]
        roles = ", ".join(f"{n} {role}" for role, n in self.messages_by_role.items() if n)
        lines.append(f"Messages: {roles or 'none'}")
        if self.tools:
            used = ", ".join(f"{name} \u00d7{n}" for name, n in self.tools.items())
            lines.append(f"Tools: {used}")
        if self.tokens_in or self.tokens_out:
            cached = f", {self.cache_read:,} cached" if self.cache_read else ""
            lines.append(f"Tokens: {self.tokens_in:,} in, {self.tokens_out:,} out{cached}")
        if self.cost:
            lines.append(f"Cost: ${self.cost:.4f}")
        if self.keywords:
            lines.append(f"Topics: {', '.join(self.keywords)}")
        return lines


def build_activity(
    agent: str,
    window: HourWindow,
    turns: Sequence[TurnRow],
    usage: TranscriptUsage | None = None,
    *,
    keyword_limit: int = KEYWORDS,
) -> HourlyActivity:
    """``turns`` as ``MemoryIndex.turns_between`` returns them (time order); only the agent's
    turns inside the window with text count."""
    start, end = window.timestamps
    kept = [t for t in turns if t.agent == agent and start <= t.ts < end and t.text.strip()]
    usage = usage or TranscriptUsage()
    said = [t for t in kept if t.role in SAID]
    return HourlyActivity(
        agent=agent,
        window=window,
        sessions=tuple(dict.fromkeys(t.session_id for t in kept)),
        messages_by_role=_by_role(kept),
        tools=dict(usage.tools),
        tokens_in=usage.tokens_in,
        tokens_out=usage.tokens_out,
        cache_read=usage.cache_read,
        cache_write=usage.cache_write,
        total_tokens=usage.total_tokens,
        cost=usage.cost,
        keywords=tuple(top_keywords((t.text for t in said), keyword_limit)),
        decisions=tuple(_first_distinct(decisions(said), MAX_LISTED)),
        open_questions=tuple(_first_distinct(open_questions(said), MAX_LISTED)),
        entries=tuple(EntryRef(session_id=t.session_id, entry_id=t.entry_id) for t in kept),
        unreadable=usage.malformed,
    )


def _by_role(turns: Sequence[TurnRow]) -> dict[str, int]:
    """Counts in a fixed order (the person, the agent, recaps, anything newer) for stable notes."""
    counts = Counter(t.role for t in turns)
    order = {role: i for i, role in enumerate((*SAID, "summary"))}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning: no stopwords, filler, numbers or single letters."""
    words = (w.lower() for w in _WORD.findall(text))
    return [
        w
        for w in words
        if len(w) > 1 and not w.isdigit() and w not in STOPWORDS and w not in CHAT_STOPWORDS
    ]


def word_counts(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(content_words(text))
    return counts


def top_keywords(texts: Iterable[str], limit: int = KEYWORDS) -> list[str]:
    """The most frequent content words, ties in order of first use; a word said once is a
    keyword only while there are not enough repeated ones."""
    counts = word_counts(texts)
    order = {word: i for i, word in enumerate(counts)}
    ranked = sorted(counts, key=lambda w: (-counts[w], order[w]))
    return ranked[:limit]


def sentences(text: str) -> list[str]:
    """The sentences of a message, list marks and code blocks left out, in order."""
    found: list[str] = []
    in_code = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        content = _LIST_MARK.sub("", line).strip()
        found.extend(s.strip() for s in _SENTENCE_END.split(content) if s.strip())
    return found


def is_question(sentence: str) -> bool:
    return sentence.rstrip(_CLOSERS).endswith(_QUESTION_MARKS)


def is_decision(sentence: str) -> bool:
    plain = sentence.replace("\u2019", "'")
    return (
        _DECISION.search(plain) is not None
        and not is_question(sentence)
        and _HEDGE.search(plain) is None
    )


def decisions(turns: Iterable[TurnRow]) -> list[str]:
    return [s for t in turns if t.role in SAID for s in sentences(t.text) if is_decision(s)]


def open_questions(turns: Sequence[TurnRow]) -> list[str]:
    """The person's questions that no reply of the agent follows in the same session."""
    answered_until: dict[str, float] = {}
    for turn in turns:
        if turn.role == "assistant":
            answered_until[turn.session_id] = max(turn.ts, answered_until.get(turn.session_id, 0))
    found: list[str] = []
    for turn in turns:
        if turn.role != "user" or answered_until.get(turn.session_id, float("-inf")) > turn.ts:
            continue
        found.extend(s for s in sentences(turn.text) if is_question(s))
    return found


def clip(sentence: str, limit: int = MAX_SENTENCE_CHARS) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "\u2026"


def _first_distinct(items: Iterable[str], limit: int) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(" ".join(item.casefold().split()), clip(item))
    return list(seen.values())[:limit]
