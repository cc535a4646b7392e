"""Embedders that live outside this process's ONNX runtime: an HTTP service, or torch.

Chosen by setting instead of the offline default (``stores.memory.embedders.make_embedder``);
the store does not change. Both are blocking, like every embedder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from stores.counts import count
from stores.memory.embeddings import (
    EmbedderSpec,
    EmbedderUnavailable,
    EmbeddingServiceError,
    FloatArray,
    l2_normalise,
)
from stores.redaction import Redactor


class OpenAIEmbedder:
    """Any server that speaks OpenAI's ``POST /embeddings``: OpenAI, Ollama, llama.cpp, vLLM."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.batch_size = batch_size
        self.timeout = timeout
        self._api_key = api_key
        self._redactor = Redactor([api_key] if api_key else [])
        self._dimension: int | None = None
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.base_url!r}, {self.model!r})"

    @property
    def id(self) -> str:
        return f"openai/{self.model}"

    @property
    def dimension(self) -> int:
        """Known after the first request; asked of the service if nothing was embedded yet."""
        if self._dimension is None:
            self.embed(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    @property
    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(kind="openai", model=self.model, base_url=self.base_url)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.empty((0, self._dimension or 0), dtype=np.float32)
        batches = [
            self._request(list(texts[start : start + self.batch_size]))
            for start in range(0, len(texts), self.batch_size)
        ]
        return l2_normalise(np.concatenate(batches))

    def _request(self, batch: list[str]) -> FloatArray:
        url = f"{self.base_url}/embeddings"
        try:
            response = self._http().post(url, json={"model": self.model, "input": batch})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._failure(f"{url} unreachable: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise self._failure(
                f"{url} answered {response.status_code}: {_error_text(response)}",
                status=response.status_code,
            )
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            rows = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise self._failure(f"{url} sent a malformed answer: {exc}") from None
        if rows.ndim != 2 or len(rows) != len(batch):
            sent, asked = count(len(rows), "vector"), count(len(batch), "text")
            raise self._failure(f"{url} sent {sent} for {asked}")
        if self._dimension not in (None, rows.shape[1]):
            raise self._failure(f"{url} changed dimension {self._dimension} -> {rows.shape[1]}")
        self._dimension = rows.shape[1]
        return rows

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(headers=headers, timeout=self.timeout)
            return self._client

    def _failure(self, message: str, *, status: int | None = None) -> EmbeddingServiceError:
        return EmbeddingServiceError(
            self._redactor.text(f"embedding service: {message}"), status=status
        )


def _error_text(response: httpx.Response) -> str:
    """OpenAI's ``{"error": {"message": ...}}``, a bare ``{"error": "..."}``, or the body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    text = str(error) if error else response.text
    return " ".join(text.split())[:300] or response.reason_phrase


class SentenceTransformersEmbedder:
    """A sentence-transformers model already on this machine (a local path or the HF cache).

    The package is optional and imported only when this embedder is chosen; it never downloads:
    a model that is not there locally is an error, not a fetch.
    """

    def __init__(self, model: str, *, threads: int | None = None, batch_size: int = 32) -> None:
        if importlib.util.find_spec("sentence_transformers") is None:
            raise EmbedderUnavailable(
                "the sentence-transformers embedder needs the sentence-transformers package,"
                " which is not installed (pip install sentence-transformers)"
            )
        self.model = model
        self.threads = threads
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformersEmbedder({self.model!r})"

    @property
    def id(self) -> str:
        return f"sentence-transformers/{self.model}"

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_sentence_embedding_dimension())

    @property
    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(kind="sentence-transformers", model=self.model, threads=self.threads)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        rows = self._loaded().encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return l2_normalise(rows)

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                module = importlib.import_module("sentence_transformers")
                if self.threads:
                    importlib.import_module("torch").set_num_threads(self.threads)
                try:
                    self._model = module.SentenceTransformer(
                        self.model, device="cpu", local_files_only=True
                    )
                except OSError as exc:
                    raise EmbedderUnavailable(
                        f"sentence-transformers model {self.model!r} is not on this machine: {exc}"
                    ) from None
            return self._model
