"""Keyword queries for SQLite FTS5: the informative words of a question, safely quoted."""

from __future__ import annotations

import re

#: Words too common to say anything in a keyword query ("when did she go to the ...").
STOPWORDS = frozenset(
    (  # noqa: SIM905 - a word list reads best as text
        "a about after again all also am an and any are as at be because been before being both"
        " but by can could did do does doing done for from had has have having he her here hers"
        " him his how i if in into is it its itself just me more most my no nor not now of on"
        " once only or other our ours out over own same she should so some such than that the"
        " their theirs them then there these they this those through to too under until up very"
        " was we were what when where which while who whom why will with would you your yours"
        " yourself"
    ).split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def keywords(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stopwords and one-letter words, first seen first."""
    words = (w.lower() for w in _WORD.findall(text))
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS and len(w) > 1]


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression that cannot be a syntax error: quoted words, OR-ed together."""
    return " OR ".join(f'"{w}"' for w in keywords(text))
