from __future__ import annotations

import asyncio
import json
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.api.client import Client
from chromadb.config import Settings

from stores.memory.chroma_embedding import InfraEmbeddingFunction, embedding_function
from stores.memory.embedders import make_embedder
from stores.memory.embedding_services import OpenAIEmbedder
from stores.memory.embeddings import (
    TOKENIZER_PATH,
    TOKENIZER_SHA256,
    EmbedderUnavailable,
    EmbeddingServiceError,
    FloatArray,
    MiniLMEmbedder,
    ModelFileMismatch,
    embed_async,
    sha256_of,
)

# Every word is one WordPiece token, so N words are N + 2 tokens with [CLS] and [SEP].
WORDS = [
    *("the", "cat", "sat", "on", "a", "mat", "and", "we", "talked", "about", "plans", "for"),
    *("next", "week", "while", "coffee", "went", "cold", "in", "the", "kitchen", "near"),
    *("an", "open", "window"),
]
KEY = "sk-test-0123456789abcdefghijklmnop"


def words(count: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(count))


def cosine(a: FloatArray, b: FloatArray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


def test_vectors_have_384_dimensions_and_unit_length(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(["Remind me to water the plants.", "", "ok"])
    assert vectors.shape == (3, 384)
    assert minilm.dimension == 384
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embedding_is_deterministic(minilm: MiniLMEmbedder) -> None:
    texts = ["Book the table for Friday.", "The build failed again on CI."]
    first = minilm.embed(texts)
    assert np.array_equal(first, minilm.embed(texts))
    np.testing.assert_allclose(first, MiniLMEmbedder(threads=1).embed(texts), atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_sentences(minilm: MiniLMEmbedder) -> None:
    triples = [
        (
            "How do I reset my password?",
            "What are the steps to change my password?",
            "The weather in Paris is sunny today.",
        ),
        (
            "Can you move my dentist appointment to Thursday?",
            "Please reschedule the dentist visit for Thursday.",
            "Our quarterly revenue grew by ten percent.",
        ),
        (
            "The flight to Tokyo was delayed by three hours.",
            "My plane to Tokyo left three hours late.",
            "I like my coffee with oat milk.",
        ),
    ]
    for anchor, paraphrase, unrelated in triples:
        a, p, u = minilm.embed([anchor, paraphrase, unrelated])
        assert cosine(a, p) > cosine(a, u) + 0.3, (anchor, cosine(a, p), cosine(a, u))
        assert cosine(a, p) > cosine(p, u) + 0.3


def test_padding_to_the_longest_text_does_not_change_a_short_text(minilm: MiniLMEmbedder) -> None:
    short = "Call mom tonight."
    alone = minilm.embed([short])[0]
    # One batch, so the short text is padded to the long one's ~200 tokens and masked.
    batched = minilm.embed([words(200), short])[1]
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_batching_gives_the_same_rows_as_one_text_at_a_time(minilm: MiniLMEmbedder) -> None:
    texts = [words(n) for n in (3, 120, 1, 40, 250, 7, 60, 0, 15)]
    together = minilm.embed(texts)
    one_by_one = MiniLMEmbedder(batch_size=1).embed(texts)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_order_is_restored_after_sorting_by_length(minilm: MiniLMEmbedder) -> None:
    texts = [
        "A rather long message about the garden, the fence that needs paint and the roses.",
        "Hi",
        "Meeting moved to 3pm.",
        "What did we decide about the holiday budget last week, and who books the hotel?",
        "Thanks!",
    ]
    singles = np.stack([minilm.embed([text])[0] for text in texts])
    sorted_in_small_batches = MiniLMEmbedder(batch_size=2).embed(texts)
    np.testing.assert_allclose(sorted_in_small_batches, singles, atol=1e-5)
    assert list(np.argmax(sorted_in_small_batches @ singles.T, axis=1)) == list(range(len(texts)))


def test_an_empty_list_gives_an_empty_matrix() -> None:
    embedder = MiniLMEmbedder()
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert "not loaded" in repr(embedder)  # nothing to embed, nothing loaded


def test_a_long_text_is_truncated_at_256_tokens(minilm: MiniLMEmbedder) -> None:
    huge, first_300, first_200 = minilm.embed([words(5000), words(300), words(200)])
    np.testing.assert_allclose(np.linalg.norm(huge), 1.0, atol=1e-5)
    # Past 254 words both are cut to the same 256 tokens ...
    np.testing.assert_allclose(huge, first_300, atol=1e-5)
    # ... and 202 tokens are not cut, so truncation is not the tokenizer file's own 128.
    assert not np.allclose(huge, first_200, atol=1e-3)


def test_a_tokenizer_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "tokenizer.json"
    shutil.copyfile(TOKENIZER_PATH, damaged)
    data = bytearray(damaged.read_bytes())
    data[1000] ^= 0x01
    damaged.write_bytes(bytes(data))

    with pytest.raises(ModelFileMismatch) as caught:
        MiniLMEmbedder(tokenizer_path=damaged).embed(["hello"])
    message = str(caught.value)
    assert message.startswith(f"{damaged}: sha256 ")
    assert TOKENIZER_SHA256 in message
    assert "\n" not in message
    assert caught.value.path == damaged


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "model.onnx"
    with pytest.raises(ModelFileMismatch, match=r"model\.onnx: missing"):
        MiniLMEmbedder(model_path=missing, model_sha256="0" * 64).load()


def test_the_shipped_tokenizer_is_the_pinned_one() -> None:
    assert sha256_of(TOKENIZER_PATH) == TOKENIZER_SHA256
    notice = (TOKENIZER_PATH.parent / "README.md").read_text()
    assert TOKENIZER_SHA256 in notice
    assert "Apache-2.0" in notice
    assert (TOKENIZER_PATH.parent / "LICENSE").is_file()


async def test_embed_async_runs_off_the_event_loop_thread() -> None:
    @dataclass
    class Recording:
        threads: list[int] = field(default_factory=list)
        id: str = "recording"
        dimension: int = 2
        spec: Any = None

        def embed(self, texts: Sequence[str]) -> FloatArray:
            self.threads.append(threading.get_ident())
            return np.ones((len(texts), 2), dtype=np.float32)

    recording = Recording()
    vectors = await embed_async(recording, ["a", "b"])
    assert vectors.shape == (2, 2)
    assert recording.threads
    assert recording.threads != [threading.get_ident()]
    await asyncio.sleep(0)


def test_a_collection_reopens_with_its_embedder(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    settings = Settings(anonymized_telemetry=False)
    documents = {
        "dentist": "The dentist appointment moved to Thursday at 9am.",
        "espresso": "We bought a new espresso machine for the office kitchen.",
        "flight": "The flight to Tokyo leaves from gate 42 on Sunday evening.",
    }
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=settings)
    collection = client.create_collection("memory", embedding_function=embedding_function(minilm))
    collection.add(ids=list(documents), documents=list(documents.values()))
    assert isinstance(client, Client)
    client.close()  # releases SQLite and the index; the cache forgets the system
    client.clear_system_cache()

    reopened = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=settings)
    again = reopened.get_collection("memory")
    persisted = again.configuration_json["embedding_function"]
    assert persisted["name"] == "openclaw-infra"
    assert persisted["config"]["embedder_id"] == minilm.id
    assert again.configuration_json["hnsw"]["space"] == "cosine"
    rebuilt = again.configuration.get("embedding_function")
    assert isinstance(rebuilt, InfraEmbeddingFunction)
    assert rebuilt.embedder is not minilm  # built anew from the stored config, not handed over

    found = again.query(query_texts=["when do I see the dentist?"], n_results=1)
    assert found["ids"] == [["dentist"]]
    stored = again.get(ids=["flight"], include=["embeddings"])["embeddings"]
    assert stored is not None
    np.testing.assert_allclose(stored[0], minilm.embed([documents["flight"]])[0], atol=1e-5)
    assert isinstance(reopened, Client)
    reopened.close()


def test_the_chroma_config_holds_no_secret_and_refuses_a_new_embedder() -> None:
    function = InfraEmbeddingFunction(
        OpenAIEmbedder("http://127.0.0.1:9/v1", "text-embedding-3-small", api_key=KEY),
        api_key_env_var="OPENCLAW_INFRA_EMBEDDING_API_KEY",
    )
    config = function.get_config()
    assert KEY not in json.dumps(config)
    assert config["api_key_env_var"] == "OPENCLAW_INFRA_EMBEDDING_API_KEY"
    InfraEmbeddingFunction.validate_config(config)
    minilm_config = InfraEmbeddingFunction(MiniLMEmbedder()).get_config()
    with pytest.raises(ValueError, match="cannot change"):
        function.validate_config_update(config, minilm_config)
    rebuilt = InfraEmbeddingFunction.build_from_config(minilm_config)
    assert rebuilt.embedder is InfraEmbeddingFunction.build_from_config(minilm_config).embedder


@dataclass
class FakeEmbeddingService:
    """Speaks OpenAI's POST /embeddings; answers in reverse order, as the protocol allows."""

    url: str
    requests: list[dict[str, Any]]


@pytest.fixture
def service() -> Iterator[FakeEmbeddingService]:
    requests: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if body["model"] == "broken":
                self._answer_text(500, "upstream   model\n crashed")
                return
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                message = f"Incorrect API key provided: {given}."
                self._answer(401, {"error": {"message": message, "type": "invalid_request"}})
                return
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0]}
                for i, text in enumerate(body["input"])
            ]
            self._answer(200, {"object": "list", "data": data[::-1], "model": body["model"]})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _answer_text(self, status: int, text: str) -> None:
            raw = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeEmbeddingService(f"http://127.0.0.1:{server.server_address[1]}/v1", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_openai_compatible_service(service: FakeEmbeddingService) -> None:
    embedder = make_embedder("openai", model="nomic-embed-text", base_url=service.url, api_key=KEY)
    assert isinstance(embedder, OpenAIEmbedder)
    embedder.batch_size = 2
    texts = ["a", "bbb", "cc", "dddd", "e"]
    vectors = embedder.embed(texts)
    embedder.close()

    assert [r["path"] for r in service.requests] == ["/v1/embeddings"] * 3
    assert [r["body"] for r in service.requests] == [
        {"model": "nomic-embed-text", "input": ["a", "bbb"]},
        {"model": "nomic-embed-text", "input": ["cc", "dddd"]},
        {"model": "nomic-embed-text", "input": ["e"]},
    ]
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in service.requests)
    assert embedder.dimension == 3
    assert embedder.id == "openai/nomic-embed-text"
    expected = np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_a_refused_key_is_reported_without_the_key(service: FakeEmbeddingService) -> None:
    wrong = "sk-wrong-9876543210zyxwvutsrqponm"
    embedder = OpenAIEmbedder(service.url, "text-embedding-3-small", api_key=wrong)
    with pytest.raises(EmbeddingServiceError) as caught:
        embedder.embed(["hello"])
    assert caught.value.status == 401
    assert "401" in str(caught.value)
    assert "Incorrect API key provided" in str(caught.value)
    assert wrong not in str(caught.value)
    assert wrong not in repr(caught.value)
    assert caught.value.__cause__ is None


