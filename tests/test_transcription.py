"""Voice-note transcription: the OpenAI-compatible service over real HTTP, and the local
faster-whisper backend (not installed here: a stand-in module with its interface, lazy
segments included, shows how the worker thread is driven)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import socket
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stores.transcription import (
    LocalWhisperTranscriber,
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


class _Segment:
    def __init__(self, text: str) -> None:
        self.text = text


class _WhisperModel:
    """faster-whisper's interface: ``transcribe`` returns lazy segments and an info object.
    The second segment waits for ``release``, as a long note keeps the thread decoding."""

    release = threading.Event()
    decoded: list[str] = []

    def __init__(self, path: str) -> None:
        self.path = path

    def transcribe(self, audio: Any, language: str | None = None) -> tuple[Any, Any]:
        def segments() -> Iterator[_Segment]:
            for n, words in enumerate((" Water the ", " ferns.", " And the moss.")):
                if n == 1:
                    self.release.wait(timeout=10)
                self.decoded.append(words)
                yield _Segment(words)

        return segments(), types.SimpleNamespace(language="en", duration=3.5)


@pytest.fixture
def whisper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    module = types.ModuleType("faster_whisper")
    module.__spec__ = importlib.machinery.ModuleSpec("faster_whisper", None)
    module.WhisperModel = _WhisperModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "faster_whisper", module)
    _WhisperModel.release = threading.Event()
    _WhisperModel.decoded = []
    yield tmp_path
    _WhisperModel.release.set()


async def test_local_whisper_joins_the_segments(whisper: Path) -> None:
    _WhisperModel.release.set()
    transcriber = make_transcriber(TranscriptionConfig("faster-whisper", model_path=whisper))
    assert isinstance(transcriber, LocalWhisperTranscriber)
    result = await transcriber.transcribe(AUDIO)
    assert result.to_dict() == {
        "text": "Water the ferns. And the moss.",
        "language": "en",
        "duration_s": 3.5,
        "backend": "faster-whisper",
    }


async def test_local_whisper_over_its_time_stops_the_thread_at_the_next_segment(
    whisper: Path,
) -> None:
    config = TranscriptionConfig("faster-whisper", model_path=whisper, timeout_s=0.2)
    transcriber = make_transcriber(config)
    assert isinstance(transcriber, LocalWhisperTranscriber)
    with pytest.raises(TranscriptionError, match=r"longer than 0.2 s to transcribe"):
        await transcriber.transcribe(AUDIO)
    worker = transcriber._lock  # held by the thread while it decodes
    _WhisperModel.release.set()
    assert worker.acquire(timeout=10), "the thread ended"
    assert _WhisperModel.decoded == [" Water the ", " ferns."], "nothing decoded after the stop"
