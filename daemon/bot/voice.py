"""Voice notes: fetched from Telegram, transcribed, kept, added to memory, read back.

The transcript is stored (``stores.voice_notes``) before anything else can fail, and added to
memory through the socket API's ``memory.add``, like ``infractl memory add`` would; a memory
store that is not open costs the memory entry, not the transcript or the reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from daemon.bot import render
from daemon.bot.messages import send_html
from daemon.bot.text import esc
from daemon.errors import InfraError
from daemon.logs import get_logger
from jobs.base import Clock
from stores.transcription import Transcriber, TranscriptionError
from stores.voice_notes import VoiceNotes

log = get_logger(__name__)

ApiCall = Callable[[str, dict[str, Any]], Awaitable[Any]]

#: The Bot API hands out files up to 20 MB.
MAX_VOICE_BYTES = 20 * 2**20
#: ``memory.add`` takes at most this much text.
MAX_MEMORY_TEXT = 20_000
NOT_CONFIGURED = (
    "Transcription is not configured. Set OPENCLAW_INFRA_TRANSCRIPTION__BACKEND"
    " (openai or faster-whisper) to have voice notes transcribed."
)


class VoiceNoteHandler:
    def __init__(
        self,
        *,
        call: ApiCall,
        transcriber: Transcriber | None,
        unavailable: str | None,
        notes: VoiceNotes | None,
        clock: Clock,
    ) -> None:
        self.call = call
        self.transcriber = transcriber
        #: Why a configured backend does not work (not installed, no model), if so.
        self.unavailable = unavailable
        self.notes = notes
        self.clock = clock

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.voice is None:
            return
        if self.transcriber is None or self.notes is None:
            reason = (
                f"Transcription is unavailable: {self.unavailable}"
                if self.unavailable
                else NOT_CONFIGURED
            )
            await self._say(update, render.failure(reason))
            return
        voice = message.voice
        if voice.file_size is not None and voice.file_size > MAX_VOICE_BYTES:
            await self._say(update, render.failure("That voice note is too long to fetch (20 MB)."))
            return
        try:
            file = await voice.get_file()
            audio = bytes(await file.download_as_bytearray())
            result = await self.transcriber.transcribe(
                audio, filename="voice.ogg", mime=voice.mime_type or "audio/ogg"
            )
        except TranscriptionError as exc:
            log.warning("voice.failed", error=str(exc))
            await self._say(update, render.failure(f"Could not transcribe: {exc}"))
            return
        except TelegramError as exc:
            log.warning("voice.fetch_failed", error=exc.message)
            await self._say(update, render.failure("Could not fetch the voice note from Telegram."))
            return
        user = update.effective_user
        note = await asyncio.to_thread(
            self.notes.add,
            result,
            at=self.clock(),
            chat_id=message.chat_id,
            message_id=message.message_id,
            user_id=user.id if user else None,
        )
        log.info(
            "voice.transcribed", note_id=note.id, backend=result.backend, chars=len(result.text)
        )
        blocks = render.transcript(
            result.text, language=result.language, duration_s=result.duration_s
        )
        if result.text:
            problem = await self._remember(note.id, result.text)
            if problem:
                blocks.append(f"<i>{esc(problem)}</i>")
        await self._say(update, blocks)

    async def _remember(self, note_id: int, text: str) -> str | None:
        """Into memory; what went wrong, if anything, for the reply."""
        params = {"text": f"Voice note: {text}"[:MAX_MEMORY_TEXT], "tags": ["voice", "telegram"]}
        try:
            added = await self.call("memory.add", params)
        except InfraError as exc:
            log.warning("voice.not_in_memory", note_id=note_id, error=exc.message)
            return f"not kept in memory: {exc.message}"
        assert self.notes is not None
        await asyncio.to_thread(self.notes.set_memory_id, note_id, added["id"])
        return None

    async def _say(self, update: Update, blocks: list[str]) -> None:
        message = update.effective_message
        assert message is not None
        await send_html(message.get_bot(), message.chat_id, blocks, reply_to=message.message_id)

    async def aclose(self) -> None:
        if self.transcriber is not None:
            await self.transcriber.aclose()
        if self.notes is not None:
            await asyncio.to_thread(self.notes.close)
