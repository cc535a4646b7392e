"""The feedback store, the outbox jobs use, and the signed data behind the buttons."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.bot.callbacks import KEY_FILE, BadCallback, CallbackSigner
from jobs.outbox import StoreOutbox
from stores.coordination.feedback import (
    Choice,
    ChoiceOutcome,
    FeedbackStore,
    RecommendationState,
)
from tests.support import REPO

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    yield store
    store.close()


def _sent(store: FeedbackStore, title: str = "Walk more", at: datetime = T0) -> tuple[str, int]:
    rec = store.add_recommendation(title, "Ten minutes after lunch.", "synthesize", at)
    rec = store.start_delivery(rec.id, at)
    store.add_delivery(rec.id, rec.round, 42, 1000 + rec.round, at)
    return rec.id, rec.round


def test_a_recommendation_waits_until_delivered(store: FeedbackStore) -> None:
    rec = store.add_recommendation("Walk more", "Ten minutes.", "synthesize", T0)
    assert rec.state is RecommendationState.PENDING
    assert len(rec.id) == 10
    assert [r.id for r in store.pending()] == [rec.id]
    rec_id, _ = _sent(store, "Other")
    got = store.get(rec_id)
    assert got is not None
    assert (got.state, got.round) == (RecommendationState.SENT, 1)
    assert [(d.chat_id, d.message_id, d.round) for d in got.deliveries] == [(42, 1001, 1)]
    assert [r.id for r in store.pending()] == [rec.id]


def test_a_known_id_is_not_sent_twice(store: FeedbackStore) -> None:
    first = store.add_recommendation("A", "a", "synthesize", T0, id="week-45-sleep")
    again = store.add_recommendation("A changed", "b", "synthesize", T0, id="week-45-sleep")
    assert again == first
    with pytest.raises(ValueError, match="not a recommendation id"):
        store.add_recommendation("A", "a", "synthesize", T0, id="Has Spaces")


def test_one_choice_per_round_and_the_rest_changes_nothing(store: FeedbackStore) -> None:
    rec_id, round = _sent(store)
    done = store.record_choice(rec_id, round, Choice.USEFUL, 42, T0)
    assert done.outcome is ChoiceOutcome.RECORDED
    assert done.recommendation is not None
    assert done.recommendation.state is RecommendationState.ANSWERED
    replay = store.record_choice(rec_id, round, Choice.NOT_USEFUL, 42, T0 + timedelta(seconds=5))
    assert replay.outcome is ChoiceOutcome.ALREADY
    assert store.record_choice(rec_id, round + 1, Choice.USEFUL, 42, T0).outcome is (
        ChoiceOutcome.STALE
    )
    assert store.record_choice("nosuch", 1, Choice.USEFUL, 42, T0).outcome is (
        ChoiceOutcome.UNKNOWN
    )
    entries = store.feedback_since(T0 - timedelta(days=7))
    assert [(e.recommendation_id, e.choice, e.user_id, e.at) for e in entries] == [
        (rec_id, Choice.USEFUL, 42, T0)
    ]
    got = store.get(rec_id)
    assert got is not None
    assert got.choice is Choice.USEFUL


def test_a_pending_recommendation_cannot_be_answered(store: FeedbackStore) -> None:
    rec = store.add_recommendation("A", "a", "synthesize", T0)
    assert store.record_choice(rec.id, 0, Choice.USEFUL, 42, T0).outcome is ChoiceOutcome.STALE


def test_a_snoozed_one_comes_back_when_due_as_a_new_round(store: FeedbackStore) -> None:
    rec_id, round = _sent(store)
    snoozed = store.record_choice(rec_id, round, Choice.SNOOZE, 42, T0)
    assert snoozed.recommendation is not None
    assert snoozed.recommendation.snooze_until == T0 + timedelta(days=1)
    assert store.due_snoozed(T0 + timedelta(hours=23)) == []
    (due,) = store.due_snoozed(T0 + timedelta(days=1))
    again = store.start_delivery(due.id, T0 + timedelta(days=1))
    assert (again.round, again.state, again.snooze_until) == (2, RecommendationState.SENT, None)
    old_button = store.record_choice(rec_id, round, Choice.USEFUL, 42, T0 + timedelta(days=1))
    assert old_button.outcome is ChoiceOutcome.STALE
    later = T0 + timedelta(days=1, minutes=1)
    assert store.record_choice(rec_id, 2, Choice.USEFUL, 42, later).outcome is (
        ChoiceOutcome.RECORDED
    )
    assert [e.choice for e in store.feedback_since(T0)] == [Choice.SNOOZE, Choice.USEFUL]


def test_archived_ones_are_kept_and_listed(store: FeedbackStore) -> None:
    rec_id, round = _sent(store)
    _sent(store, "Keep me out of the archive")
    store.record_choice(rec_id, round, Choice.ARCHIVE, 42, T0)
    (archived,) = store.list(RecommendationState.ARCHIVED)
    assert (archived.id, archived.title) == (rec_id, "Walk more")
    assert len(store.list()) == 2
    stats = store.stats().to_dict()
    assert stats["recommendations"] == 2
    assert stats["by_state"] == {"archived": 1, "sent": 1}
    assert stats["by_choice"] == {"archive": 1}
    assert (stats["delivered"], stats["answered"]) == (2, 1)


def test_an_undelivered_round_goes_back_to_pending(store: FeedbackStore) -> None:
    rec = store.add_recommendation("A", "a", "synthesize", T0)
    started = store.start_delivery(rec.id, T0)
    store.undeliverable(rec.id, started.round)
    assert [r.id for r in store.pending()] == [rec.id]


async def test_jobs_recommend_through_the_outbox(store: FeedbackStore) -> None:
    woken: list[bool] = []
    alerts: list[tuple[str, str]] = []

    async def sink(key: str, text: str) -> None:
        alerts.append((key, text))

    outbox = StoreOutbox(store, lambda: T0, wake=lambda: woken.append(True), alert_sink=sink)
    rec = await outbox.recommend("Title", "Body", source_job="synthesize")
    assert store.pending() == [rec]
    assert woken == [True]
    await outbox.alert("disk", "low")
    assert alerts == [("disk", "low")]
    await StoreOutbox(store, lambda: T0).alert("disk", "nobody hears this")  # only logged


def test_button_data_is_short_signed_and_checked(tmp_path: Path) -> None:
    signer = CallbackSigner.for_state_dir(tmp_path)
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert CallbackSigner.for_state_dir(tmp_path).encode("abc", 1, Choice.USEFUL) == (
        signer.encode("abc", 1, Choice.USEFUL)
    ), "the key persists across restarts"
    data = signer.encode("a" * 24, 99, Choice.NOT_USEFUL)
    assert len(data.encode()) <= 64
    tap = signer.decode(data)
    assert (tap.recommendation_id, tap.round, tap.choice) == ("a" * 24, 99, Choice.NOT_USEFUL)
    swapped = data.replace(":n:", ":u:")
    for bad, reason in [
        (swapped, "tampered"),
        (data[:-1] + ("A" if data[-1] != "A" else "B"), "tampered"),
        (CallbackSigner(b"k" * 32).encode("abc", 1, Choice.USEFUL), "tampered"),
        ("fb:abc:1:x:" + "A" * 16, "malformed"),
        ("hello", "malformed"),
        ("", "malformed"),
        (None, "malformed"),
    ]:
        with pytest.raises(BadCallback) as caught:
            signer.decode(bad)
        assert caught.value.reason == reason


def test_a_damaged_key_is_replaced(tmp_path: Path) -> None:
    old = CallbackSigner.for_state_dir(tmp_path).encode("abc", 1, Choice.USEFUL)
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(BadCallback, match="tampered"):
        CallbackSigner.for_state_dir(tmp_path).decode(old)


PROBE = """
import json, sys
before = set(sys.modules)
import daemon.cli.main
code = daemon.cli.main.main(["--socket", sys.argv[1], "feedback", sys.argv[2]])
loaded = {name.partition(".")[0] for name in set(sys.modules) - before}
print(json.dumps({"code": code, "loaded": sorted(loaded)}))
"""


@pytest.mark.parametrize("action", ["list", "stats"])
def test_infractl_feedback_stays_light(tmp_path: Path, action: str) -> None:
    """Like every infractl command: no telegram, pydantic or stores loaded to ask the socket."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "none.sock"), action],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    result = json.loads(done.stdout)
    assert result["code"] == 3, "no daemon: unavailable"
    heavy = {"telegram", "httpx", "pydantic", "structlog", "stores", "sqlite3", "rich"}
    assert heavy.isdisjoint(result["loaded"])
