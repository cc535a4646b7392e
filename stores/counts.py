"""Counts in words: "1 result", "2 results", "1 memory", "3 memories".

Stdlib only: ``infractl`` prints counts too, and imports nothing heavy.
"""

from __future__ import annotations

#: Nouns whose plural is not the singular plus "s".
_IRREGULAR = {
    "memory": "memories",
    "summary": "summaries",
    "entry": "entries",
    "priority": "priorities",
    "match": "matches",
    "was": "were",
}


def plural(noun: str, n: int | float) -> str:
    """``noun`` as it reads after the number ``n``."""
    if n == 1:
        return noun
    return _IRREGULAR.get(noun) or noun + "s"


def count(n: int | float, noun: str) -> str:
    """``1 result``, ``2 results``, ``0 memories``."""
    return f"{n} {plural(noun, n)}"
