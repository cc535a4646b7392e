"""Text that is safe to send to Telegram in HTML mode, and short enough to arrive.

Everything that did not come from this module's own templates (transcripts, search snippets,
job errors, what the person typed) goes through ``esc``: control characters and direction
overrides out, then ``& < > "`` escaped, so that a transcript cannot inject markup, break the
parse (Telegram refuses the whole message on one bad tag) or disguise itself. Splitting and
truncating never cut through a tag or an entity, and close the tags left open.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

#: Telegram's limit for one message's text, after entities are parsed; we count the markup too,
#: which errs on the short side.
MAX_MESSAGE = 4096
#: A reply longer than this many messages is cut: a command must not flood the chat.
MAX_MESSAGES = 4
ELLIPSIS = "…"

#: Bidirectional overrides and isolates: they make text display other than it reads.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TAG = re.compile(r"<(/?)([a-z]+)[^>]*>")


def clean(text: str) -> str:
    """Control characters (but newline and tab) and direction overrides removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch for ch in text if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI)
    )


def esc(text: object) -> str:
    return html.escape(clean(str(text)), quote=True)


def clip(text: str, width: int) -> str:
    """One line of at most ``width`` characters, cut on the raw text (escape afterwards)."""
    text = " ".join(clean(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + ELLIPSIS


def text_blocks(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Free text (a transcript, an answer) escaped, in pieces that each fit one message;
    cut at paragraph, then line, then word boundaries of the raw text."""
    text = clean(text).strip()
    pieces: list[str] = []
    while text:
        cut = _raw_cut(text, limit)
        pieces.append(html.escape(text[:cut].rstrip()))
        text = text[cut:].lstrip()
    return pieces


def _raw_cut(text: str, limit: int) -> int:
    """The longest prefix whose escaped form fits, ending at the best boundary available.
    ``text`` is clean already: escaping alone decides the length."""
    if len(text) <= limit and len(html.escape(text)) <= limit:
        return len(text)
    lo, hi = 1, min(len(text), limit)  # escaping only lengthens: no more raw text than that
    while lo < hi:  # the longest prefix that fits once escaped
        mid = (lo + hi + 1) // 2
        if len(html.escape(text[:mid])) <= limit:
            lo = mid
        else:
            hi = mid - 1
    for sep in ("\n\n", "\n", " "):
        at = text.rfind(sep, 0, lo)
        if at > lo // 2:
            return at + len(sep)
    return lo


def paginate(
    blocks: Iterable[str], limit: int = MAX_MESSAGE, max_messages: int = MAX_MESSAGES
) -> list[str]:
    """Well-formed HTML blocks joined by newlines into messages of at most ``limit``; a block
    too long on its own is truncated safely. Past ``max_messages`` the rest is left out, and
    the last message says so."""
    messages: list[str] = []
    current = ""
    for given in blocks:
        block = given if len(given) <= limit else truncate_html(given, limit)
        joined = f"{current}\n{block}" if current else block
        if len(joined) <= limit:
            current = joined
            continue
        messages.append(current)
        current = block
    if current:
        messages.append(current)
    if len(messages) > max_messages:
        messages = messages[:max_messages]
        note = f"\n{ELLIPSIS} (cut: too long for a chat)"
        last = messages[-1]
        messages[-1] = (
            last if len(last) + len(note) <= limit else truncate_html(last, limit - len(note))
        ) + note
    return messages


def truncate_html(fragment: str, limit: int) -> str:
    """At most ``limit`` characters of an HTML fragment, never inside a tag or an entity,
    with the tags that were open closed again and an ellipsis where text was left out."""
    if len(fragment) <= limit:
        return fragment
    stack: list[str] = []
    safe, safe_stack = 0, []
    i = 0
    while i < len(fragment):
        closing = "".join(f"</{t}>" for t in reversed(stack))
        if i + len(closing) + len(ELLIPSIS) > limit:
            break
        safe, safe_stack = i, list(stack)
        i = _advance(fragment, i, stack)
    return fragment[:safe] + ELLIPSIS + "".join(f"</{t}>" for t in reversed(safe_stack))


def _advance(fragment: str, i: int, stack: list[str]) -> int:
    """Past one character, one entity or one tag (updating the open tags)."""
    ch = fragment[i]
    if ch == "&":
        end = fragment.find(";", i)
        return end + 1 if end != -1 else i + 1
    if ch == "<":
        match = _TAG.match(fragment, i)
        if match is None:
            return i + 1
        closing, name = match.group(1), match.group(2)
        if closing and stack and stack[-1] == name:
            stack.pop()
        elif not closing:
            stack.append(name)
        return match.end()
    return i + 1
