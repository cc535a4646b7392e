"""The Telegram bot: a face on the daemon's API, in the daemon's own event loop.

python-telegram-bot's ``run_polling()`` would take the loop over, so the bot starts the
application and the updater itself and stops them in reverse order. Telegram is optional in
every sense: without a token there is no bot; unreachable, the bot retries in the background
with a doubling wait while the daemon goes on, and health shows ``bot`` degraded. Once
connected, the bot delivers recommendations (new, and snoozed ones that are due) and alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import Forbidden, InvalidToken, TelegramError
from telegram.ext import Application

from daemon.bot.alerts import AlertPolicy, Alerts
from daemon.bot.callbacks import CallbackSigner
from daemon.bot.handlers import Allowlist, ApiCall, Handlers
from daemon.bot.messages import keyboard, recommendation_html, send_html
from daemon.bot.net import Link, WatchedRequest
from daemon.bot.text import text_blocks
from daemon.bot.voice import VoiceNoteHandler
from daemon.config.telegram import TelegramSettings, TranscriptionSettings
from daemon.logs import get_logger
from jobs.base import Clock
from jobs.checks import HealthCheck, HealthStatus
from stores.coordination.feedback import FeedbackStore, Recommendation
from stores.redaction import Redactor
from stores.runlog import RunLog
from stores.transcription import (
    Transcriber,
    TranscriptionConfig,
    TranscriptionUnavailable,
    make_transcriber,
)
from stores.voice_notes import VoiceNotes

log = get_logger(__name__)

TELEGRAM = "https://api.telegram.org"
#: Stopping must not wait on an unreachable Telegram for long.
STOP_GRACE_S = 5.0
#: A recommendation no chat would take (the person never opened the bot), or a chat that
#: refused an alert (the bot was blocked, or removed from the group), waits this long.
REFUSED_RETRY = timedelta(hours=1)


@dataclass(frozen=True)
class BotConfig:
    token: str = field(repr=False)
    allowlist: Allowlist
    base_url: str = TELEGRAM
    poll_timeout_s: float = 30.0
    request_timeout_s: float = 15.0
    retry_first_s: float = 1.0
    retry_max_s: float = 300.0
    check_interval_s: float = 15.0
    alerts: AlertPolicy = field(default_factory=AlertPolicy)


def bot_config(telegram: TelegramSettings) -> BotConfig | None:
    if telegram.token is None:
        return None
    return BotConfig(
        token=telegram.token.get_secret_value(),
        allowlist=Allowlist(
            frozenset(telegram.allowed_user_ids), frozenset(telegram.allowed_chat_ids)
        ),
        base_url=telegram.base_url or TELEGRAM,
        poll_timeout_s=telegram.poll_timeout.total_seconds(),
        request_timeout_s=telegram.request_timeout.total_seconds(),
        retry_max_s=telegram.retry_max.total_seconds(),
        check_interval_s=telegram.check_interval.total_seconds(),
        alerts=AlertPolicy(telegram.alert_failures, telegram.alert_limit, telegram.alert_window),
    )


def open_transcriber(settings: TranscriptionSettings) -> tuple[Transcriber | None, str | None]:
    """The transcriber, or why a configured one cannot work."""
    config = TranscriptionConfig(
        backend=settings.backend,
        base_url=settings.base_url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        model=settings.model,
        model_path=settings.model_path,
        language=settings.language,
        timeout_s=settings.timeout.total_seconds(),
    )
    try:
        return make_transcriber(config), None
    except TranscriptionUnavailable as exc:
        log.error("voice.unavailable", backend=settings.backend, error=str(exc))
        return None, str(exc)


async def open_bot(
    telegram: TelegramSettings,
    transcription: TranscriptionSettings,
    *,
    state_dir: Path,
    run_log: RunLog,
    feedback: FeedbackStore,
    call: ApiCall,
    clock: Clock,
    redactor: Redactor,
    zone: tzinfo,
    refine: bool,
) -> TelegramBot | None:
    """The bot, ready to start, or None without a token. Reads the run history's end, so it
    must be opened before the scheduler records anything (alerts start from here)."""
    config = bot_config(telegram)
    if config is None:
        log.info("bot.off", reason="no OPENCLAW_INFRA_TELEGRAM__TOKEN")
        return None
    if config.allowlist.empty:
        log.warning(
            "bot.allowlist_empty",
            note="the bot refuses everyone; set OPENCLAW_INFRA_TELEGRAM__ALLOWED_USER_IDS",
        )
    transcriber, unavailable = open_transcriber(transcription)
    notes = await asyncio.to_thread(VoiceNotes, state_dir / "voice.sqlite") if transcriber else None
    signer = await asyncio.to_thread(CallbackSigner.for_state_dir, state_dir)
    voice = VoiceNoteHandler(
        call=call, transcriber=transcriber, unavailable=unavailable, notes=notes, clock=clock
    )
    handlers = Handlers(
        call=call,
        allowlist=config.allowlist,
        signer=signer,
        voice=voice,
        clock=clock,
        zone=zone,
        refine=refine,
    )
    bot = TelegramBot(
        config, handlers, feedback=feedback, run_log=run_log, clock=clock, redactor=redactor
    )
    await bot.alerts.begin()
    return bot


class TelegramBot:
    def __init__(
        self,
        config: BotConfig,
        handlers: Handlers,
        *,
        feedback: FeedbackStore,
        run_log: RunLog,
        clock: Clock,
        redactor: Redactor,
    ) -> None:
        self.config = config
        self.handlers = handlers
        self.feedback = feedback
        self.clock = clock
        self.redactor = redactor
        self.link = Link(clock, redactor)
        self.alerts = Alerts(config.alerts, run_log, self.broadcast, clock)
        self.app = self._build()
        handlers.register(self.app)
        self.username: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._refused: dict[str, datetime] = {}
        self._quiet_chats: dict[int, datetime] = {}  # refused an alert: until when to skip
        self._closed = False

    def __repr__(self) -> str:
        return f"TelegramBot(@{self.username or '?'}, up={self.link.up})"

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        timeout = self.config.request_timeout_s
        timeouts = {"read_timeout": timeout, "write_timeout": timeout, "connect_timeout": timeout}
        return (
            Application.builder()
            .token(self.config.token)
            .base_url(f"{self.config.base_url}/bot")
            .base_file_url(f"{self.config.base_url}/file/bot")
            .request(WatchedRequest(self.link, **timeouts, pool_timeout=timeout))
            # getUpdates adds the long-polling time to this read timeout itself.
            .get_updates_request(WatchedRequest(self.link, **timeouts))
            .job_queue(None)
            # A /refine of a minute must not hold up a button tap.
            .concurrent_updates(True)
            .build()
        )

    @property
    def connected(self) -> bool:
        return self.username is not None

    async def start(self) -> None:
        """Returns at once; connecting, and retrying, happen in the background."""
        self._task = asyncio.create_task(self._run(), name="telegram-bot")

    async def stop(self) -> None:
        """Idempotent; also closes a bot that was opened and never started."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await self._quietly("task", task)
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await self._stop_app()
        except TimeoutError:
            log.warning("bot.stop_timeout", grace_s=STOP_GRACE_S)
        finally:
            await self._quietly("http", self.app.bot.shutdown())  # closes the HTTP clients
            await self._quietly("voice", self.handlers.voice_notes.aclose())
        log.info("bot.stopped")

    async def _stop_app(self) -> None:
        """Each step whatever became of the one before: the daemon's own stop goes on after."""
        if self.app.updater is not None and self.app.updater.running:
            # Re-raises what ended polling (a revoked token's InvalidToken, say).
            await self._quietly("updater", self.app.updater.stop())
        if self.app.running:
            await self._quietly("app", self.app.stop())
        await self._quietly("shutdown", self.app.shutdown())

    async def _quietly(self, step: str, awaitable: Awaitable[object]) -> None:
        """A failure while stopping is logged, never raised: the socket, the stores and the
        lock are closed after the bot."""
        try:
            await awaitable
        except asyncio.CancelledError:
            if step != "task":
                raise
        except Exception as exc:
            log.warning("bot.stop_step_failed", step=step, error=self.redactor.text(repr(exc)))

    def poke(self) -> None:
        """Something new to deliver."""
        self._wake.set()

    async def alert(self, key: str, text: str) -> None:
        await self.alerts.notify(key, text)

    def health_check(self) -> HealthCheck:
        """Degraded, never failed: without Telegram the daemon still does its work."""
        link = self.link
        if link.fatal:
            return HealthCheck("bot", HealthStatus.DEGRADED, f"{link.fatal}; fix it and restart")
        if link.failures_in_a_row:
            since = link.last_error_at.isoformat(timespec="seconds") if link.last_error_at else "?"
            return HealthCheck(
                "bot",
                HealthStatus.DEGRADED,
                f"Telegram unreachable since {since} ({link.last_error}); retrying",
            )
        if not self.connected:
            # The first attempt is under way: not a problem yet (health runs at start-up too).
            return HealthCheck("bot", HealthStatus.OK, "connecting to Telegram")
        if self.config.allowlist.empty:
            return HealthCheck(
                "bot", HealthStatus.DEGRADED, f"@{self.username}: empty allowlist, refuses everyone"
            )
        return HealthCheck("bot", HealthStatus.OK, f"connected as @{self.username}")

    # --- connecting --------------------------------------------------------------------------

    async def _run(self) -> None:
        if not await self._connect_with_backoff():
            return
        log.info("bot.connected", username=self.username)
        await self._work()

    async def _connect_with_backoff(self) -> bool:
        delay = self.config.retry_first_s
        while True:
            try:
                await self._connect()
            except InvalidToken:
                self.link.token_refused()  # already, by the request that saw the 401
                return False
            except TelegramError as exc:
                self.link.failed(f"{type(exc).__name__}: {exc.message}")
                log.warning("bot.unreachable", error=self.link.last_error, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_s)
            else:
                return True

    async def _connect(self) -> None:
        await self.app.initialize()  # getMe: fails while Telegram is unreachable
        self.username = self.app.bot.username
        if not self.app.running:
            await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            poll_interval=0.0,
            timeout=timedelta(seconds=self.config.poll_timeout_s),
            drop_pending_updates=False,
            allowed_updates=["message", "callback_query"],
            error_callback=self._poll_failed,
        )

    def _poll_failed(self, exc: TelegramError) -> None:
        # python-telegram-bot retries with its own backoff; the link has counted the failure.
        if self.link.failures_in_a_row <= 1:
            log.warning("bot.poll_failed", error=self.redactor.text(exc.message))

    # --- delivering --------------------------------------------------------------------------

    async def _work(self) -> None:
        was_up = True
        while True:
            up = self.link.up
            if up != was_up:
                log.info("bot.link", up=up, error=None if up else self.link.last_error)
                was_up = up
            try:
                if up:  # while Telegram is unreachable, polling finds out when it is back
                    await self._deliver_due()
                await self.alerts.check()
            except Exception as exc:  # the loop outlives any one failure; the next round retries
                log.warning("bot.work_failed", error=self.redactor.text(str(exc)) or repr(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.check_interval_s)

    async def _deliver_due(self) -> None:
        now = self.clock()
        pending = await asyncio.to_thread(self.feedback.pending)
        due = await asyncio.to_thread(self.feedback.due_snoozed, now)
        for rec in [*pending, *due]:
            if self._refused.get(rec.id, now) > now:
                continue
            await self.deliver(rec)

    async def deliver(self, rec: Recommendation) -> int:
        """Send one recommendation with its buttons to every destination; how many got it.
        Telegram being unreachable raises (after putting the recommendation back)."""
        now = self.clock()
        rec = await asyncio.to_thread(self.feedback.start_delivery, rec.id, now)
        markup = keyboard(self.handlers.signer, rec.id, rec.round)
        text = recommendation_html(rec.title, rec.body, rec.source_job)
        delivered = 0
        try:
            for chat_id in self.config.allowlist.destinations():
                delivered += await self._deliver_to(rec, chat_id, text, markup)
        finally:
            if not delivered:
                await asyncio.to_thread(self.feedback.undeliverable, rec.id, rec.round)
        if delivered:
            log.info("recommendation.sent", id=rec.id, round=rec.round, chats=delivered)
        else:
            self._refused[rec.id] = now + REFUSED_RETRY
            log.warning("recommendation.refused", id=rec.id, retry_after=str(REFUSED_RETRY))
        return delivered

    async def _deliver_to(self, rec: Recommendation, chat_id: int, text: str, markup: Any) -> int:
        try:
            (message,) = await send_html(self.app.bot, chat_id, [text], markup=markup)
        except (Forbidden, TelegramBadRequest) as exc:
            log.warning("bot.chat_refused", chat_id=chat_id, error=exc.message)
            return 0
        await asyncio.to_thread(
            self.feedback.add_delivery, rec.id, rec.round, chat_id, message.message_id, self.clock()
        )
        return 1

    async def broadcast(self, text: str) -> bool:
        """An alert (plain text, escaped here) to every destination; True when at least one
        chat got it."""
        if not self.connected or not self.link.up:
            return False
        reached, now = 0, self.clock()
        for chat_id in self.config.allowlist.destinations():
            if self._quiet_chats.get(chat_id, now) > now:
                continue
            try:
                await send_html(self.app.bot, chat_id, text_blocks(text))
            except (Forbidden, TelegramBadRequest) as exc:  # asking again soon will not help
                self._quiet_chats[chat_id] = now + REFUSED_RETRY
                log.warning(
                    "alert.chat_refused",
                    chat_id=chat_id,
                    error=self.redactor.text(exc.message),
                    retry_after=str(REFUSED_RETRY),
                )
            except TelegramError as exc:
                log.warning(
                    "alert.not_sent", chat_id=chat_id, error=self.redactor.text(exc.message)
                )
            else:
                reached += 1
        return reached > 0
