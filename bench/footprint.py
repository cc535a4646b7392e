"""What the daemon holds at rest after ingesting 1k, 10k and 100k chunks, against its parts alone.

    python bench/footprint.py [--sizes 1000,10000,100000] [--rest 20] [--release 30]
                              [--cycles 3] [--keep DIR]

A synthetic OpenClaw home (``bench/scale.py``'s generator) grows to each size. All but the
last ``--burst`` chunks are seeded through the real ingest with an embedder of the default's id
and shape whose vectors come from a hash of the text (the model's hours are not what is
measured here, and a 100k store would take them); then a real daemon (``python -m daemon.main``,
a fresh process per size) ingests the last ``--burst`` with the real model at start-up and is
left alone. Printed per size, all measured in this run:
  * the daemon: resident set (RSS) and CPU use over ``--rest`` seconds once its ingest is over
    (after a few searches, so that its vector index is loaded);
  * the same daemon once it has released its vector index (``--release`` seconds without a
    search, its setting OPENCLAW_INFRA_MEMORY__RELEASE_VECTORS_AFTER), and the first search
    after each of ``--cycles`` releases (p50, the daemon's own ``took_ms``) against the p50 of
    searches with the index loaded;
  * the vector calls through the releasable client (``VectorIndex``) against the collection's
    own calls, interleaved in one process on the daemon's store: what the release costs a
    search and a write while nothing is released (p50 ratio; 1.00x is no cost);
  * the bare embedder: a process that loads it and embeds one query;
  * a bare Chroma client holding the same vectors: a process that opens the daemon's Chroma
    directory and answers one query (the HNSW index loaded);
  * the daemon against the sum of the two parts.
RSS comes from /proc (Linux only).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from scale import Corpus, _ingest

from daemon.client import ControlClient
from daemon.errors import InfraError
from daemon.sample.writer import OpenClawWriter
from stores.memory.embeddings import (
    MINILM_DIMENSION,
    EmbedderSpec,
    FloatArray,
    MiniLMEmbedder,
    l2_normalise,
)
from stores.memory.store import MemoryStore
from stores.memory.vectors import VectorHit

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunk counts, ascending")
    parser.add_argument("--rest", type=float, default=20.0, help="seconds at rest measured")
    parser.add_argument("--burst", type=int, default=1000, help="chunks the daemon embeds")
    parser.add_argument("--release", type=float, default=30.0, help="idle seconds to a release")
    parser.add_argument("--cycles", type=int, default=3, help="releases, each then searched")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build in DIR and keep it")
    parser.add_argument(
        "--probe", choices=["embedder", "chroma", "overhead"], help=argparse.SUPPRESS
    )
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return _probe(args.probe, args.state)
    root = args.keep or Path(tempfile.mkdtemp(prefix="footprint-", dir="/tmp"))
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        run(root, sizes, rest=args.rest, burst=args.burst, release=args.release, cycles=args.cycles)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def run(
    root: Path, sizes: list[int], *, rest: float, burst: int, release: float, cycles: int
) -> None:
    home, state = root / "openclaw", root / "state"
    writer = OpenClawWriter(home)
    writer.add_agent("main", "Juniper", "Dana")
    corpus = Corpus(home, writer, random.Random(7))
    print(f"openclaw-infra footprint at rest; {os.cpu_count()} CPUs; code at {ROOT}")
    print(
        f"{'chunks':>8} {'ingest s':>9} {'daemon MB':>10} {'CPU %':>6} {'embedder MB':>12} "
        f"{'chroma MB':>10} {'daemon/(e+c)':>13} {'released MB':>12} {'search ms':>10} "
        f"{'1st after ms':>13} {'query x':>8} {'upsert x':>9}",
        flush=True,
    )
    for size in sizes:
        if size > burst:
            corpus.grow_to((size - burst) * 2)  # a window starts every 2 turns
            _seed(state, home)
        corpus.grow_to(size * 2)
        daemon = _daemon_at_rest(root, rest, release, cycles)
        embedder = _probe_rss("embedder", state)
        chroma = _probe_rss("chroma", state)
        overhead = _probe_json("overhead", state)
        print(
            f"{daemon['chunks']:>8,} {daemon['ingest_s']:>9.1f} {daemon['rss_mb']:>10.0f} "
            f"{daemon['cpu_pct']:>6.2f} {embedder:>12.0f} {chroma:>10.0f} "
            f"{daemon['rss_mb'] / (embedder + chroma):>12.2f}x {daemon['released_mb']:>12.0f} "
            f"{daemon['search_ms']:>10.1f} {daemon['first_ms']:>13.1f} "
            f"{overhead['query']:>7.3f}x {overhead['upsert']:>8.3f}x",
            flush=True,
        )


class ShapeOnly:
    """The default embedder's id and dimension; a text's vector comes from its hash."""

    id = MiniLMEmbedder.id
    dimension = MINILM_DIMENSION
    spec = EmbedderSpec(kind="minilm-int8")

    def embed(self, texts: Sequence[str]) -> FloatArray:
        rows = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows[i] = np.random.default_rng(seed).standard_normal(self.dimension)
        return l2_normalise(rows)


def _seed(state: Path, home: Path) -> None:
    store = MemoryStore.open(state, ShapeOnly())
    try:
        _ingest(store, state, home)
    finally:
        store.close()


def _daemon_at_rest(root: Path, rest: float, release: float, cycles: int) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
        "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
        "OPENCLAW_INFRA_JOBS__INGEST__TIMEOUT": "12h",
        "OPENCLAW_INFRA_LOG_LEVEL": "info",  # memory.vectors_released is an info event
        "OPENCLAW_INFRA_LOG_FORMAT": "json",
        "OPENCLAW_INFRA_MEMORY__RELEASE_VECTORS_AFTER": f"{release}s",
    }
    log_path = root / "infrad.log"
    logged_before = log_path.stat().st_size if log_path.exists() else 0  # earlier sizes' runs
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.main"], env=env, stdout=log, stderr=log, cwd=ROOT
        )
    try:
        began = time.monotonic()
        chunks = _wait_for_ingest(root / "s.sock", proc)
        ingest_s = time.monotonic() - began
        with ControlClient(root / "s.sock", timeout=120) as client:
            search_ms = statistics.median(_search_ms(client, i) for i in range(30))
        cpu_before, at = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(rest)  # the measurement itself: the daemon left alone
        cpu = (_cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - at) * 100
        rss = _rss_mb(proc.pid)
        released, first = [], []
        for cycle in range(cycles):
            _wait_for_release(log_path, logged_before, cycle + 1, proc)
            released.append(_rss_mb(proc.pid))
            with ControlClient(root / "s.sock", timeout=120) as client:
                first.append(_search_ms(client, 100 + cycle))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return {
        "chunks": chunks,
        "ingest_s": ingest_s,
        "rss_mb": rss,
        "cpu_pct": cpu,
        "search_ms": search_ms,
        "released_mb": statistics.median(released) if released else float("nan"),
        "first_ms": statistics.median(first) if first else float("nan"),
    }


QUERIES = ["tickets at the station", "the dentist on Tuesday", "a gift for my sister"]


def _search_ms(client: ControlClient, i: int) -> float:
    """One search's own time in the daemon (``took_ms``): embedding, both halves, fusion."""
    params = {"query": f"{QUERIES[i % len(QUERIES)]} {i}", "k": 10}
    return float(client.call("memory.search", params)["took_ms"])


