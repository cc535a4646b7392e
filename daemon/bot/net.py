"""What the bot knows of its line to Telegram, learnt from every request it makes.

python-telegram-bot retries polling by itself and reports only some failures (not timeouts) to
an error callback, so the bot watches the requests instead: each one ends in an answer (the
line works, even for a 4xx) or in a 5xx, a timeout or a network error (it does not). A 401
is different: Telegram no longer takes the token (revoked with @BotFather), polling stops for
good, and nothing heals it but a new token and a restart. Health reads the result; reasons are
redacted, since a library's error may quote the request URL, which holds the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from telegram.error import TelegramError
from telegram.request import HTTPXRequest, RequestData

from daemon.logs import get_logger
from jobs.base import Clock
from stores.redaction import Redactor

log = get_logger(__name__)

REFUSED = "Telegram refused the token"


@dataclass
class Link:
    """Plain fields, written and read on the event loop."""

    clock: Clock
    redactor: Redactor
    last_ok: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures_in_a_row: int = 0
    #: Set when a failure cannot heal by retrying (a refused token).
    fatal: str | None = None

    @property
    def up(self) -> bool:
        return self.last_ok is not None and self.failures_in_a_row == 0 and self.fatal is None

    def ok(self) -> None:
        self.last_ok = self.clock()
        self.failures_in_a_row = 0

    def failed(self, reason: str) -> bool:
        """Record a failure; True when it is the first of a run (worth a log line)."""
        self.last_error = self.redactor.text(reason)
        self.last_error_at = self.clock()
        self.failures_in_a_row += 1
        return self.failures_in_a_row == 1

    def token_refused(self) -> None:
        """Logged once; the bot stops sending until it is restarted with a token that works."""
        if self.fatal is None:
            self.fatal = REFUSED
            log.error("bot.token_refused", note="check OPENCLAW_INFRA_TELEGRAM__TOKEN")


class WatchedRequest(HTTPXRequest):
    """``HTTPXRequest`` that tells a ``Link`` how each request ended."""

    def __init__(self, link: Link, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.link = link

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        except TelegramError as exc:
            self.link.failed(f"{type(exc).__name__}: {exc.message}")
            raise
        if code == HTTPStatus.UNAUTHORIZED:
            self.link.token_refused()
        elif code >= 500:
            self.link.failed(f"Telegram answered HTTP {code}")
        else:
            self.link.ok()
        return code, payload
