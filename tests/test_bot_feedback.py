"""Recommendations with buttons, end to end in one process: sent by a job's outbox, tapped in
Telegram, answered at once, the message edited, the choice stored once, snoozed ones back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.bot.callbacks import CallbackSigner
from daemon.supervisor import Supervisor
from stores.coordination.feedback import Choice, Recommendation
from tests.bot_support import OWNER, Clock, bot_of, settle, supervised
from tests.fake_telegram import Call, FakeTelegram, running


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from running()


async def _recommend(sup: Supervisor, tg: FakeTelegram, title: str = "Walk <more>") -> Call:
    outbox = sup.job_context.outbox
    assert outbox is not None
    rec = await outbox.recommend(title, "Ten minutes & no phone.", source_job="synthesize")
    return await _delivered(tg, rec.id)


async def _delivered(tg: FakeTelegram, rec_id: str, round: int = 1) -> Call:
    prefix = f"fb:{rec_id}:{round}:"

    def sent() -> Call | None:
        return tg.find(
            "sendMessage",
            lambda c: c.buttons[0]["callback_data"].startswith(prefix) if c.buttons else False,
        )

    found: Call = await settle(sent, what=f"recommendation {rec_id} round {round}")
    return found


def _button(call: Call, label_start: str) -> str:
    (data,) = [b["callback_data"] for b in call.buttons if b["text"].startswith(label_start)]
    return str(data)


def _rec_id(call: Call) -> str:
    return _button(call, "👍").split(":")[1]


async def _tap(tg: FakeTelegram, call: Call, data: str, user_id: int = OWNER) -> str:
    """Tap a button of the message ``call`` sent; the text the bot answered the tap with."""
    query_id = tg.tap(
        data, user_id=user_id, chat_id=call.params["chat_id"], message_id=call.result["message_id"]
    )
    answered: Call = await settle(
        lambda: tg.find("answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id)
    )
    return str(answered.params.get("text", ""))


async def _entries(sup: Supervisor) -> list[Any]:
    assert sup.job_context.feedback is not None
    return sup.job_context.feedback.feedback_since(sup.clock() - timedelta(days=30))


async def test_the_whole_button_round_trip(root: Path, tg: FakeTelegram) -> None:
    async with supervised(root, tg) as sup:
        sent = await _recommend(sup, tg)
        assert sent.params["chat_id"] == OWNER
        assert sent.text == "💡 Walk <more>\n\nTen minutes & no phone.\n\nfrom synthesize"
        assert [b["text"] for b in sent.buttons] == [
            "👍 useful",
            "👎 not useful",
            "🗄 archive",
            "⏰ snooze",
        ]
        assert all(len(b["callback_data"].encode()) <= 64 for b in sent.buttons)

        assert await _tap(tg, sent, _button(sent, "👍")) == "Noted: useful."
        edit = await settle(lambda: tg.find("editMessageText"))
        assert edit.params["message_id"] == sent.result["message_id"]
        assert edit.text.endswith("from synthesize\n\n👍 useful by User42")
        assert "reply_markup" not in edit.params, "the buttons are gone"
        message = tg.message(OWNER, sent.result["message_id"])
        assert message is not None
        assert message.reply_markup is None

        (entry,) = await _entries(sup)
        assert (entry.recommendation_id, entry.choice, entry.user_id) == (
            _rec_id(sent),
            Choice.USEFUL,
            OWNER,
        )
        listed = (await sup.api.call("feedback.list", {}))["results"]
        assert [(r["id"], r["state"], r["choice"]) for r in listed] == [
            (_rec_id(sent), "answered", "useful")
        ]
        stats = await sup.api.call("feedback.stats", {})
        assert (stats["delivered"], stats["answered"], stats["by_choice"]) == (1, 1, {"useful": 1})


async def test_replayed_stale_tampered_and_unknown_taps_change_nothing(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg) as sup:
        sent = await _recommend(sup, tg)
        useful = _button(sent, "👍")
        await _tap(tg, sent, useful)
        await settle(lambda: tg.find("editMessageText"))
        replies = [
            await _tap(tg, sent, useful),
            await _tap(tg, sent, _button(sent, "👎")),
            await _tap(tg, sent, useful.replace(":u:", ":n:")),
            await _tap(tg, sent, useful[:-2] + "xx"),
            await _tap(tg, sent, "fb:drop table;"),
            await _tap(
                tg,
                sent,
                CallbackSigner.for_state_dir(sup.state_dir).encode("gone", 1, Choice.USEFUL),
            ),
        ]
        assert replies == [
            "Already answered (useful); nothing changed.",
            "Already answered (useful); nothing changed.",
            "This button is not valid (any more).",
            "This button is not valid (any more).",
            "This button is not valid (any more).",
            "I no longer know this recommendation.",
        ]
        assert len(await _entries(sup)) == 1
        assert len(tg.calls_of("editMessageText")) == 1


async def test_a_snoozed_recommendation_comes_back_when_due(root: Path, tg: FakeTelegram) -> None:
    clock = Clock()
    async with supervised(root, tg, clock=clock) as sup:
        sent = await _recommend(sup, tg)
        assert await _tap(tg, sent, _button(sent, "⏰")) == "Noted: snooze."
        edit = await settle(lambda: tg.find("editMessageText"))
        assert "⏰ snooze until " in edit.text
        clock.offset = timedelta(hours=23)
        bot_of(sup).poke()
        await settle(lambda: len(tg.calls_of("getUpdates")) > 3)
        assert len([c for c in tg.calls_of("sendMessage") if c.buttons]) == 1, "not due yet"

        clock.offset = timedelta(days=1, minutes=1)
        bot_of(sup).poke()
        again = await _delivered(tg, _rec_id(sent), round=2)
        assert again.result["message_id"] != sent.result["message_id"]
        old = await _tap(tg, sent, _button(sent, "👍"))
        assert old == "These buttons are from an earlier message; use the newest one."
        assert await _tap(tg, again, _button(again, "🗄")) == "Noted: archive."
        assert [e.choice for e in await _entries(sup)] == [Choice.SNOOZE, Choice.ARCHIVE]
        archived = await sup.api.call("feedback.list", {"state": "archived"})
        assert [r["id"] for r in archived["results"]] == [_rec_id(sent)]


async def test_recommendations_made_while_telegram_is_down_are_delivered_later(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg) as sup:
        bot = bot_of(sup)
        await bot.stop()  # as good as unreachable: nothing goes out
        outbox = sup.job_context.outbox
        assert outbox is not None
        rec: Recommendation = await outbox.recommend("Later", "b", source_job="synthesize")
        listed = (await sup.api.call("feedback.list", {}))["results"]
        assert [(r["id"], r["state"]) for r in listed] == [(rec.id, "pending")]
    async with supervised(root, tg) as sup:
        await _delivered(tg, rec.id)
        listed = (await sup.api.call("feedback.list", {}))["results"]
        assert [(r["id"], r["state"]) for r in listed] == [(rec.id, "sent")]
