"""Voice-note transcription: the OpenAI-compatible service over real HTTP, and the local
faster-whisper backend, which is not installed here."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.transcription import (
    OpenAITranscriber,
    TranscriptionConfig,
    TranscriptionError,
    TranscriptionUnavailable,
    make_transcriber,
)
from tests.fake_transcription import KEY, FakeTranscription, running

AUDIO = b"OggS\x00fake opus bytes"


@pytest.fixture
def service() -> Iterator[FakeTranscription]:
    yield from running()


def _transcriber(service: FakeTranscription, key: str = KEY) -> OpenAITranscriber:
    made = make_transcriber(
        TranscriptionConfig(backend="openai", base_url=service.base_url, api_key=key)
    )
    assert isinstance(made, OpenAITranscriber)
    return made


async def test_the_service_gets_the_audio_and_returns_text_language_duration(
    service: FakeTranscription,
) -> None:
    transcriber = _transcriber(service)
    try:
        result = await transcriber.transcribe(AUDIO)
    finally:
        await transcriber.aclose()
    assert result.to_dict() == {
        "text": "hello from a voice note",
        "language": "en",
        "duration_s": 3.5,
        "backend": "openai",
    }
    (upload,) = service.uploads
    assert upload.audio == AUDIO
    assert upload.filename == "voice.ogg"
    assert upload.fields == {"model": "whisper-1", "response_format": "verbose_json"}


async def test_a_service_without_verbose_json_still_gives_the_text(
    service: FakeTranscription,
) -> None:
    service.json_only = True
    transcriber = _transcriber(service)
    try:
        result = await transcriber.transcribe(AUDIO)
    finally:
        await transcriber.aclose()
    assert (result.text, result.language, result.duration_s) == (service.text, None, None)
    assert [u.fields["response_format"] for u in service.uploads] == ["verbose_json", "json"]


async def test_failures_are_told_without_the_key(service: FakeTranscription) -> None:
    wrong = "sk-wrong-key-that-must-not-show-0123"
    transcriber = _transcriber(service, key=wrong)
    try:
        with pytest.raises(TranscriptionError, match="answered 401") as caught:
            await transcriber.transcribe(AUDIO)
    finally:
        await transcriber.aclose()
    assert wrong not in str(caught.value)
    service.failures.append(503)
    transcriber = _transcriber(service)
    try:
        with pytest.raises(TranscriptionError, match="503: failure 503"):
            await transcriber.transcribe(AUDIO)
    finally:
        await transcriber.aclose()


async def test_an_unreachable_service_is_an_error_not_a_crash() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transcriber = OpenAITranscriber(f"http://127.0.0.1:{port}/v1", "whisper-1", timeout=2)
    try:
        with pytest.raises(TranscriptionError, match="unreachable"):
            await transcriber.transcribe(AUDIO)
    finally:
        await transcriber.aclose()


def test_no_backend_means_no_transcriber() -> None:
    assert make_transcriber(TranscriptionConfig()) is None
    with pytest.raises(TranscriptionUnavailable, match="needs a base_url"):
        make_transcriber(TranscriptionConfig(backend="openai"))
    with pytest.raises(TranscriptionUnavailable, match="needs a model_path"):
        make_transcriber(TranscriptionConfig(backend="faster-whisper"))


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is not None, reason="faster-whisper is installed"
)
def test_faster_whisper_not_installed_says_so(tmp_path: Path) -> None:
    config = TranscriptionConfig(backend="faster-whisper", model_path=tmp_path)
    with pytest.raises(TranscriptionUnavailable, match="pip install faster-whisper"):
        make_transcriber(config)
