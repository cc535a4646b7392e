"""What the bot sends is valid Telegram HTML whatever the input, and fits in a message."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from daemon.bot import render
from daemon.bot.messages import recommendation_html
from daemon.bot.text import (
    MAX_MESSAGE,
    MAX_MESSAGES,
    clean,
    clip,
    esc,
    paginate,
    text_blocks,
    truncate_html,
)
from tests.telegram_wire import parse_html

NASTY = (
    "<b>bold</b> & <script>alert(1)</script> &amp; &lt; 5 > 3 \"quoted\" 'single'\n"
    "*markdown* _under_ `code` [link](http://x) ~strike~ ||spoiler||\n"
    "\x00nul \x07bell \x1b[31mansi\x1b[0m \x7fdel \u202eevil\u202c \u2066iso\u2069 tab\there\r\n"
)


def test_escaped_text_parses_and_reads_as_typed_minus_controls() -> None:
    shown = parse_html(f"<b>{esc(NASTY)}</b>")
    assert "<script>alert(1)</script>" in shown
    assert "&amp; &lt; 5 > 3" in shown, "entities typed by the user stay literal"
    assert "*markdown* _under_ `code` [link](http://x)" in shown
    for bad in ("\x00", "\x07", "\x1b", "\x7f", "\u202e", "\u2066", "\r"):
        assert bad not in shown
    assert "tab\there" in shown
    assert "[31mansi" in shown, "only the control character goes, the visible rest stays"


def test_clean_keeps_newlines_and_tabs() -> None:
    assert clean("a\r\nb\rc\td\x0be") == "a\nb\nc\tde"


def test_clip_makes_one_short_line() -> None:
    assert clip("a  b\n\nc", 10) == "a b c"
    assert clip("x" * 50, 10) == "x" * 9 + "…"


@pytest.mark.parametrize("seed", range(5))
def test_long_nasty_text_splits_into_valid_messages(seed: int) -> None:
    rng = random.Random(seed)
    words = [*NASTY.split(" "), "&", "<", ">", "\n", "\n\n", "é" * 40, "x" * 5000]
    text = " ".join(rng.choice(words) for _ in range(600))
    blocks = text_blocks(text)
    assert len(blocks) > 1
    for block in blocks:
        assert len(block) <= MAX_MESSAGE
        parse_html(block)  # raises on a broken entity
    rejoined = "".join(parse_html(b) for b in blocks)
    assert "".join(rejoined.split()) == "".join(clean(text).split()), "nothing lost or doubled"


def test_text_prefers_paragraph_then_line_boundaries() -> None:
    para = "word " * 300
    text = f"{para}\n\n{para}\n\n{para}"
    first, *_ = text_blocks(text, limit=2000)
    assert first.endswith("word"), "cut at a paragraph boundary, not inside one"
    assert len(first) < 2000


def test_truncating_never_breaks_a_tag_or_entity() -> None:
    fragment = "<b>" + esc("a&b<c>" * 50) + "</b> <i>" + esc("x" * 200) + "</i>"
    for limit in range(12, len(fragment), 7):
        cut = truncate_html(fragment, limit)
        assert len(cut) <= limit
        parse_html(cut)
        assert cut.endswith(("…</b>", "…</i>", "…", "</b>", "</i>"))


def test_pagination_packs_blocks_and_caps_the_flood() -> None:
    blocks = [f"<b>{n}</b> " + esc("<line>" * 100) for n in range(500)]
    pages = paginate(blocks)
    assert len(pages) == MAX_MESSAGES
    for page in pages:
        assert len(page) <= MAX_MESSAGE
        parse_html(page)
    assert pages[-1].endswith("(cut: too long for a chat)")
    assert paginate(["one", "two"]) == ["one\ntwo"]


def test_rendered_api_answers_parse_with_hostile_values() -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    hostile = "<i>x</i> & \x1b"
    run = {
        "run_id": 1,
        "job": "ingest",
        "status": "failed",
        "duration_ms": 1200.0,
        "started_at": "2026-11-01T11:00:00+00:00",
        "finished_at": None,
        "error_message": hostile,
        "stats": {},
    }
    search = {
        "query": hostile,
        "results": [
            {
                "text": hostile * 100,
                "source": {"agent_id": "main", "kind": "turns", "started_at": now.isoformat()},
            }
        ],
    }
    health = {"status": "degraded", "checks": [{"name": "d<b>", "status": "ok", "detail": hostile}]}
    for blocks in (
        render.runs({"runs": [run]}, now),
        render.search(search, UTC),
        render.search({**search, "results": []}, UTC),
        render.health(health),
        render.failure(hostile),
        render.transcript(hostile, language="en", duration_s=3.2),
    ):
        for page in paginate(blocks):
            assert "<i>x</i> &amp;" not in parse_html(page)
            assert "\x1b" not in parse_html(page)


def test_search_result_shows_agent_date_and_a_short_snippet() -> None:
    result = {
        "text": "we agreed on Tuesday " * 50,
        "source": {"agent_id": "work", "kind": "turns", "started_at": "2026-03-08T23:30:00+00:00"},
    }
    (block,) = render.search({"query": "when", "results": [result]}, UTC)
    shown = parse_html(block)
    assert shown.startswith("1. work · 2026-03-08 · turns\nwe agreed on Tuesday")
    assert len(shown) < 300


def test_a_recommendation_is_one_message_however_long() -> None:
    text = recommendation_html("Sleep <earlier>", "zzz & " * 5000, "synthesize")
    assert len(text) <= MAX_MESSAGE
    shown = parse_html(text)
    assert shown.startswith("💡 Sleep <earlier>\n\nzzz & zzz")
    assert shown.endswith("…\n\nfrom synthesize")
    long_title = recommendation_html("<&> " * 3000, "the body", "synthesize")
    assert len(long_title) <= MAX_MESSAGE, "a title is clipped, not a reason to fail the send"
    assert parse_html(long_title).endswith("…\n\nthe body\n\nfrom synthesize")