def test_a_failing_service_is_reported_with_its_answer(service: FakeEmbeddingService) -> None:
    embedder = OpenAIEmbedder(service.url, "broken", api_key=KEY)
    with pytest.raises(EmbeddingServiceError, match=r"answered 500: upstream model crashed$"):
        embedder.embed(["hello"])


def test_a_collection_on_a_service_reopens_with_the_key_from_the_environment(
    tmp_path: Path, service: FakeEmbeddingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENCLAW_INFRA_TEST_EMBEDDING_KEY", KEY)
    embedder = OpenAIEmbedder(service.url, "nomic-embed-text", api_key=KEY)
    function = embedding_function(embedder, api_key_env_var="OPENCLAW_INFRA_TEST_EMBEDDING_KEY")
    settings = Settings(anonymized_telemetry=False)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=settings)
    collection = client.create_collection("memory", embedding_function=function)
    collection.add(ids=["short", "long"], documents=["hi", "a much longer message"])
    assert isinstance(client, Client)
    client.close()
    client.clear_system_cache()
    assert KEY not in (tmp_path / "chroma" / "chroma.sqlite3").read_bytes().decode("latin-1")

    reopened = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=settings)
    found = reopened.get_collection("memory").query(query_texts=["hey"], n_results=1)
    assert found["ids"] == [["short"]]
    assert service.requests[-1]["body"] == {"model": "nomic-embed-text", "input": ["hey"]}
    assert service.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert isinstance(reopened, Client)
    reopened.close()


