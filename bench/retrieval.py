"""Retrieval quality on a real OpenClaw home: ingest it, ask every question, score the answers.

    python bench/retrieval.py PATH/TO/openclaw [--questions PATH/questions.jsonl]

The home is ingested through the real ingest job into a fresh store in a temporary directory,
then every question goes through the real search (filtered to the question's agent unless
--all-agents). Metrics follow the benchmark's scorer: recall@k is the share of a question's
evidence entries covered by the top k results, MRR the reciprocal rank of the first result that
covers any, tokens are words x 1.3 of the returned text. --results writes the answers in the
scorer's RESULTS.jsonl format for an independent check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.base import HealthConfig, JobContext, MemoryConfig, ScheduledJobView
from jobs.ingest import Ingest
from stores.memory import pieces
from stores.memory.embedders import make_embedder
from stores.memory.pieces import PIECES, WINDOW_VECTORS
from stores.memory.records import ChunkFilter, SearchQuery
from stores.memory.store import MemoryStore
from stores.openclaw.home import OpenClawSource
from stores.runlog import RunLog

CATEGORIES = ["single-hop", "multi-hop", "temporal", "open-domain"]


class _NoScheduler:
    started_at = datetime.now(UTC)

    def is_running(self) -> bool:
        return True

    def scheduled_jobs(self) -> list[ScheduledJobView]:
        return []


@dataclass
class Scored:
    category: str
    recall5: float
    recall10: float
    rr: float
    tokens10: int
    latency_ms: float


def main() -> int:
    args = _parser().parse_args()
    questions_path = args.questions or args.home.parent / "questions.jsonl"
    questions = [json.loads(line) for line in questions_path.read_text().splitlines() if line]
    with tempfile.TemporaryDirectory(prefix="retrieval-") as tmp:
        state = Path(tmp)
        embedder = make_embedder(threads=args.threads)
        pieces.PIECE_WORDS, pieces.MAX_PIECES = args.piece_words, args.max_pieces
        store = MemoryStore.open(state, embedder, window_vectors=args.window_vectors)
        ingest_s, report = _ingest(store, state, args)
        raw_s = _raw_embed_seconds(store, embedder)
        scored, results = _ask(store, questions, args)
        store.close()
    _print(args, report, ingest_s, raw_s, scored)
    if args.results:
        args.results.write_text("".join(json.dumps(r) + "\n" for r in results))
        print(f"\nresults written to {args.results} (score with score_memory.py)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("home", type=Path, help="an OpenClaw state directory")
    parser.add_argument("--questions", type=Path, help="default: questions.jsonl beside HOME")
    parser.add_argument("--all-agents", action="store_true", help="search every agent's memory")
    parser.add_argument("--window", type=int, default=4, help="turns per chunk")
    parser.add_argument("--stride", type=int, default=2, help="turns between chunk starts")
    parser.add_argument("--budget", type=int, default=1500, help="token budget per search")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int)
    parser.add_argument(
        "--window-vectors",
        choices=WINDOW_VECTORS,
        default=PIECES,
        help="the mean of a turn window's pieces (default), or the window embedded whole",
    )
    parser.add_argument("--piece-words", type=int, default=pieces.PIECE_WORDS)
    parser.add_argument("--max-pieces", type=int, help="pieces per turn at most (default: all)")
    parser.add_argument("--results", type=Path, help="write RESULTS.jsonl for score_memory.py")
    return parser


def _ingest(store: MemoryStore, state: Path, args: argparse.Namespace) -> tuple[float, Any]:
    ctx = JobContext(
        clock=lambda: datetime.now(UTC),
        tz=UTC,
        state_dir=state,
        run_log=RunLog(state / "runs.sqlite"),
        scheduler=_NoScheduler(),
        health=HealthConfig(min_free_disk_bytes=0),
        openclaw=OpenClawSource(args.home),
        memory=store,
        memory_config=MemoryConfig(args.window, args.stride),
    )
    began = time.perf_counter()
    report = Ingest(ctx, store).run()
    return time.perf_counter() - began, report


def _raw_embed_seconds(store: MemoryStore, embedder: Any) -> float:
    """The embedder alone on exactly the texts the pipeline embedded: the baseline."""
    ids = store.index.ids_where()
    texts = [c.search_text for c in store.index.chunks(ids).values()]
    began = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - began


def _ask(
    store: MemoryStore, questions: list[dict[str, Any]], args: argparse.Namespace
) -> tuple[list[Scored], list[dict[str, Any]]]:
    scored, results = [], []
    store.search(SearchQuery("warm up"))
    for q in questions:
        where = ChunkFilter() if args.all_agents else ChunkFilter(agents=(q["agent"],))
        began = time.perf_counter()
        response = store.search(
            SearchQuery(q["question"], k=args.k, where=where, token_budget=args.budget)
        )
        latency = (time.perf_counter() - began) * 1000
        evidence = {e["entry_id"] for e in q["evidence"]}
        covered = [set(r.source.entry_ids) for r in response.results]
        scored.append(
            Scored(
                category=q["category_name"],
                recall5=_recall(evidence, covered[:5]),
                recall10=_recall(evidence, covered[:10]),
                rr=next((1 / (i + 1) for i, c in enumerate(covered) if c & evidence), 0.0),
                tokens10=sum(r.tokens for r in response.results[:10]),
                latency_ms=latency,
            )
        )
        results.append(
            {
                "qid": q["qid"],
                "latency_ms": round(latency, 2),
                "results": [
                    {
                        "refs": [
                            {"session_id": r.source.session_id, "entry_id": e}
                            for e in r.source.entry_ids
                        ],
                        "text": r.text,
                    }
                    for r in response.results
                ],
            }
        )
    return scored, results


def _recall(evidence: set[str], covered: list[set[str]]) -> float:
    if not evidence:
        return 0.0
    seen = set().union(*covered) if covered else set()
    return len(evidence & seen) / len(evidence)


def _print(
    args: argparse.Namespace, report: Any, ingest_s: float, raw_s: float, scored: list[Scored]
) -> None:
    chunks = report.chunks
    print(
        f"home {args.home}; window {args.window} turns, stride {args.stride}; budget "
        f"{args.budget}; {'all agents' if args.all_agents else 'question agent only'}; "
        f"window vectors: {args.window_vectors} ({args.piece_words}-word pieces)"
    )
    print(
        f"ingest: {report.turns} turns -> {chunks} chunks from {report.sources} sources in "
        f"{ingest_s:.1f} s ({report.turns / ingest_s:.0f} turns/s, {chunks / ingest_s:.1f} "
        f"chunks/s)"
    )
    print(
        f"raw embedder on the same {chunks} texts: {raw_s:.1f} s; pipeline overhead "
        f"{(ingest_s / raw_s - 1) * 100:+.1f}%"
    )
    groups: dict[str, list[Scored]] = defaultdict(list)
    for s in scored:
        groups[s.category].append(s)
    print(f"\n{'category':<12} {'n':>4} {'R@5':>6} {'R@10':>6} {'MRR':>6} {'tok@10':>7}")
    for name in [c for c in CATEGORIES if c in groups] + ["overall"]:
        rows = scored if name == "overall" else groups[name]
        print(
            f"{name:<12} {len(rows):>4} {_mean(rows, 'recall5'):>6.3f} "
            f"{_mean(rows, 'recall10'):>6.3f} {_mean(rows, 'rr'):>6.3f} "
            f"{_mean(rows, 'tokens10'):>7.0f}"
        )
    latencies = sorted(s.latency_ms for s in scored)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"\nsearch latency (in process): p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {p95:.1f} ms, max tokens {max(s.tokens10 for s in scored)}"
    )


def _mean(rows: list[Scored], attribute: str) -> float:
    return statistics.fmean(getattr(r, attribute) for r in rows) if rows else 0.0


if __name__ == "__main__":
    sys.exit(main())
