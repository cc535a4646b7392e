"""The bot's commands, in a real Supervisor, through the real python-telegram-bot, against a
local Bot API: each answers with what the socket API says, and only to allowed people."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon import logs
from daemon.bot.callbacks import CallbackSigner
from stores.coordination.feedback import Choice
from stores.runlog import RunStatus, RunTrigger
from tests.bot_support import OWNER, STRANGER, Clock, bot_of, command, reply_to, settle, supervised
from tests.fake_anthropic import FakeAnthropic, text
from tests.fake_anthropic import running as anthropic_running
from tests.fake_telegram import TOKEN, Failure, FakeTelegram, running


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from running()


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    yield from anthropic_running()


async def test_every_command_answers_from_the_socket_api(root: Path, tg: FakeTelegram) -> None:
    async with supervised(root, tg) as sup:
        api = sup.api.call
        jobs = (await api("jobs", {}))["jobs"]
        shown = (await command(tg, "/jobs")).text
        for job in jobs:
            assert f"{job['name']} " in shown
        status = (await command(tg, "/status")).text
        assert status.startswith(f"infrad {(await api('version', {}))['version']} · up ")
        assert "scheduler running" in status
        health = (await command(tg, "/health")).text
        assert "bot: connected as @infra_test_bot" in health
        assert "db:feedback: writable" in health

        triggered = (await command(tg, "/trigger health")).text
        run_id = int(triggered.rpartition("#")[2])
        assert triggered == f"▶️ health started: run #{run_id}"
        await settle(lambda: sup.runner.running().get("health") is None)
        runs = (await command(tg, "/runs health")).text
        assert f"#{run_id} health success" in runs
        assert "#" in (await command(tg, "/runs")).text

        assert (await command(tg, "/pause health")).text == "paused: health"
        assert sup.scheduler.is_paused("health")
        assert (await command(tg, "/resume health")).text == "resumed: health"
        assert not sup.scheduler.is_paused("health")


async def test_refusals_and_usage_come_back_politely(root: Path, tg: FakeTelegram) -> None:
    async with supervised(root, tg):
        assert (await command(tg, "/trigger nosuch")).text.startswith("⚠️ no job named 'nosuch'")
        assert (await command(tg, "/trigger")).text == "usage: /trigger <job> (see /jobs)"
        assert (await command(tg, "/pause ../etc")).text.startswith(
            "⚠️ pause: job '../etc' is not a job name"
        )
        assert (await command(tg, "/search")).text == "usage: /search <words>"
        assert "/search <query>" in (await command(tg, "/help")).text
        assert "/refine" not in (await command(tg, "/help")).text, "no LLM configured"
        assert "OPENCLAW_INFRA_ANTHROPIC_API_KEY" in (await command(tg, "/refine hi")).text
        assert (await command(tg, "/frobnicate")).text.startswith("I do not know that command")
        assert (await command(tg, "hello there")).text == "I answer commands; /help lists them."


async def test_search_shows_agent_date_and_snippet_escaped(root: Path, tg: FakeTelegram) -> None:
    async with supervised(root, tg) as sup:
        hostile = "The <b>plan</b> & budget: \x1b[31mred\x1b[0m, *not* markdown `x`"
        await sup.api.call("memory.add", {"text": hostile, "agent": "work"})
        reply = await command(tg, "/search plan budget")
        day = sup.clock().date().isoformat()
        assert reply.text.startswith(f"1. work · {day} · manual\n")
        assert "The <b>plan</b> & budget: [31mred[0m, *not* markdown `x`" in reply.text
        assert reply.params["parse_mode"] == "HTML"
        nothing = await command(tg, "/search zebra quantum")
        assert nothing.text.startswith(("nothing found for zebra quantum", "1. "))


async def test_refine_answers_when_the_llm_is_configured(
    root: Path, tg: FakeTelegram, anthropic: FakeAnthropic
) -> None:
    anthropic.script(text("Soon <&>."), text('{"problems": [], "verdict": "ok"}'))
    async with supervised(
        root,
        tg,
        OPENCLAW_INFRA_ANTHROPIC_API_KEY=anthropic.api_key,
        OPENCLAW_INFRA_ANTHROPIC_BASE_URL=anthropic.base_url,
    ):
        assert "/refine <prompt>" in (await command(tg, "/help")).text
        reply = await command(tg, "/refine When do we <meet>?")
        assert reply.text == "Soon <&>.\nthree-pass, 0 problems found"
    assert anthropic.requests[0].last_user_text == "When do we <meet>?"


async def test_strangers_get_nothing_and_are_logged_without_their_text(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg, OPENCLAW_INFRA_TELEGRAM__ALLOWED_CHAT_IDS="-100") as sup:
        signer = CallbackSigner.for_state_dir(sup.state_dir)
        outbox = sup.job_context.outbox
        assert outbox is not None
        rec = await outbox.recommend("Hi", "Body", source_job="t")
        sent = await settle(lambda: tg.find("sendMessage", lambda c: bool(c.buttons)))
        with capture_logs() as captured:
            tg.send_text("/status secret words", user_id=STRANGER)
            tg.tap(
                signer.encode(rec.id, 1, Choice.USEFUL),
                user_id=STRANGER,
                chat_id=STRANGER,
                message_id=sent.result["message_id"],
            )
            in_group = tg.send_text("/jobs", user_id=777, chat_id=-100)
            await reply_to(tg, in_group)
            await command(tg, "/status")  # the owner, after the strangers: they were handled
        refused = [e for e in captured if e["event"] == "bot.refused"]
        assert sorted((e["user_id"], e["kind"]) for e in refused) == [
            (STRANGER, "callback"),
            (STRANGER, "command"),
        ]
        assert "secret words" not in json.dumps(captured)
        assert tg.sent_to(STRANGER) == []
        assert tg.calls_of("answerCallbackQuery") == []
        assert (await sup.api.call("feedback.stats", {}))["by_choice"] == {}
        assert tg.find(
            "sendMessage",
            lambda c: (c.params.get("reply_parameters") or {}).get("message_id") == in_group,
        ), "anyone in an allowed chat may use the bot"


async def test_an_empty_allowlist_refuses_everyone_and_says_so(
    root: Path, tg: FakeTelegram
) -> None:
    with capture_logs() as captured:
        async with supervised(root, tg, OPENCLAW_INFRA_TELEGRAM__ALLOWED_USER_IDS="[]") as sup:
            tg.send_text("/status", user_id=OWNER)
            await settle(lambda: any(e["event"] == "bot.refused" for e in captured))
            assert bot_of(sup).health_check().detail.endswith("empty allowlist, refuses everyone")
    assert any(e["event"] == "bot.allowlist_empty" for e in captured)
    assert tg.calls_of("sendMessage") == []


async def test_the_token_never_reaches_the_logs(root: Path, tg: FakeTelegram) -> None:
    """Everything logged during a bot session at DEBUG, the chatty libraries included (httpx
    logs each URL, which holds the token): redacted, and silenced by default."""
    stream = io.StringIO()
    async with supervised(root, tg, OPENCLAW_INFRA_LOG_LEVEL="debug") as sup:
        logs.configure("debug", "json", sup.redactor, stream)
        await command(tg, "/status")
        assert "httpx" not in stream.getvalue(), "silenced below WARNING by default"
        for name in ("httpx", "httpcore", "telegram", "telegram.ext"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        tg.fail("getUpdates", Failure(502, description=f"proxy error for /bot{TOKEN}/getUpdates"))
        await command(tg, "/health")
        await command(tg, "/trigger nosuch")
        await settle(lambda: "HTTP Request" in stream.getvalue())
    captured = stream.getvalue()
    assert "[REDACTED]/getUpdates" in captured, "the net was tested: httpx did log a URL"
    assert TOKEN not in captured
    assert TOKEN.partition(":")[2] not in captured


async def test_alerts_reach_the_allowed_chats_within_the_rate_limit(
    root: Path, tg: FakeTelegram
) -> None:
    clock = Clock()
    limits = {
        "OPENCLAW_INFRA_TELEGRAM__ALERT_FAILURES": "1",
        "OPENCLAW_INFRA_TELEGRAM__ALERT_LIMIT": "1",
        "OPENCLAW_INFRA_TELEGRAM__ALLOWED_CHAT_IDS": "-100,-200",
    }
    async with supervised(root, tg, clock=clock, env=limits) as sup:
        for job in ("alpha", "beta"):
            run_id = sup.run_log.start_run(job, RunTrigger.SCHEDULE, clock(), None)
            sup.run_log.finish_run(run_id, RunStatus.FAILED, clock(), error_message="<oops>")
        first = await settle(lambda: tg.find("sendMessage", lambda c: "failed" in c.text))
        assert first.text == "❌ alpha failed: <oops>"
        await settle(lambda: len(tg.calls_of("sendMessage")) == 2, what="both allowed chats")
        assert sorted(c.params["chat_id"] for c in tg.calls_of("sendMessage")) == [-200, -100]
        for _ in range(3):
            await bot_of(sup).alerts.check()
        assert not tg.find("sendMessage", lambda c: "beta" in c.text), "beta is held back"
        clock.offset = timedelta(hours=1)
        await settle(lambda: tg.find("sendMessage", lambda c: "beta" in c.text))


async def test_a_chat_that_refuses_alerts_is_left_alone_for_an_hour(
    root: Path, tg: FakeTelegram
) -> None:
    clock = Clock()
    env = {"OPENCLAW_INFRA_TELEGRAM__ALERT_FAILURES": "1"}
    async with supervised(root, tg, clock=clock, env=env) as sup:
        bot = bot_of(sup)
        tg.fail("sendMessage", Failure(403, description="Forbidden: bot was blocked by the user"))
        run_id = sup.run_log.start_run("alpha", RunTrigger.SCHEDULE, clock(), None)
        sup.run_log.finish_run(run_id, RunStatus.FAILED, clock(), error_message="oops")
        await settle(lambda: tg.find("sendMessage", lambda c: c.error is not None))
        for _ in range(3):
            await bot.alerts.check()
        assert len(tg.calls_of("sendMessage")) == 1, "no asking a refusing chat every check"
        assert bot.alerts.active == {"job:alpha": False}
        clock.offset = timedelta(hours=1)
        await bot.alerts.check()
        sent = await settle(lambda: tg.find("sendMessage", lambda c: c.error is None))
        assert sent.text == "❌ alpha failed: oops"