def test_an_unreachable_service_is_an_embedding_error() -> None:
    embedder = OpenAIEmbedder("http://127.0.0.1:9/v1", "m", api_key=KEY, timeout=2.0)
    with pytest.raises(EmbeddingServiceError, match="unreachable") as caught:
        embedder.embed(["hello"])
    assert KEY not in str(caught.value)


def test_sentence_transformers_says_it_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(EmbedderUnavailable, match="needs the sentence-transformers package"):
        make_embedder("sentence-transformers", model="all-MiniLM-L6-v2")


def test_the_factory_defaults_to_the_offline_model_and_names_bad_choices() -> None:
    assert isinstance(make_embedder(), MiniLMEmbedder)
    assert make_embedder("minilm-int8", threads=2).spec.threads == 2
    with pytest.raises(EmbedderUnavailable, match="unknown embedder kind 'word2vec'"):
        make_embedder("word2vec")
    with pytest.raises(EmbedderUnavailable, match="needs both a model and a base URL"):
        make_embedder("openai", model="text-embedding-3-small")
    with pytest.raises(EmbedderUnavailable, match="all-MiniLM-L6-v2 only"):
        make_embedder("minilm-int8", model="bge-small")
    with pytest.raises(ValueError, match="threads"):
        MiniLMEmbedder(threads=0)
