"""Voice notes: fetched from the (fake) Bot API, transcribed by a (fake) OpenAI-compatible
service over real HTTP, stored, added to memory, and read back safely escaped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.voice_notes import VoiceNotes
from tests.bot_support import OWNER, reply_to, supervised
from tests.fake_telegram import FakeTelegram, running
from tests.fake_transcription import KEY, FakeTranscription
from tests.fake_transcription import running as transcription_running

AUDIO = b"OggS\x00\x02 opus frames"
HOSTILE = "Buy <milk> & eggs </b> *now* \x1b[2J\u202eevil \x00 at 5 > 3"


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from running()


@pytest.fixture
def whisper() -> Iterator[FakeTranscription]:
    yield from transcription_running(text=HOSTILE, language="en", duration=4.2)


def _env(whisper: FakeTranscription) -> dict[str, str]:
    return {
        "OPENCLAW_INFRA_TRANSCRIPTION__BACKEND": "openai",
        "OPENCLAW_INFRA_TRANSCRIPTION__BASE_URL": whisper.base_url,
        "OPENCLAW_INFRA_TRANSCRIPTION__API_KEY": KEY,
    }


async def test_a_voice_note_is_transcribed_kept_remembered_and_read_back(
    root: Path, tg: FakeTelegram, whisper: FakeTranscription
) -> None:
    env = _env(whisper)
    async with supervised(root, tg, env=env) as sup:
        message_id = tg.send_voice(tg.add_file(AUDIO), user_id=OWNER)
        reply = await reply_to(tg, message_id)
        assert reply.params["parse_mode"] == "HTML"
        assert reply.text == "🎙 en · 4s\nBuy <milk> & eggs </b> *now* [2Jevil  at 5 > 3"
        assert tg.file_downloads == ["voice/file_1.oga"]
        (upload,) = whisper.uploads
        assert upload.audio == AUDIO
        found = await sup.api.call("memory.search", {"query": "milk eggs", "k": 3})
        assert found["results"][0]["text"].startswith("Voice note: Buy <milk> & eggs")
        assert found["results"][0]["source"]["tags"] == ["voice", "telegram"]
    notes = VoiceNotes(root / "state" / "voice.sqlite")
    try:
        (note,) = await asyncio.to_thread(notes.recent)
    finally:
        notes.close()
    assert note.result.to_dict() == {
        "text": HOSTILE,
        "language": "en",
        "duration_s": 4.2,
        "backend": "openai",
    }
    assert (note.chat_id, note.message_id, note.user_id) == (OWNER, message_id, OWNER)
    assert note.memory_id is not None
    assert note.memory_id.startswith("manual:")


async def test_without_a_backend_the_bot_says_transcription_is_not_configured(
    root: Path, tg: FakeTelegram
) -> None:
    async with supervised(root, tg):
        reply = await reply_to(tg, tg.send_voice(tg.add_file(AUDIO), user_id=OWNER))
    assert reply.text.startswith("⚠️ Transcription is not configured.")
    assert tg.file_downloads == [], "nothing fetched that cannot be used"


async def test_faster_whisper_configured_but_not_installed_says_so(
    root: Path, tg: FakeTelegram
) -> None:
    env = {
        "OPENCLAW_INFRA_TRANSCRIPTION__BACKEND": "faster-whisper",
        "OPENCLAW_INFRA_TRANSCRIPTION__MODEL_PATH": str(root),
    }
    async with supervised(root, tg, env=env):
        reply = await reply_to(tg, tg.send_voice(tg.add_file(AUDIO), user_id=OWNER))
    assert reply.text == (
        "⚠️ Transcription is unavailable: faster-whisper is not installed"
        " (pip install faster-whisper)"
    )


async def test_a_failing_service_is_told_in_the_chat(
    root: Path, tg: FakeTelegram, whisper: FakeTranscription
) -> None:
    whisper.failures.append(503)
    async with supervised(root, tg, env=_env(whisper)):
        reply = await reply_to(tg, tg.send_voice(tg.add_file(AUDIO), user_id=OWNER))
    assert reply.text == (
        "⚠️ Could not transcribe: the transcription service answered 503: failure 503"
    )
