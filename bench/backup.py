"""Backup and restore throughput against a plain ``tar`` of the same files, and writer pauses.

    python bench/backup.py [--turns 40000] [--notes-mib 20]

A synthetic OpenClaw home (sessions of short turns, plus daily notes) goes through the real
ingest into a real memory store (SQLite + embedded Chroma; a deterministic 384-dimension
embedder stands in for the model, so building it takes seconds, not minutes). Then, in the same
run and on the same files (the state directory without its backups, and the workspaces):

  * the system ``tar`` piped through the same compressor (zstd -3 with as many threads as the
    backup uses, else gzip -6): create and extract;
  * ``stores.backup.create``: snapshot (memory store paused, SQLite online backup) + archive,
    then the read-back check every backup gets; restore into an empty directory with every
    sha256 and ``integrity_check``, and with the Chroma probe as ``verify`` does;
  * a writer thread that keeps writing to the memory store during the backup: how long the
    writers were paused (the backup's own measure) and the longest a write waited.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.sample.writer import OpenClawWriter
from jobs.base import Progress
from jobs.ingest import Ingest
from stores.backup.archive import ZSTD_LEVEL, ZSTD_THREADS
from stores.backup.config import BackupConfig
from stores.backup.create import Created, Sources, create_backup
from stores.backup.crypto import Keys, new_identity_file
from stores.backup.restore import restore_into
from stores.backup.select import Workspace
from stores.memory.records import Chunk, Write
from stores.memory.store import MemoryStore
from stores.runlog import RunLog
from tests.memory_fixtures import Harness, HashedWords

WORDS = [
    *("garden", "report", "dentist", "Lisbon", "tickets", "invoice", "guitar", "lease"),
    *("camera", "tent", "paint", "bike", "market", "station", "library", "beach", "clinic"),
    *("Oslo", "park", "sister", "brother", "meeting", "launch", "review", "budget", "plan"),
]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))) + "."


def build_home(home: Path, turns: int, notes_mib: int, rng: random.Random) -> list[Workspace]:
    writer = OpenClawWriter(home)
    ws = writer.add_agent("main", "Juniper", "Dana", "- Dana prefers short replies.\n")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    sessions = []
    for s in range(max(1, turns // 100)):
        session = writer.new_session("main", start + timedelta(days=s))
        for _ in range(50):
            session.user(sentence(rng))
            session.assistant(sentence(rng))
        sessions.append(session)
    writer.write_legacy("main", "agent:main:telegram:direct:1", sessions[-1], sessions[:-1])
    day = 0
    while sum(p.stat().st_size for p in (ws / "memory").glob("*.md")) < notes_mib * 2**20:
        text = "\n".join(sentence(rng) for _ in range(2000))
        (ws / "memory" / f"{(start + timedelta(days=day)):%Y-%m-%d}.md").write_text(text)
        day += 1
    return [Workspace("main", ws)]


class Writer(threading.Thread):
    """Writes one manual memory after another: every write takes the store's write lock."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(name="writer", daemon=True)
        self.store = store
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            chunk = Chunk(f"bench:{n}", "manual", None, f"bench:{n}", f"note {n}", f"note {n}")
            began = time.perf_counter()
            self.store.write(Write(chunks=[chunk]), datetime.now(UTC))
            self.latencies.append(time.perf_counter() - began)
            time.sleep(0.002)


def du(paths: list[Path], skip: Path) -> int:
    total = 0
    for root in paths:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
            total += sum(Path(dirpath, f).stat().st_size for f in filenames)
    return total


def timed(argv: list[str], **kw: object) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - began


def tar_round_trip(
    root: Path, state: Path, workspace: Path, compression: str
) -> tuple[float, float]:
    """(create, extract) seconds of the system tar with the same compression."""
    program = f"zstd -{ZSTD_LEVEL} -T{ZSTD_THREADS} -q" if compression == "zstd" else "gzip -6"
    archive = root / "plain.tar"
    create = [
        "tar", f"--use-compress-program={program}", "-cf", str(archive), "--exclude=./backups",
        "-C", str(state), ".", "-C", str(workspace.parent), workspace.name,
    ]  # fmt: skip
    made = timed(create)
    target = root / "plain-restored"
    target.mkdir()
    unpack = ["tar", f"--use-compress-program={program.split(maxsplit=1)[0]}", "-xf", str(archive)]
    extracted = timed([*unpack, "-C", str(target)])
    shutil.rmtree(target)
    return made, extracted


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=40_000)
    parser.add_argument("--notes-mib", type=int, default=20, help="daily notes in the workspace")
    parser.add_argument("--compression", choices=["zstd", "gzip"], default="zstd")
    args = parser.parse_args()
    if shutil.which("zstd") is None and args.compression == "zstd":
        args.compression = "gzip"
    root = Path(tempfile.mkdtemp(prefix="bench-backup-", dir="/tmp"))
    try:
        run(root, args.turns, args.notes_mib, args.compression)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(root: Path, turns: int, notes_mib: int, compression: str) -> None:
    rng = random.Random(11)
    home, state = root / "openclaw", root / "state"
    workspaces = build_home(home, turns, notes_mib, rng)
    embedder = HashedWords("bench/hashed-384", 384)
    harness = Harness(home, state, MemoryStore.open(state, embedder), RunLog(state / "runs.sqlite"))
    began = time.perf_counter()
    Ingest(harness.context(), harness.store).run()
    stats = harness.store.stats()
    size = du([state, workspaces[0].root], state / "backups")
    print(
        f"openclaw-infra backups; {os.cpu_count()} CPUs; {compression} (level"
        f" {ZSTD_LEVEL if compression == 'zstd' else 6}, {ZSTD_THREADS} threads);"
        f" {stats.chunks:,} chunks, {stats.turns:,} turns; {size / 2**20:.1f} MiB of files"
        f" (built in {time.perf_counter() - began:.0f} s)"
    )
    sources = Sources(state, home, workspaces)
    try:
        rows, data, archive = throughput(root, harness, sources, compression)
        _table(rows, data, archive)
        pauses(root, harness, sources, compression)
    finally:
        harness.close()


