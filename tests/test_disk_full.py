"""A full state disk: one clear error that names the directory and the bytes free, the truth
about what was stored, and searches that still answer from what is there.

Tested on a real small filesystem (a tmpfs mounted for the test, where this machine allows it)
and, everywhere, by making the write calls fail as a full disk makes them fail: SQLite's
SQLITE_FULL, and Chroma's "Error in compaction" with the disk nearly out of room.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from chromadb.errors import InternalError

from daemon.api.host import Daemon
from daemon.api.memory import AddParams, MemoryMethods
from daemon.errors import Unavailable
from stores.memory import diskfull
from stores.memory.diskfull import DiskFull
from stores.memory.records import Chunk, SearchQuery, Write
from stores.memory.store import MemoryStore
from tests.memory_fixtures import Harness, HashedWords, hashed_words_are_not_rebuilt, write_sample

pytestmark = hashed_words_are_not_rebuilt
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
COMPACTION = "Error in compaction: Failed to apply logs to the metadata segment"


def manual(n: int, words: str = "") -> Chunk:
    text = f"memory number {n} {words}".strip()
    return Chunk(
        id=f"manual:{n}", kind="manual", agent=None, source=f"manual:{n}", text=text,
        search_text=text,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    store = MemoryStore.open(tmp_path / "state", HashedWords())
    yield store
    store.close()


@pytest.fixture
def nearly_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk has 4 KiB left, as far as the store can tell."""
    monkeypatch.setattr(diskfull, "free_bytes", lambda path: 4096)


def chroma_fails(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def upsert(**_: Any) -> None:
        raise InternalError(COMPACTION)

    monkeypatch.setattr(store.vectors.collection, "upsert", upsert)


def test_a_full_disk_under_chroma_is_named_with_the_directory_and_free_bytes(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch, nearly_full: None
) -> None:
    store.index.apply(Write(chunks=[manual(1)]), NOW)
    chroma_fails(store, monkeypatch)
    with pytest.raises(DiskFull) as caught:
        store.sync_vectors()
    message = str(caught.value)
    assert "\n" not in message
    assert f"the disk holding the state directory {store.state_dir} is full" in message
    assert "4,096 bytes free" in message
    assert "Error in compaction" in message  # what the writer said, kept for the record


def test_a_chroma_failure_with_room_left_is_not_called_a_full_disk(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diskfull, "free_bytes", lambda path: 10 * 2**30)
    store.index.apply(Write(chunks=[manual(1)]), NOW)
    chroma_fails(store, monkeypatch)
    with pytest.raises(InternalError, match="compaction"):
        store.sync_vectors()


def test_add_reports_a_stored_memory_as_stored_when_only_its_vector_waits(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch, nearly_full: None
) -> None:
    chroma_fails(store, monkeypatch)
    host = cast(Daemon, SimpleNamespace(memory=store, memory_error=None, clock=lambda: NOW))
    result = asyncio.run(MemoryMethods(host).add(AddParams(text="the spare key is in the shed")))

    assert result["id"].startswith("manual:")
    assert "is full" in result["vector_pending"]
    stats = store.stats()
    assert (stats.chunks, stats.vectors, stats.to_embed) == (1, 0, 1)
    found = store.search(SearchQuery("spare key shed"))  # by its words, at once
    assert [r.id for r in found.results] == [result["id"]]
    monkeypatch.undo()
    assert store.sync_vectors() == 1  # room again: the vector follows
    assert store.stats().vectors == 1


def test_add_fails_with_the_disk_named_when_nothing_could_be_stored(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def apply(*_: Any) -> None:
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = 13  # SQLITE_FULL, as SQLite sets it
        raise error

    monkeypatch.setattr(store.index, "apply", apply)
    host = cast(Daemon, SimpleNamespace(memory=store, memory_error=None, clock=lambda: NOW))
    with pytest.raises(Unavailable, match=f"state directory {store.state_dir} is full"):
        asyncio.run(MemoryMethods(host).add(AddParams(text="lost to a full disk")))
    assert store.stats().chunks == 0


def test_ingest_on_a_full_disk_fails_with_one_clear_error_and_search_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness.open(write_sample(tmp_path / "openclaw"), tmp_path / "state", HashedWords())
    try:
        harness.store.write(Write(chunks=[manual(1, "the boat leaves at nine")]), NOW)
        monkeypatch.setattr(diskfull, "free_bytes", lambda path: 0)
        chroma_fails(harness.store, monkeypatch)

        def query(*_: Any, **__: Any) -> None:  # a disk this full: Chroma cannot read either
            raise InternalError(COMPACTION)

        monkeypatch.setattr(harness.store.vectors.collection, "query", query)
        with pytest.raises(DiskFull, match=f"{harness.state}.* is full \\(0 bytes free\\)"):
            harness.ingest()
        found = harness.store.search(SearchQuery("boat leaves at nine"))
        assert found.results[0].id == "manual:1"
        assert found.degraded is not None
        assert "keyword results only" in found.degraded
    finally:
        harness.close()


def test_a_vector_search_failure_leaves_the_keyword_half(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(Write(chunks=[manual(1, "ferry to the island")]), NOW)
    assert store.search(SearchQuery("ferry island")).degraded is None

    def query(*_: Any, **__: Any) -> None:
        raise InternalError("backfill failed")

    monkeypatch.setattr(store.vectors.collection, "query", query)
    found = store.search(SearchQuery("ferry island"))
    assert [r.id for r in found.results] == ["manual:1"]
    assert found.degraded == "vector search failed, keyword results only: backfill failed"


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="mounts a tmpfs: Linux, root"
)
def test_a_real_full_filesystem(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "8m") as disk:
        store = MemoryStore.open(disk / "state", HashedWords())
        try:
            store.write(Write(chunks=[manual(n, "kept before") for n in range(50)]), NOW)
            free = shutil.disk_usage(disk).free
            (disk / "filler").write_bytes(b"\0" * (free - 200_000))
            outcome = None
            for n in range(1000, 1200):  # until the disk refuses
                chunks = [manual(n * 100 + i, "x" * 2000) for i in range(50)]
                try:
                    pending = store.write(Write(chunks=chunks), NOW)
                except DiskFull as exc:
                    outcome = str(exc)
                    break
                if pending is not None:
                    outcome = pending
                    break
            assert outcome is not None, "the disk never filled"
            assert f"the disk holding the state directory {disk / 'state'} is full" in outcome
            assert "bytes free" in outcome
            found = store.search(SearchQuery("kept before", k=5))
            assert len(found.results) == 5  # what was stored is still found
            (disk / "filler").unlink()
            store.write(Write(chunks=[manual(9_999_999, "after the space came back")]), NOW)
            assert store.stats().to_embed == 0
        finally:
            store.close()
