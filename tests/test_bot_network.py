"""Telegram unreachable, failing or slow: the daemon goes on, health shows the bot degraded,
and the bot comes back by itself."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import logs
from tests.bot_support import bot_of, command, settle, supervised
from tests.fake_telegram import TOKEN, Failure, FakeTelegram, running


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from running()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bot_check(report: dict[str, object]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    (bot,) = [c for c in checks if c["name"] == "bot"]
    return dict(bot)


async def test_telegram_down_at_start_up_does_not_hold_the_daemon(root: Path) -> None:
    port = _free_port()
    async with supervised(root, f"http://127.0.0.1:{port}", connect=False) as sup:
        assert (await sup.api.call("status", {}))["scheduler"] == "running"
        bot = bot_of(sup)
        await settle(lambda: bot.link.failures_in_a_row > 0, what="a failed attempt")
        report = await sup.api.call("health", {})
        assert report["status"] == "degraded", "the daemon is up; only the bot is degraded"
        check = _bot_check(report)
        assert check["status"] == "degraded"
        assert check["detail"].startswith("Telegram unreachable since ")
        assert check["detail"].endswith("; retrying")
        outbox = sup.job_context.outbox
        assert outbox is not None
        rec = await outbox.recommend("While down", "b", source_job="synthesize")
        with FakeTelegram(port=port) as tg:
            await settle(lambda: bot.connected, what="the bot to connect once Telegram is up")
            assert _bot_check(await sup.api.call("health", {}))["status"] == "ok"
            assert [c.method for c in tg.calls[:2]] == ["getMe", "deleteWebhook"]
            await settle(lambda: tg.find("sendMessage", lambda c: rec.id in str(c.params)))
            assert (await command(tg, "/status")).text.startswith("infrad ")


async def test_5xx_from_telegram_degrades_the_bot_until_it_passes(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg) as sup:
        bot = bot_of(sup)
        tg.fail("getUpdates", Failure(502, description="Bad Gateway"), Failure(500))
        await settle(lambda: bot.link.failures_in_a_row > 0, what="the 5xx to be seen")
        check = bot.health_check()
        assert (check.status.value, "HTTP 50" in check.detail) == ("degraded", True)
        await settle(lambda: bot.link.up, what="polling to recover")
        assert bot.health_check().status.value == "ok"
        assert (await command(tg, "/help")).text.startswith("Commands")


async def test_timeouts_are_retried_and_a_lost_delivery_is_sent_again(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg, OPENCLAW_INFRA_TELEGRAM__REQUEST_TIMEOUT="300ms") as sup:
        bot = bot_of(sup)
        tg.fail("getUpdates", Failure(stall_s=2))
        tg.fail("sendMessage", Failure(stall_s=2))
        outbox = sup.job_context.outbox
        assert outbox is not None
        rec = await outbox.recommend("Slow line", "b", source_job="synthesize")
        await settle(lambda: bot.link.failures_in_a_row > 0, what="a timeout")
        delivered = await settle(
            lambda: tg.find("sendMessage", lambda c: c.error is None and bool(c.buttons))
        )
        assert f"fb:{rec.id}:" in delivered.buttons[0]["callback_data"]
        await settle(lambda: bot.link.up, what="the line to be up again")
        listed = (await sup.api.call("feedback.list", {}))["results"]
        assert [(r["state"], r["round"]) for r in listed] == [("sent", 2)], "round 1 was lost"
        assert (await command(tg, "/help")).text.startswith("Commands")


async def test_a_refused_token_is_reported_and_never_logged(root: Path) -> None:
    stream = io.StringIO()
    with FakeTelegram(token="987654321:AAsomeOtherTokenThatIsValid_0123456") as other:
        async with supervised(root, other, connect=False, OPENCLAW_INFRA_LOG_LEVEL="debug") as sup:
            logs.configure("debug", "json", sup.redactor, stream)
            bot = bot_of(sup)
            await settle(lambda: bot.link.fatal, what="the token to be refused")
            check = _bot_check(await sup.api.call("health", {}))
            assert check == {
                "name": "bot",
                "status": "degraded",
                "detail": "Telegram refused the token; fix it and restart",
            }
            assert (await sup.api.call("status", {}))["scheduler"] == "running"
    captured = stream.getvalue()
    assert '"event": "bot.token_refused"' in captured
    assert TOKEN not in captured
    assert TOKEN.partition(":")[2] not in captured
    assert len(other.calls_of("getMe")) == 1, "no retrying a refused token"


async def test_a_token_revoked_while_running_stops_sending_and_degrades_health(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg) as sup:
        bot = bot_of(sup)
        assert _bot_check(await sup.api.call("health", {}))["status"] == "ok"
        tg.token = "987654321:AAtheTokenWasRevokedAndReplaced_012345"  # revoked with @BotFather
        await settle(lambda: bot.link.fatal, what="the revoked token to be seen")
        assert not bot.link.up, "nothing is sent on a token Telegram refuses"
        check = _bot_check(await sup.api.call("health", {}))
        assert check["detail"] == "Telegram refused the token; fix it and restart"
        assert (await sup.api.call("status", {}))["scheduler"] == "running"
