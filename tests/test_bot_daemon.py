"""The bot in the real daemon (a subprocess), against the local Bot API: commands, the button
round trip seen from ``infractl feedback``, alerts and their limit, and a log without the token."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot_support import OWNER, bot_env
from tests.fake_telegram import TOKEN, Call, FakeTelegram, running
from tests.support import base_environ, infractl, running_daemon, wait_for

LAUNCHER = [sys.executable, "-m", "tests.bot_daemon"]


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from running()


def _replied(tg: FakeTelegram, message_id: int) -> Call:
    return tg.wait_for(
        "sendMessage",
        lambda c: (c.params.get("reply_parameters") or {}).get("message_id") == message_id,
    )


def test_the_bot_in_the_real_daemon(root: Path, tg: FakeTelegram) -> None:
    env = {
        **bot_env(tg.base_url, OPENCLAW_INFRA_TELEGRAM__ALERT_FAILURES="2"),
        "OPENCLAW_INFRA_LOG_LEVEL": "debug",
        "RECOMMEND_TITLE": "Less <coffee> & more water",
    }
    with running_daemon(root, env, LAUNCHER) as daemon:
        shell = base_environ(root)
        tg.wait_for("getUpdates")
        assert [c.method for c in tg.calls[:3]] == ["getMe", "deleteWebhook", "getUpdates"]
        status = _replied(tg, tg.send_text("/status", user_id=OWNER))
        assert status.text.startswith("infrad ")

        daemon.call("trigger", {"job": "recommend", "wait": True})
        sent = tg.wait_for("sendMessage", lambda c: bool(c.buttons))
        assert sent.text.startswith("💡 Less <coffee> & more water\n")
        useful = sent.buttons[0]["callback_data"]
        tg.tap(useful, user_id=OWNER, chat_id=OWNER, message_id=sent.result["message_id"])
        assert tg.wait_for("answerCallbackQuery").params["text"] == "Noted: useful."
        assert tg.wait_for("editMessageText").text.endswith("👍 useful by User42")

        listed = infractl("feedback", "list", "--json", env=shell)
        assert listed.returncode == 0, listed.stderr
        (rec,) = json.loads(listed.stdout)["results"]
        assert (rec["title"], rec["state"], rec["choice"]) == (
            "Less <coffee> & more water",
            "answered",
            "useful",
        )
        table = infractl("feedback", "list", env=shell)
        assert "answered" in table.stdout
        assert "useful" in table.stdout
        stats = infractl("feedback", "stats", "--json", env=shell)
        assert json.loads(stats.stdout)["by_choice"] == {"useful": 1}
        assert "answer  useful 1" in infractl("feedback", "stats", env=shell).stdout

        for _ in range(4):
            daemon.call("trigger", {"job": "flaky", "wait": False})
            wait_for(lambda: not any(j["running_run_id"] for j in daemon.call("jobs")["jobs"]))
        alert = tg.wait_for("sendMessage", lambda c: "flaky failed" in c.params["text"])
        # The count is the job's at the time of the check: 2 to 4 here.
        assert re.fullmatch(
            r"❌ flaky failed [234] times in a row: flaky failed on purpose", alert.text
        )
        assert alert.params["chat_id"] == OWNER
        health = infractl("health", env=shell)
        assert "bot" in health.stdout
        assert daemon.stop() == 0
    alerts = [c for c in tg.calls_of("sendMessage") if "flaky" in c.params["text"]]
    assert len(alerts) == 1, "one alert for a job that keeps failing"
    log = daemon.log()
    assert '"event": "bot.connected"' in log
    assert TOKEN not in log
    assert TOKEN.partition(":")[2] not in log
    assert "Less <coffee>" not in log, "message texts stay out of the log"


def test_the_daemon_starts_without_telegram_and_says_so_in_health(root: Path) -> None:
    env = bot_env("http://127.0.0.1:9", OPENCLAW_INFRA_TELEGRAM__RETRY_MAX="30s")
    with running_daemon(root, env) as daemon:
        shell = base_environ(root)
        assert infractl("status", env=shell).returncode == 0

        def bot_degraded() -> bool:
            checks = daemon.call("health")["checks"]
            return any(c["name"] == "bot" and c["status"] == "degraded" for c in checks)

        wait_for(bot_degraded, what="health to show the bot degraded")
        health = infractl("health", env=shell)
        assert health.returncode == 4, "degraded, not failed: the daemon itself is fine"
        assert "Telegram unreachable" in health.stdout
        assert daemon.stop() == 0
    assert TOKEN not in daemon.log()
