"""What the daemon holds at rest after ingesting 1k, 10k and 100k chunks, against its parts alone.

    python bench/footprint.py [--sizes 1000,10000,100000] [--rest 20] [--keep DIR]

A synthetic OpenClaw home (``bench/scale.py``'s generator) grows to each size. All but the
last ``--burst`` chunks are seeded through the real ingest with an embedder of the default's id
and shape whose vectors come from a hash of the text (the model's hours are not what is
measured here, and a 100k store would take them); then a real daemon (``python -m daemon.main``,
a fresh process per size) ingests the last ``--burst`` with the real model at start-up and is
left alone. Printed per size, all measured in this run:
  * the daemon: resident set (RSS) and CPU use over ``--rest`` seconds once its ingest is over;
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

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

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunk counts, ascending")
    parser.add_argument("--rest", type=float, default=20.0, help="seconds at rest measured")
    parser.add_argument("--burst", type=int, default=1000, help="chunks the daemon embeds")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build in DIR and keep it")
    parser.add_argument("--probe", choices=["embedder", "chroma"], help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return _probe(args.probe, args.state)
    root = args.keep or Path(tempfile.mkdtemp(prefix="footprint-", dir="/tmp"))
    try:
        run(root, [int(s) for s in args.sizes.split(",")], args.rest, args.burst)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def run(root: Path, sizes: list[int], rest: float, burst: int) -> None:
    home, state = root / "openclaw", root / "state"
    writer = OpenClawWriter(home)
    writer.add_agent("main", "Juniper", "Dana")
    corpus = Corpus(home, writer, random.Random(7))
    print(f"openclaw-infra footprint at rest; {os.cpu_count()} CPUs; code at {ROOT}")
    print(
        f"{'chunks':>8} {'ingest s':>9} {'daemon MB':>10} {'CPU %':>6} {'embedder MB':>12} "
        f"{'chroma MB':>10} {'daemon/(e+c)':>13}",
        flush=True,
    )
    for size in sizes:
        if size > burst:
            corpus.grow_to((size - burst) * 2)  # a window starts every 2 turns
            _seed(state, home)
        corpus.grow_to(size * 2)
        daemon = _daemon_at_rest(root, rest)
        embedder = _probe_rss("embedder", state)
        chroma = _probe_rss("chroma", state)
        print(
            f"{daemon['chunks']:>8,} {daemon['ingest_s']:>9.1f} {daemon['rss_mb']:>10.0f} "
            f"{daemon['cpu_pct']:>6.2f} {embedder:>12.0f} {chroma:>10.0f} "
            f"{daemon['rss_mb'] / (embedder + chroma):>12.2f}x",
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


def _daemon_at_rest(root: Path, rest: float) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENCLAW_INFRA_STATE_DIR": str(root / "state"),
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(root / "openclaw"),
        "OPENCLAW_INFRA_SOCKET_PATH": str(root / "s.sock"),
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
        "OPENCLAW_INFRA_JOBS__INGEST__TIMEOUT": "12h",
        "OPENCLAW_INFRA_LOG_LEVEL": "warning",
    }
    with (root / "infrad.log").open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.main"], env=env, stdout=log, stderr=log, cwd=ROOT
        )
    try:
        began = time.monotonic()
        chunks = _wait_for_ingest(root / "s.sock", proc)
        ingest_s = time.monotonic() - began
        cpu_before, at = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(rest)  # the measurement itself: the daemon left alone
        cpu = (_cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - at) * 100
        rss = _rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return {"chunks": chunks, "ingest_s": ingest_s, "rss_mb": rss, "cpu_pct": cpu}


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
    out = subprocess.run(
        [sys.executable, __file__, "--probe", kind, "--state", str(state)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rss_mb"])


def _probe(kind: str, state: Path) -> int:
    """One part alone, in this fresh process, then its RSS."""
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
