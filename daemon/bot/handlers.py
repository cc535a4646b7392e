"""What the bot does with an update: the gate first, then commands, buttons and voice notes.

Every command is a call of the daemon's socket API (``call``), the same method with the same
parameters ``infractl`` sends, so the two faces cannot disagree; a refusal comes back as the
API's own message. Nothing here reads a store for a command's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from telegram import Bot, Update, User
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from daemon.bot import render
from daemon.bot.callbacks import BadCallback, CallbackSigner
from daemon.bot.messages import outcome_html, recommendation_html, send_html
from daemon.bot.voice import VoiceNoteHandler
from daemon.errors import InfraError
from daemon.logs import get_logger
from jobs.base import Clock
from stores.coordination.feedback import Choice, ChoiceOutcome

log = get_logger(__name__)

ApiCall = Callable[[str, dict[str, Any]], Awaitable[Any]]
Context = ContextTypes.DEFAULT_TYPE
Draw = Callable[[Any], list[str]]

RUNS_SHOWN = 10
REFUSED_LOG_EVERY = 60.0
#: Past this many remembered strangers, those not seen for a minute are forgotten.
REFUSED_REMEMBERED = 256
RESULTS_SHOWN = 5

_POLITE = {
    ChoiceOutcome.UNKNOWN: "I no longer know this recommendation.",
    ChoiceOutcome.STALE: "These buttons are from an earlier message; use the newest one.",
}


@dataclass(frozen=True)
class Allowlist:
    users: frozenset[int]
    chats: frozenset[int]

    @property
    def empty(self) -> bool:
        return not self.users and not self.chats

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        """A listed user anywhere; anyone in a listed chat."""
        return (user_id is not None and user_id in self.users) or (
            chat_id is not None and chat_id in self.chats
        )

    def destinations(self) -> list[int]:
        """Where the bot speaks first (alerts, recommendations): the listed chats, else the
        listed users' private chats (whose ids are the users' ids)."""
        return sorted(self.chats or self.users)


class Handlers:
    def __init__(
        self,
        *,
        call: ApiCall,
        allowlist: Allowlist,
        signer: CallbackSigner,
        voice: VoiceNoteHandler,
        clock: Clock,
        zone: tzinfo,
        refine: bool,
    ) -> None:
        self.call = call
        self.allowlist = allowlist
        self.signer = signer
        self.voice_notes = voice
        self.clock = clock
        self.zone = zone
        self.refine_on = refine
        self._refused_logged: dict[tuple[int | None, str], float] = {}

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        commands: dict[str, Callable[[Update, Context], Coroutine[Any, Any, None]]] = {
            "start": self.help,
            "help": self.help,
            "status": self.status,
            "health": self.health,
            "jobs": self.jobs,
            "runs": self.runs,
            "trigger": self.trigger,
            "pause": self.pause,
            "resume": self.resume,
            "search": self.search,
            "refine": self.refine,
        }
        for name, callback in commands.items():
            app.add_handler(CommandHandler(name, callback))
        app.add_handler(CallbackQueryHandler(self.tap))
        app.add_handler(MessageHandler(filters.VOICE, self.voice_notes.handle))
        app.add_handler(MessageHandler(filters.COMMAND, self.unknown))
        app.add_handler(MessageHandler(filters.TEXT, self.hint))
        app.add_error_handler(self.error)

    async def gate(self, update: Update, context: Context) -> None:
        user = update.effective_user
        chat = update.effective_chat
        user_id = user.id if user else None
        chat_id = chat.id if chat else None
        if self.allowlist.allows(user_id, chat_id):
            return
        kind = _kind(update)
        # One line per stranger and kind of update a minute: a flood of them stays one line.
        now = time.monotonic()
        if now - self._refused_logged.get((user_id, kind), -REFUSED_LOG_EVERY) >= REFUSED_LOG_EVERY:
            self._forget_old_strangers(now)
            self._refused_logged[(user_id, kind)] = now
            log.warning("bot.refused", user_id=user_id, chat_id=chat_id, kind=kind)
        raise ApplicationHandlerStop

    def _forget_old_strangers(self, now: float) -> None:
        """Only the last minute's strangers matter (for the once-a-minute log line); without
        this, every stranger who ever wrote would stay in memory for the life of the daemon."""
        if len(self._refused_logged) >= REFUSED_REMEMBERED:
            self._refused_logged = {
                key: at for key, at in self._refused_logged.items() if now - at < REFUSED_LOG_EVERY
            }

    # --- commands ----------------------------------------------------------------------------

    async def help(self, update: Update, context: Context) -> None:
        on = self.voice_notes.transcriber is not None
        await self.reply(update, render.help_text(refine=self.refine_on, voice=on))

    async def status(self, update: Update, context: Context) -> None:
        await self.answer(update, "status", {}, lambda d: render.status(d, self.clock()))

    async def health(self, update: Update, context: Context) -> None:
        await self.answer(update, "health", {}, render.health)

    async def jobs(self, update: Update, context: Context) -> None:
        await self.answer(update, "jobs", {}, lambda d: render.jobs(d, self.clock()))

    async def runs(self, update: Update, context: Context) -> None:
        job = argument(update)
        params: dict[str, Any] = {"limit": RUNS_SHOWN, **({"job": job} if job else {})}
        await self.answer(update, "runs", params, lambda d: render.runs(d, self.clock()))

    async def trigger(self, update: Update, context: Context) -> None:
        await self.with_job(update, "trigger", render.triggered)

    async def pause(self, update: Update, context: Context) -> None:
        await self.with_job(update, "pause", lambda d: render.paused(d["paused"], "paused"))

    async def resume(self, update: Update, context: Context) -> None:
        await self.with_job(update, "resume", lambda d: render.paused(d["resumed"], "resumed"))

    async def search(self, update: Update, context: Context) -> None:
        query = argument(update)
        if not query:
            await self.reply(update, ["usage: /search &lt;words&gt;"])
            return
        params = {"query": query, "k": RESULTS_SHOWN}
        await self.answer(update, "memory.search", params, lambda d: render.search(d, self.zone))

    async def refine(self, update: Update, context: Context) -> None:
        prompt = argument(update)
        if not prompt:
            await self.reply(update, ["usage: /refine &lt;prompt&gt;"])
            return
        await self.answer(update, "refine", {"prompt": prompt}, render.refined)

    async def unknown(self, update: Update, context: Context) -> None:
        await self.reply(update, ["I do not know that command; /help lists them."])

    async def hint(self, update: Update, context: Context) -> None:
        await self.reply(update, ["I answer commands; /help lists them."])

    async def with_job(self, update: Update, method: str, draw: Draw) -> None:
        job = argument(update)
        if not job:
            await self.reply(update, [f"usage: /{method} &lt;job&gt; (see /jobs)"])
            return
        await self.answer(update, method, {"job": job}, draw)

    async def answer(self, update: Update, method: str, params: dict[str, Any], draw: Draw) -> None:
        try:
            blocks = draw(await self.call(method, params))
        except InfraError as exc:
            blocks = render.failure(exc.message)
        await self.reply(update, blocks)

    async def reply(self, update: Update, blocks: list[str]) -> None:
        message = update.effective_message
        if message is None:
            return
        await send_html(message.get_bot(), message.chat_id, blocks, reply_to=message.message_id)

    # --- buttons -----------------------------------------------------------------------------

    async def tap(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None  # CallbackQueryHandler only passes callback queries
        try:
            tap = self.signer.decode(query.data)
        except BadCallback as exc:
            log.warning("bot.callback_refused", reason=exc.reason, user_id=query.from_user.id)
            await query.answer("This button is not valid (any more).")
            return
        params = {
            "id": tap.recommendation_id,
            "round": tap.round,
            "choice": tap.choice.value,
            "user_id": query.from_user.id,
        }
        result = await self.call("feedback.answer", params)
        outcome = ChoiceOutcome(result["outcome"])
        log.info("bot.callback", outcome=outcome.value, id=tap.recommendation_id, round=tap.round)
        if outcome is ChoiceOutcome.RECORDED:
            await query.answer(f"Noted: {tap.choice.value.replace('_', ' ')}.")
            await self.show_choice(query.get_bot(), result["recommendation"], query.from_user)
        elif outcome is ChoiceOutcome.ALREADY:
            choice = result["recommendation"]["choice"] or "?"
            await query.answer(f"Already answered ({choice.replace('_', ' ')}); nothing changed.")
        else:
            await query.answer(_POLITE[outcome])

    async def show_choice(self, bot: Bot, rec: dict[str, Any], user: User) -> None:
        """Every message of this round now shows the choice, without buttons."""
        outcome = outcome_html(
            Choice(rec["choice"]), rec["snooze_until"], self.zone, user.first_name
        )
        text = recommendation_html(rec["title"], rec["body"], rec["source_job"], outcome)
        edits = [
            bot.edit_message_text(text, d["chat_id"], d["message_id"], parse_mode=ParseMode.HTML)
            for d in rec["deliveries"]
            if d["round"] == rec["round"]
        ]
        for result in await asyncio.gather(*edits, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("bot.edit_failed", error=type(result).__name__)

    async def error(self, update: object, context: Context) -> None:
        """A handler broke: say so briefly in the chat, log it (the log redacts)."""
        log.error("bot.handler_failed", exc_info=context.error)
        if isinstance(update, Update) and update.effective_message is not None:
            with contextlib.suppress(TelegramError):  # Telegram itself may be what broke
                await self.reply(
                    update, ["⚠️ Something went wrong; the daemon's log has the details."]
                )


def argument(update: Update) -> str:
    """What follows the command, spacing inside kept."""
    text = update.effective_message.text if update.effective_message else None
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _kind(update: Update) -> str:
    if update.callback_query is not None:
        return "callback"
    message = update.effective_message
    if message is None:
        return "other"
    if message.voice is not None:
        return "voice"
    return "command" if (message.text or "").startswith("/") else "message"
