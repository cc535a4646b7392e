"""The summary written without a language model: deterministic, short, decisions first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.extractive import MAX_CHARS, MAX_SENTENCES, ExtractiveSummary, extractive_summary
from stores.coordination.activity import build_activity
from stores.hours import hour_window_at
from stores.memory.records import TurnRow

T0 = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
WINDOW = hour_window_at(T0, UTC)


def _turns(*said: tuple[str, str], session: str = "s1") -> list[TurnRow]:
    rows = []
    for i, (role, text) in enumerate(said):
        ts = (T0 + timedelta(minutes=i + 1)).timestamp()
        speaker = {"user": "Dana", "assistant": "Juniper"}.get(role)
        rows.append(TurnRow("main", session, i, f"e{i:03d}", None, ts, role, speaker, text, "x"))
    return rows


def _summary(turns: list[TurnRow], max_sentences: int = MAX_SENTENCES) -> ExtractiveSummary:
    activity = build_activity("main", WINDOW, turns)
    return extractive_summary(activity, turns, max_sentences=max_sentences)


CONVERSATION = _turns(
    ("user", "Hi!"),
    ("user", "I want to plan the garden for spring. The tomatoes did badly last year."),
    ("assistant", "Last year the tomatoes got too little sun by the hedge."),
    ("user", "Then the tomatoes go along the south fence. What about the basil?"),
    ("assistant", "Basil likes the same sun as tomatoes; plant it between them."),
    ("user", "Let's go with San Marzano tomatoes along the south fence."),
    ("assistant", "Noted. I can order seeds from the usual shop."),
    ("user", "Should I also try peppers this year?"),
)


def test_decisions_and_open_questions_come_first_in_the_order_they_were_said() -> None:
    summary = _summary(CONVERSATION, max_sentences=3)

    assert summary.key_sentences == (
        "Then the tomatoes go along the south fence.",
        "Let's go with San Marzano tomatoes along the south fence.",
        "Should I also try peppers this year?",
    )
    assert summary.keywords[0] == "tomatoes"
    assert summary.text.splitlines() == [
        "- Dana: Then the tomatoes go along the south fence.",
        "- Dana: Let's go with San Marzano tomatoes along the south fence.",
        "- Dana: Should I also try peppers this year?",
        "",
        f"Keywords: {', '.join(summary.keywords)}",
    ]


def test_the_same_hour_gives_the_same_summary() -> None:
    assert _summary(CONVERSATION) == _summary(list(CONVERSATION))


def test_filler_is_never_a_key_sentence_while_there_is_something_else() -> None:
    summary = _summary(CONVERSATION)

    assert "Hi!" not in summary.key_sentences
    assert "Noted." not in summary.key_sentences
    assert len(summary.key_sentences) == 5


def test_the_summary_stays_within_about_120_words() -> None:
    long = " ".join(f"word{i} tomatoes" for i in range(40)) + "."
    turns = _turns(
        *[("user", long)] * 1, *[("assistant", f"Tomatoes fact {i}: {long}") for i in range(5)]
    )

    summary = _summary(turns)

    words = sum(len(s.split()) for s in summary.key_sentences)
    assert 0 < words <= 120
    assert len(summary.key_sentences) == 1


@pytest.mark.parametrize("word", ["w", "gardening", "\u5927" * 1000])
def test_one_sentence_longer_than_the_budget_is_cut_not_dropped(word: str) -> None:
    said = [f"{word}{i}" for i in range(300)]

    summary = _summary(_turns(("user", " ".join(said) + ".")))

    (only,) = summary.key_sentences
    assert only.endswith("\u2026")
    assert len(only) <= MAX_CHARS
    kept = only.removesuffix("\u2026").split()
    assert 0 < len(kept) <= 120
    if len(word) < 1000:  # cut between words: whole words, the first ones
        assert kept == said[: len(kept)]
    if word == "w":  # short words: the word budget is what cuts
        assert len(kept) == 120


def test_a_one_turn_hour_and_a_filler_only_hour() -> None:
    one = _summary(_turns(("user", "Remind me to call Mira tonight.")))
    filler = _summary(_turns(("user", "Ok."), ("assistant", "Thanks!")))

    assert one.key_sentences == ("Remind me to call Mira tonight.",)
    assert one.keywords == ("remind", "call", "mira", "tonight")
    assert filler.key_sentences == ("Ok.",)
    assert filler.text == "- Dana: Ok."


def test_an_hour_without_words_has_an_empty_summary() -> None:
    summary = _summary([])

    assert summary.is_empty
    assert (summary.text, summary.key_sentences, summary.keywords) == ("", (), ())


def test_unicode_text_is_summarised_and_kept_whole() -> None:
    turns = _turns(
        (
            "user",
            "Wir haben entschieden: Die Tomaten kommen an den Südzaun. Die Tomaten brauchen Sonne.",
        ),
        ("assistant", "明天我们去里斯本。里斯本的天气很好。"),
        ("user", "Où est la clé du garage ?"),
    )

    summary = _summary(turns)

    assert "明天我们去里斯本。" in summary.key_sentences
    assert "Où est la clé du garage ?" in summary.key_sentences
    assert "tomaten" in summary.keywords
    assert all(s in summary.text for s in summary.key_sentences)


def test_duplicate_sentences_appear_once_and_summaries_and_other_agents_do_not_count() -> None:
    turns = _turns(
        ("user", "Book the tomato seeds."),
        ("user", "Book the tomato seeds."),
        ("summary", "## Progress\n- Earlier: decided to repaint the shed."),
    )
    turns.append(
        TurnRow(
            "work", "s9", 0, "w1", None, T0.timestamp() + 5, "user", None, "Quarterly report.", "x"
        )
    )

    summary = _summary(turns)

    assert summary.key_sentences == ("Book the tomato seeds.",)