def _wait_for_release(log: Path, start: int, count: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the daemon has logged its ``count``-th release of the vector index (in the log
    from byte ``start``, where this daemon began writing)."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited ({proc.returncode}); see infrad.log")
        with log.open("rb") as handle:
            handle.seek(start)
            if handle.read().count(b'"memory.vectors_released"') >= count:
                return
        time.sleep(0.5)


def _wait_for_ingest(sock: Path, proc: subprocess.Popen[bytes]) -> int:
    """Until the start-up ingest has ended; the chunk count the store then holds."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited ({proc.returncode}); see infrad.log")
        # Not listening yet: it is still starting.
        with contextlib.suppress(OSError, InfraError), ControlClient(sock, timeout=60) as client:
            runs = client.call("runs", {"job": "ingest"})["runs"]
            if runs and all(r["status"] != "running" for r in runs):
                return int(client.call("memory.stats")["chunks"])
        time.sleep(1.0)


def _probe_rss(kind: str, state: Path) -> float:
    return _probe_json(kind, state)["rss_mb"]


def _probe_json(kind: str, state: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--probe", kind, "--state", str(state)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return {k: float(v) for k, v in json.loads(out.strip().splitlines()[-1]).items()}


def _probe(kind: str, state: Path) -> int:
    """One part alone, in this fresh process, then its RSS."""
    if kind == "overhead":
        print(json.dumps(_overhead(state)))
        return 0
    if kind == "embedder":
        from stores.memory.embedders import make_embedder

        make_embedder().embed(["when did I buy the tickets at the station?"])
    else:
        import warnings

        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(
            path=str(state / "chroma"), settings=Settings(anonymized_telemetry=False)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its embedding function is not registered here
            collection = client.get_collection("memory")
        stored = collection.get(limit=1, include=["embeddings"])["embeddings"]
        vector = np.asarray(stored, dtype=np.float32)[0]
        collection.query(query_embeddings=[vector], n_results=10)  # loads the HNSW index
    print(json.dumps({"rss_mb": _rss_mb(os.getpid())}))
    return 0


def _overhead(state: Path, rounds: int = 1000) -> dict[str, float]:
    """p50 of ``VectorIndex.query`` and ``.upsert`` (EMBED_SLICE rows it holds already) over
    p50 of the same calls on its collection directly (the code before the releasable client),
    interleaved so that both see the same machine."""
    from stores.memory.store import EMBED_SLICE
    from stores.memory.vectors import VectorIndex

    index = VectorIndex.open(path=state / "chroma", url=None, embedder=ShapeOnly())
    try:
        collection = index.collection
        got = collection.get(limit=EMBED_SLICE, include=["embeddings", "metadatas"])
        ids, rows, metas = got["ids"], np.asarray(got["embeddings"], np.float32), got["metadatas"]
        times: dict[str, list[float]] = {k: [] for k in ("q", "q0", "u", "u0")}

        def timed(name: str, call: Callable[[], object]) -> None:
            began = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - began)

        for i in range(rounds):
            vector = rows[i % len(rows)]
            pair: list[tuple[str, Callable[[], object]]] = [
                ("q", partial(index.query, vector, 40, None)),
                ("q0", partial(_query_before, collection, vector)),
            ]
            if i % 5 == 0:  # a write a fifth as often: it costs ~50x a query
                pair += [
                    ("u", partial(index.upsert, ids, rows, metas)),
                    ("u0", partial(collection.upsert, ids=ids, embeddings=rows, metadatas=metas)),
                ]
            for name, call in pair if i % 10 < 5 else pair[::-1]:  # each goes first half the time
                timed(name, call)
    finally:
        index.close()
    p50 = {k: statistics.median(v) for k, v in times.items()}
    return {"query": p50["q"] / p50["q0"], "upsert": p50["u"] / p50["u0"]}


def _query_before(collection: Any, vector: FloatArray) -> list[VectorHit]:
    """``VectorIndex.query`` as it was before the releasable client."""
    result = collection.query(
        query_embeddings=[vector], n_results=40, where=None, include=["distances"]
    )
    ids = result["ids"][0]
    distances = (result.get("distances") or [[0.0] * len(ids)])[0]
    return [VectorHit(i, float(d)) for i, d in zip(ids, distances, strict=True)]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