def throughput(
    root: Path, harness: Harness, sources: Sources, compression: str
) -> tuple[list[tuple[str, float, float | None]], int, int]:
    """Rows of (label, seconds, tar's seconds for the same work); nothing else runs meanwhile."""
    tar_create, tar_extract = tar_round_trip(
        root, sources.state_dir, sources.workspaces[0].root, compression
    )
    config = BackupConfig(dir=root / "backups", compression=compression)
    created = backup(config, harness, sources, probe=True)
    t = created.timings_ms
    made = (t["snapshot_ms"] + t["archive_ms"]) / 1000
    rows: list[tuple[str, float, float | None]] = [
        ("tar: create", tar_create, None),
        ("backup: snapshot + archive", made, tar_create),
        ("backup: + read-back check", made + t["verify_ms"] / 1000, tar_create),
    ]
    key = root / "bench.key"
    new_identity_file(key)
    sealed = backup(
        replace(config, dir=root / "sealed", key_file=key), harness, sources, probe=False
    )
    t = sealed.timings_ms
    rows.append(
        ("backup, age: snapshot + archive", (t["snapshot_ms"] + t["archive_ms"]) / 1000, tar_create)
    )
    rows.append(("tar: extract", tar_extract, None))
    for label, probe in (
        ("restore: + sha256, integrity", False),
        ("restore: + Chroma probe", True),
    ):
        target = root / f"restored-{probe}"
        began = time.perf_counter()
        assert restore_into(created.backup, Keys(), target, Progress(), probe=probe).check.ok
        rows.append((label, time.perf_counter() - began, tar_extract))
        shutil.rmtree(target)
    return rows, created.manifest.total_bytes, created.archive_size


def pauses(root: Path, harness: Harness, sources: Sources, compression: str) -> None:
    """A writer keeps writing, alone for a second, then during a backup."""
    writer = Writer(harness.store)
    writer.start()
    while len(writer.latencies) < 5:  # the first writes after ingest warm the index up
        time.sleep(0.05)
    writer.latencies = []
    time.sleep(1.0)
    alone, writer.latencies = writer.latencies, []
    try:
        config = BackupConfig(dir=root / "paused", compression=compression)
        created = backup(config, harness, sources, probe=False)
    finally:
        writer.stop.set()
        writer.join()
    pause = created.manifest.pause
    print(
        f"\nwriters paused: {pause.held_ms:.0f} ms (copying memory.sqlite and chroma/), after"
        f" waiting {pause.waited_ms:.0f} ms for a write under way to finish"
    )
    for label, measured in (("alone (1 s)", alone), ("during the backup", writer.latencies)):
        values = sorted(measured)
        print(
            f"writer {label}: {len(values)} writes, median {statistics.median(values) * 1000:.1f}"
            f" ms, p99 {values[int(len(values) * 0.99)] * 1000:.1f} ms,"
            f" longest {values[-1] * 1000:.0f} ms"
        )
    print("(each write embeds its text and upserts the vector; none failed: they waited)")


def backup(config: BackupConfig, harness: Harness, sources: Sources, *, probe: bool) -> Created:
    return create_backup(
        config,
        sources,
        pause_writers=harness.store.writes_paused,
        now=datetime.now(UTC),
        meter=Progress(),
        probe=probe,
        prune=False,
    )


def _table(rows: list[tuple[str, float, float | None]], data: int, archive: int) -> None:
    mib = data / 2**20
    print(f"\n{'':34}{'seconds':>9}{'MiB/s':>9}{'vs tar':>9}")
    for label, seconds, baseline in rows:
        ratio = f"{baseline / seconds:.2f}x" if baseline else "1.00x"
        print(f"{label:34}{seconds:9.2f}{mib / seconds:9.1f}{ratio:>9}")
    print(
        f"\n{mib:.1f} MiB of data -> {archive / 2**20:.1f} MiB archive; MiB/s over the data saved"
        " (tar also copies SQLite's -wal files, which the online backup folds in)"
    )


if __name__ == "__main__":
    sys.exit(main())
