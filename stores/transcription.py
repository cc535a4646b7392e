"""Speech to text for voice notes: an OpenAI-compatible service, or faster-whisper on this
machine.

The service is anything that speaks OpenAI's ``POST /audio/transcriptions`` (OpenAI itself, a
faster-whisper server, whisper.cpp's server, vLLM); it is asked for ``verbose_json`` so that the
language and duration come back too, and plain ``json`` when it refuses that. faster-whisper is
an optional dependency, loaded only when chosen and only from a model directory given by
setting: nothing is downloaded behind the person's back.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from stores.redaction import Redactor

Backend = Literal["none", "openai", "faster-whisper"]


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    language: str | None
    duration_s: float | None
    backend: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "duration_s": self.duration_s,
            "backend": self.backend,
        }


class TranscriptionError(Exception):
    """A transcription failed; the message is safe to show (keys taken out)."""


class TranscriptionUnavailable(TranscriptionError):
    """The configured backend cannot work here (not installed, no model)."""


class Transcriber(Protocol):
    backend: str

    async def transcribe(
        self, audio: bytes, *, filename: str = "voice.ogg", mime: str = "audio/ogg"
    ) -> TranscriptionResult: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class TranscriptionConfig:
    backend: Backend = "none"
    base_url: str | None = None
    api_key: str | None = None
    model: str = "whisper-1"
    model_path: Path | None = None
    language: str | None = None
    timeout_s: float = 120.0


def make_transcriber(config: TranscriptionConfig) -> Transcriber | None:
    """The configured transcriber; None when none is; ``TranscriptionUnavailable`` saying what
    is missing when one is configured but cannot work."""
    if config.backend == "none":
        return None
    if config.backend == "openai":
        if not config.base_url:
            raise TranscriptionUnavailable(
                "transcription backend openai needs a base_url (e.g. https://api.openai.com/v1)"
            )
        return OpenAITranscriber(
            config.base_url,
            config.model,
            api_key=config.api_key,
            language=config.language,
            timeout=config.timeout_s,
        )
    if config.model_path is None:
        raise TranscriptionUnavailable("transcription backend faster-whisper needs a model_path")
    return LocalWhisperTranscriber(
        config.model_path, language=config.language, timeout_s=config.timeout_s
    )


class OpenAITranscriber:
    backend = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        language: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/audio/transcriptions"
        self.model = model
        self.language = language
        self._redactor = Redactor([api_key] if api_key else [])
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"OpenAITranscriber({self.url!r}, {self.model!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def transcribe(
        self, audio: bytes, *, filename: str = "voice.ogg", mime: str = "audio/ogg"
    ) -> TranscriptionResult:
        response = await self._post(audio, filename, mime, "verbose_json")
        if response.status_code == 400 and "response_format" in response.text:
            response = await self._post(audio, filename, mime, "json")
        if response.status_code != 200:
            raise TranscriptionError(
                f"the transcription service answered {response.status_code}:"
                f" {self._redactor.text(_error_text(response))}"
            )
        try:
            body = response.json()
            text = str(body["text"]).strip()
        except (ValueError, KeyError, TypeError):
            raise TranscriptionError("the transcription service sent no text") from None
        duration = body.get("duration")
        return TranscriptionResult(
            text=text,
            language=body.get("language") or self.language,
            duration_s=float(duration) if isinstance(duration, (int, float)) else None,
            backend=self.backend,
        )

    async def _post(self, audio: bytes, filename: str, mime: str, fmt: str) -> httpx.Response:
        data = {"model": self.model, "response_format": fmt}
        if self.language:
            data["language"] = self.language
        try:
            return await self._client.post(
                self.url, data=data, files={"file": (filename, audio, mime)}
            )
        except httpx.TimeoutException:
            raise TranscriptionError("the transcription service did not answer in time") from None
        except httpx.HTTPError as exc:
            reason = self._redactor.text(str(exc)) or type(exc).__name__
            raise TranscriptionError(
                f"the transcription service is unreachable: {reason}"
            ) from None


class Stopped(Exception):
    """The worker thread was told to stop between two segments."""


class LocalWhisperTranscriber:
    """faster-whisper in a worker thread; the model is loaded on first use and kept.

    A thread cannot be cancelled, so the work checks a flag between segments (faster-whisper
    decodes lazily, segment by segment): a note that takes longer than ``timeout_s``, or a
    daemon that is stopping, ends the thread within one segment instead of holding the exit.
    """

    backend = "faster-whisper"

    def __init__(
        self, model_path: Path, *, language: str | None = None, timeout_s: float = 120.0
    ) -> None:
        if importlib.util.find_spec("faster_whisper") is None:
            raise TranscriptionUnavailable(
                "faster-whisper is not installed (pip install faster-whisper)"
            )
        if not model_path.is_dir():
            raise TranscriptionUnavailable(f"no faster-whisper model at {model_path}")
        self.model_path = model_path
        self.language = language
        self.timeout_s = timeout_s
        self._model: Any = None
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def __repr__(self) -> str:
        return f"LocalWhisperTranscriber({str(self.model_path)!r})"

    async def aclose(self) -> None:
        self._closing.set()
        self._model = None

    async def transcribe(
        self, audio: bytes, *, filename: str = "voice.ogg", mime: str = "audio/ogg"
    ) -> TranscriptionResult:
        stop = threading.Event()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.to_thread(self._transcribe, audio, stop)
        except TimeoutError:
            raise TranscriptionError(
                f"the voice note took longer than {self.timeout_s:g} s to transcribe"
            ) from None
        except Stopped:
            raise TranscriptionError("transcription stopped: the daemon is stopping") from None
        finally:
            stop.set()  # on a timeout or a cancel: the thread ends at the next segment

    def _transcribe(self, audio: bytes, stop: threading.Event) -> TranscriptionResult:
        with self._lock:
            if self._model is None:
                module = importlib.import_module("faster_whisper")
                self._model = module.WhisperModel(str(self.model_path))
            segments, info = self._model.transcribe(io.BytesIO(audio), language=self.language)
            texts = []
            for segment in segments:
                if stop.is_set() or self._closing.is_set():
                    raise Stopped
                texts.append(segment.text.strip())
        return TranscriptionResult(
            " ".join(texts).strip(), info.language, float(info.duration), self.backend
        )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))[:200]
    return str(error or body)[:200]
