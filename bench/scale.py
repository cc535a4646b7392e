"""The memory store at 10k and 100k chunks: ingest cost, search speed, approximate-search recall.

    python bench/scale.py [--sizes 10000,100000] [--queries 200]

A synthetic OpenClaw home grows to each size and goes through the real ingest job. Printed,
each against a baseline measured in the same run:
  * ingest throughput against the raw embedder on the same texts (pipeline overhead);
  * vector search (Chroma HNSW) against exact numpy search over the same vectors: latency and
    recall@10 of the approximate neighbours against the exact ones;
  * the full hybrid search in process, and ``memory.search`` over the socket of a real daemon
    from one persistent client, p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.client import AsyncControlClient
from daemon.sample.writer import OpenClawWriter
from jobs.base import HealthConfig, JobContext, MemoryConfig, ScheduledJobView
from jobs.ingest import Ingest
from stores.memory.embedders import make_embedder
from stores.memory.embeddings import Embedder
from stores.memory.records import SearchQuery
from stores.memory.store import MemoryStore
from stores.openclaw.home import OpenClawSource
from stores.runlog import RunLog

NAMES = ["Ana", "Bo", "Chen", "Dana", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
PLACES = [
    "Lisbon",
    "the lake",
    "the office",
    "Kyoto",
    "the market",
    "grandma's",
    "the gym",
    "the station",
    "Porto",
    "the library",
    "the beach",
    "the clinic",
    "Oslo",
    "the park",
]
THINGS = [
    "a bike",
    "the report",
    "a cake",
    "tickets",
    "the car",
    "a puppy",
    "new shoes",
    "the invoice",
    "a guitar",
    "plants",
    "the lease",
    "a camera",
    "paint",
    "a tent",
]
VERBS = [
    "bought",
    "fixed",
    "lost",
    "found",
    "sold",
    "borrowed",
    "painted",
    "booked",
    "returned",
    "ordered",
    "packed",
    "finished",
    "started",
    "cancelled",
]
WHEN = [
    "yesterday",
    "last week",
    "on Monday",
    "this morning",
    "in March",
    "after lunch",
    "last night",
    "on the weekend",
    "two days ago",
    "at noon",
]


def sentence(rng: random.Random) -> str:
    extra = rng.choice(
        [
            "",
            " and it went well",
            " but it rained",
            " with my sister",
            " before work",
            " for the trip",
            "",
        ]
    )
    return (
        f"I {rng.choice(VERBS)} {rng.choice(THINGS)} at {rng.choice(PLACES)} "
        f"{rng.choice(WHEN)}{extra}."
    )


def question(rng: random.Random) -> str:
    return f"When did I {rng.choice(VERBS)} {rng.choice(THINGS)} at {rng.choice(PLACES)}?"


class _NoScheduler:
    started_at = datetime.now(UTC)

    def is_running(self) -> bool:
        return True

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return []


@dataclass
class Corpus:
    home: Path
    writer: OpenClawWriter
    rng: random.Random
    sessions: int = 0

    def grow_to(self, turns: int, per_session: int = 200) -> None:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        while self.sessions * per_session < turns:
            session = self.writer.new_session("main", start + timedelta(days=self.sessions))
            for _ in range(per_session // 2):
                session.user(sentence(self.rng), sender=self.rng.choice(NAMES))
                session.assistant(sentence(self.rng))
            path = self.home / "agents" / "main" / "sessions" / f"{session.session_id}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(session.jsonl())
            self.sessions += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, ascending")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--raw-sample",
        type=int,
        default=5000,
        help="texts the raw embedder baseline embeds at each size",
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="build in DIR and keep it; a kept DIR is grown"
    )
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="scale-", dir="/tmp"))
    try:
        run(root, [int(s) for s in args.sizes.split(",")], args.queries, args.raw_sample)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def run(root: Path, sizes: list[int], n_queries: int, raw_sample: int) -> None:
    rng = random.Random(7)
    home, state = root / "openclaw", root / "state"
    writer = OpenClawWriter(home)
    writer.add_agent("main", "Juniper", "Dana")
    sessions = home / "agents" / "main" / "sessions"
    built = len(list(sessions.glob("*.jsonl"))) if sessions.is_dir() else 0
    corpus = Corpus(home, writer, rng, sessions=built)
    embedder = make_embedder()
    store = MemoryStore.open(state, embedder)
    queries = [question(rng) for _ in range(n_queries)]
    print(f"openclaw-infra memory at scale; {os.cpu_count()} CPUs; window 4, stride 2")
    for size in sizes:
        corpus.grow_to(size * 2)  # a window starts every 2 turns
        ingest_s, new_chunks = _ingest(store, state, home)
        print(f"\n== {store.stats().chunks:,} chunks")
        if new_chunks:
            _report_ingest(
                new_chunks, ingest_s, _raw_rate(store, embedder, raw_sample, rng), raw_sample
            )
        else:
            print("ingest: nothing new (a kept directory, built before)")
        _vector_vs_exact(store, embedder, queries)
        _hybrid(store, queries)
    store.close()
    _over_socket(root, queries)


def _report_ingest(new_chunks: int, seconds: float, raw_rate: float, sample: int) -> None:
    rate = new_chunks / seconds
    print(
        f"ingest: {new_chunks:,} new chunks in {seconds:.1f} s = {rate:.1f} chunks/s; raw "
        f"embedder on {sample:,} of the same texts {raw_rate:.1f} texts/s; pipeline "
        f"overhead {(raw_rate / rate - 1) * 100:+.1f}%"
    )


def _ingest(store: MemoryStore, state: Path, home: Path) -> tuple[float, int]:
    ctx = JobContext(
        clock=lambda: datetime.now(UTC),
        tz=UTC,
        state_dir=state,
        run_log=RunLog(state / "runs.sqlite"),
        scheduler=_NoScheduler(),
        health=HealthConfig(min_free_disk_bytes=0),
        openclaw=OpenClawSource(home),
        memory=store,
        memory_config=MemoryConfig(4, 2),
    )
    began = time.perf_counter()
    report = Ingest(ctx, store).run()
    return time.perf_counter() - began, report.embedded


def _raw_rate(store: MemoryStore, embedder: Embedder, sample: int, rng: random.Random) -> float:
    ids = store.index.ids_where()
    picked = rng.sample(ids, min(sample, len(ids)))
    texts = [c.search_text for c in store.index.chunks(picked).values()]
    began = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - began)


def _all_vectors(store: MemoryStore) -> tuple[list[str], np.ndarray[Any, Any]]:
    ids: list[str] = []
    rows: list[Any] = []
    collection = store.vectors.collection
    total = collection.count()
    for offset in range(0, total, 5000):
        page = collection.get(include=["embeddings"], limit=5000, offset=offset)
        ids.extend(page["ids"])
        rows.extend(page["embeddings"])
    return ids, np.asarray(rows, dtype=np.float32)


def _vector_vs_exact(store: MemoryStore, embedder: Embedder, queries: list[str]) -> None:
    ids, matrix = _all_vectors(store)
    vectors = embedder.embed(queries)
    exact_ms, approx_ms, recalls = [], [], []
    for vector in vectors:
        began = time.perf_counter()
        scores = matrix @ vector
        top = np.argpartition(-scores, 10)[:10]
        exact = {ids[i] for i in top}
        exact_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        hits = store.vectors.query(vector, 10, None)
        approx_ms.append((time.perf_counter() - began) * 1000)
        recalls.append(len(exact & {h.id for h in hits}) / 10)
    print(
        f"vector search: HNSW p50 {_p(approx_ms, 50):.2f} ms p95 {_p(approx_ms, 95):.2f} ms; "
        f"exact numpy p50 {_p(exact_ms, 50):.2f} ms p95 {_p(exact_ms, 95):.2f} ms; "
        f"ratio at p50 {_p(exact_ms, 50) / _p(approx_ms, 50):.2f}x; "
        f"recall@10 vs exact {statistics.fmean(recalls):.3f}"
    )


def _hybrid(store: MemoryStore, queries: list[str]) -> None:
    took = []
    for text in queries:
        began = time.perf_counter()
        store.search(SearchQuery(text))
        took.append((time.perf_counter() - began) * 1000)
    print(f"hybrid search in process: p50 {_p(took, 50):.1f} ms, p95 {_p(took, 95):.1f} ms")


def _over_socket(root: Path, queries: list[str]) -> None:
    env = {
        **os.environ,
        "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
        "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
        "OPENCLAW_INFRA_LOG_LEVEL": "warning",
    }
    infrad = Path(sys.executable).parent / "infrad"
    with (root / "infrad.log").open("w") as log:
        proc = subprocess.Popen([str(infrad)], env=env, stdout=log, stderr=log)
    try:
        took = asyncio.run(_socket_searches(root / "s.sock", queries))
        print(
            f"\nmemory.search over the socket, one persistent client, {len(took)} queries: "
            f"p50 {_p(took, 50):.1f} ms, p95 {_p(took, 95):.1f} ms"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


async def _socket_searches(path: Path, queries: list[str]) -> list[float]:
    deadline = time.monotonic() + 120
    while True:
        try:
            client = await AsyncControlClient(path).connect()
            runs = await client.call("runs", {"job": "ingest"})
            if runs["runs"] and all(r["status"] != "running" for r in runs["runs"]):
                break  # the start-up ingest is over: measure a daemon at rest
            await client.close()
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)
    await client.call("memory.search", {"query": "warm up"})
    took = []
    for text in queries:
        began = time.perf_counter()
        await client.call("memory.search", {"query": text})
        took.append((time.perf_counter() - began) * 1000)
    await client.close()
    return took


def _p(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * pct / 100) - 1))]


if __name__ == "__main__":
    sys.exit(main())
