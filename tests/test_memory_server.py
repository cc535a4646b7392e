"""The memory store on a Chroma server (``chroma run`` on 127.0.0.1), and a daemon whose
server is not there."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.errors import ErrorCode
from stores.memory.records import Chunk, SearchQuery, Write
from stores.memory.vectors import VectorIndex, VectorStoreUnavailable
from tests.memory_fixtures import (
    Harness,
    HashedWords,
    hashed_words_are_not_rebuilt,
    home_entries,
    minilm,
    open_store,
    write_sample,
)
from tests.support import running_daemon, wait_for

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _chroma() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    assert found, "the chroma CLI (chromadb) is not installed"
    return found


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``chroma run`` for this module, stopped when it is done."""
    where = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = where / "chroma.log"
    command = [_chroma(), "run", "--path", str(where / "data"), "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"chroma run exited:\n{log_path.read_text(errors='replace')}")
        try:
            heartbeat = f"{url}/api/v2/heartbeat"  # always http://127.0.0.1
            with urllib.request.urlopen(heartbeat, timeout=1) as reply:  # noqa: S310 - see above
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for(answers, timeout=30, interval=0.1, what=f"chroma run on {url}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def on_server(tmp_path: Path, chroma_url: str) -> Iterator[Harness]:
    """The sample home and a store on the server; a new state directory starts the server's
    collection over, so each test sees only its own vectors."""
    home = write_sample(tmp_path / "openclaw")
    harness = Harness.open(home, tmp_path / "state", minilm(), chroma_url=chroma_url)
    yield harness
    harness.close()


def test_the_sample_is_ingested_and_found_on_the_server(
    on_server: Harness, chroma_url: str
) -> None:
    first = on_server.ingest()
    assert (first.turns, first.problems) == (12, [])
    stats = on_server.store.stats()
    assert (stats.store, stats.chunks, stats.vectors) == (chroma_url, 12, 12)
    on_server.assert_consistent()

    entries = home_entries(on_server.home)
    said = entries.containing("Mira lives at Rua das Flores")
    results = on_server.store.search(SearchQuery("Where does my sister Mira live?", k=3)).results
    hit = next(r for r in results if said.entry["id"] in r.source.entry_ids)
    assert hit.vector_rank is not None
    assert (hit.source.agent_id, hit.source.session_id) == ("main", said.session_id)
    assert set(hit.source.speakers) == {"Dana", "Juniper"}

    second = on_server.ingest()
    assert (second.turns, second.chunks, second.sources) == (0, 0, 0)
    assert on_server.store.vectors.count() == 12


def test_a_restarted_daemon_finds_its_vectors_on_the_server(on_server: Harness) -> None:
    on_server.ingest()
    before = on_server.store.search(SearchQuery("launch review", k=3))
    on_server.reopen()
    assert on_server.store.stats().vectors == 12
    after = on_server.store.search(SearchQuery("launch review", k=3))
    assert [(r.id, r.vector_rank) for r in after.results] == [
        (r.id, r.vector_rank) for r in before.results
    ]
    assert on_server.ingest().turns == 0


def test_manual_memories_forgetting_and_reset_on_the_server(on_server: Harness) -> None:
    on_server.ingest()
    text = "The spare key is under the blue flower pot."
    on_server.store.write(
        Write(chunks=[Chunk("manual:k", "manual", None, "manual:k", text, text)]), NOW
    )
    (hit,) = on_server.store.search(SearchQuery("where did we hide the spare key", k=1)).results
    assert hit.id == "manual:k"

    work = on_server.store.index.ids_where(agent="work")
    assert on_server.store.forget(work) == 4
    assert on_server.store.stats().vectors == 9
    assert on_server.store.reset() == 8
    assert on_server.vector_ids() == {"manual:k"}
    assert on_server.ingest().turns == 12
    on_server.assert_consistent()


def test_vectors_the_server_did_not_take_are_sent_again(
    on_server: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def server_gone(self: VectorIndex, *args: object) -> None:
        raise OSError("the server went away before it stored the vectors")

    with monkeypatch.context() as patch:
        patch.setattr(VectorIndex, "upsert", server_gone)
        with pytest.raises(OSError, match="went away"):
            on_server.ingest()
    stats = on_server.store.stats()
    assert stats.turns == 12, "rows and checkpoints are committed before the vectors"
    assert stats.vectors == 0
    assert stats.to_embed == stats.chunks
    found = on_server.store.search(SearchQuery("dentist Tuesday", k=5)).results
    assert found, "keyword search works while the vectors are missing"
    assert found[0].vector_rank is None

    report = on_server.ingest()
    assert (report.turns, report.embedded) == (0, stats.chunks), "nothing read twice"
    assert on_server.store.stats().vectors == stats.chunks
    on_server.assert_consistent()


@hashed_words_are_not_rebuilt
def test_another_embedder_starts_the_server_collection_over(on_server: Harness) -> None:
    on_server.ingest()
    other = HashedWords()  # 64 dimensions where MiniLM has 384
    on_server.reopen(other, allow_new_embedder=True)
    chunks = on_server.store.stats().chunks
    assert on_server.store.stats().vectors == 0
    report = on_server.ingest()
    assert (report.turns, report.embedded) == (0, chunks), "re-embedded, not re-read"
    assert on_server.store.stats().vectors == chunks
    on_server.assert_consistent()
    assert on_server.store.stats().embedder == other.id


def test_a_server_that_is_not_there_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(VectorStoreUnavailable, match=url):
        open_store(tmp_path / "state", minilm(), chroma_url=url)


def test_a_daemon_whose_chroma_server_is_down_still_runs(root: Path) -> None:
    write_sample(root / "openclaw")
    url = f"http://127.0.0.1:{_free_port()}"
    with running_daemon(root, {"OPENCLAW_INFRA_CHROMA_URL": url}) as daemon:
        assert daemon.call("status")["scheduler"] == "running"
        for method, params in [
            ("memory.search", {"query": "Mira"}),
            ("memory.add", {"text": "remember this"}),
            ("memory.stats", {}),
            ("memory.reindex", {}),
        ]:
            error = daemon.error_of(method, params)
            assert error.code is ErrorCode.NOT_CONFIGURED, method
            assert "memory store is not open" in error.message
            assert url in error.message
        failed = wait_for(
            lambda: [
                r for r in daemon.call("runs", {"job": "ingest"})["runs"] if r["status"] == "failed"
            ],
            what="the start-up ingest to fail",
        )
        assert "memory store is not open" in failed[0]["error_message"]
        checks = {c["name"]: c for c in daemon.call("health")["checks"]}
        assert "db:memory" not in checks
        assert daemon.stop() == 0


def test_health_names_a_memory_store_that_did_not_open(root: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with running_daemon(root, {"OPENCLAW_INFRA_CHROMA_URL": url}) as daemon:
        report = daemon.call("health")
        assert report["status"] != "ok"
        assert any(
            c["status"] != "ok" and "memory" in c["name"] and url in c["detail"]
            for c in report["checks"]
        ), report
        assert daemon.stop() == 0
