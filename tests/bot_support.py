"""Helpers for bot tests: a real Supervisor whose bot talks to a local Bot API fake.

The bot runs in the test's own event loop, so tests wait with ``settle`` (which yields to the
loop) rather than the fake's blocking ``wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.bot.app import TelegramBot
from daemon.supervisor import Supervisor
from tests.fake_telegram import TOKEN, Call, FakeTelegram
from tests.support import openclaw_home, settings_for

OWNER = 42
STRANGER = 666


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def bot_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "OPENCLAW_INFRA_TELEGRAM__TOKEN": TOKEN,
        "OPENCLAW_INFRA_TELEGRAM__BASE_URL": base_url,
        "OPENCLAW_INFRA_TELEGRAM__ALLOWED_USER_IDS": str(OWNER),
        "OPENCLAW_INFRA_TELEGRAM__CHECK_INTERVAL": "100ms",
        "OPENCLAW_INFRA_TELEGRAM__POLL_TIMEOUT": "1s",
        "OPENCLAW_INFRA_TELEGRAM__REQUEST_TIMEOUT": "2s",
        "OPENCLAW_INFRA_TELEGRAM__RETRY_MAX": "1s",
        "OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false",
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
        **extra,
    }


async def settle(condition: Callable[[], Any], within: float = 15.0, what: str = "") -> Any:
    """Let the loop run until ``condition()`` is truthy; a guard against hangs, not a timer."""
    try:
        async with asyncio.timeout(within):
            while not (value := condition()):
                await asyncio.sleep(0.01)
            return value
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or condition}") from None


@contextlib.asynccontextmanager
async def supervised(
    root: Path,
    fake: FakeTelegram | str,
    *,
    clock: Clock | None = None,
    connect: bool = True,
    env: Mapping[str, str] | None = None,
    **more: str,
) -> AsyncIterator[Supervisor]:
    """A started Supervisor with a bot; by default, once the bot is connected. Settings are
    ``bot_env`` with ``env`` and ``more`` on top."""
    base_url = fake if isinstance(fake, str) else fake.base_url
    openclaw_home(root)
    settings = settings_for(root, **bot_env(base_url, **{**(env or {}), **more}))
    async with Supervisor(settings, clock=clock or Clock()) as sup:
        if connect:
            await settle(lambda: bot_of(sup).connected, what="the bot to connect")
        yield sup


def bot_of(sup: Supervisor) -> TelegramBot:
    assert sup.bot is not None
    return sup.bot


async def reply_to(fake: FakeTelegram, message_id: int, within: float = 15.0) -> Call:
    """The bot's (first) answer to one message."""

    def answered() -> Call | None:
        return fake.find(
            "sendMessage",
            lambda c: (c.params.get("reply_parameters") or {}).get("message_id") == message_id,
        )

    found: Call = await settle(answered, within, f"a reply to message {message_id}")
    return found


async def command(fake: FakeTelegram, text: str, user_id: int = OWNER) -> Call:
    """Send a command as the owner; the bot's reply (``.text`` as the person sees it)."""
    return await reply_to(fake, fake.send_text(text, user_id=user_id))
