"""A LongMemEval-style OpenClaw home: long assistant replies, haystacks drawn from a shared pool.

    python bench/longmem_home.py OUT [--agents 4] [--sessions 12] [--pool 30] [--turns 12]
                                     [--reply-words 300] [--seed 7]

As in LongMemEval, each agent's history is a haystack of chat sessions, most of them drawn
from a pool that several haystacks share (the same session text under several agents), and
the assistant answers at length: replies run to ``--reply-words`` words on average (between
half and one and a half of it), user turns to 15-60 words. Deterministic for a seed. Every
agent speaks with the same person under the same assistant name, as one person's agents would
copy one conversation. Written in OpenClaw's legacy JSONL layout, one file per session.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.sample.writer import OpenClawWriter

TOPICS = [
    "sourdough baking", "marathon training", "a kitchen renovation", "learning Portuguese",
    "a trip to Kyoto", "houseplants", "a job interview", "budgeting for a car", "birdwatching",
    "a wedding speech", "moving to Oslo", "home espresso", "a vegetable garden", "chess openings",
    "a leaking roof", "adopting a dog", "photography at night", "a tax return", "knee pain",
    "a board game night", "starting a podcast", "camping gear", "a piano recital", "solar panels",
]  # fmt: skip
OPENERS = [
    "Can you help me think through", "I have a question about", "What would you suggest for",
    "I keep going back and forth on", "Could you give me a plan for", "I need advice on",
]  # fmt: skip
DETAILS = [
    "my sister said it worked for her last spring", "I only have weekends free",
    "the budget is tight this month", "I tried it once and it went badly",
    "my partner is skeptical", "I want to finish before the holidays",
    "the landlord has to agree first", "I read conflicting things online",
]  # fmt: skip
ADVICE = [
    "Start with a small step you can repeat every day, and write down what happened",
    "Compare the two options side by side, listing the costs you can see and the ones you cannot",
    "Ask someone who has done it recently, because the details change from year to year",
    "Set a firm date for the first milestone and plan backwards from it week by week",
    "Keep a simple log so that you can see after a month whether it is working",
    "Do not buy the expensive version first; the cheap one teaches you what you need",
    "Check the weather and the opening hours before you commit to a particular day",
    "Split the job into three parts and finish the hardest part while you are fresh",
    "Expect the first attempt to be rough, and judge the method only after the third try",
    "Write the question down before the appointment so that nothing is forgotten",
]  # fmt: skip
TAILS = [
    "which also keeps the cost predictable", "and that usually saves an afternoon",
    "so that the next step is obvious", "which most people skip and later regret",
    "and it makes the conversation with others much easier", "even if it feels slow at first",
]  # fmt: skip


def user_turn(rng: random.Random, topic: str) -> str:
    words = f"{rng.choice(OPENERS)} {topic}? {rng.choice(DETAILS).capitalize()}."
    while len(words.split()) < rng.randint(15, 60):
        words += f" Also, {rng.choice(DETAILS)}."
    return words


def reply(rng: random.Random, topic: str, words: int) -> str:
    target = rng.randint(words // 2, words * 3 // 2)
    parts = [f"Here is how I would approach {topic}."]
    while sum(len(p.split()) for p in parts) < target:
        parts.append(f"{rng.choice(ADVICE)}, {rng.choice(TAILS)}.")
    return " ".join(parts)


def session_turns(seed: int, turns: int, reply_words: int) -> list[str]:
    """One session's texts, user first; the same seed gives the same session."""
    rng = random.Random(seed)
    topic = rng.choice(TOPICS)
    texts = []
    for n in range(turns):
        texts.append(user_turn(rng, topic) if n % 2 == 0 else reply(rng, topic, reply_words))
    return texts


def write_home(
    out: Path,
    *,
    agents: int = 4,
    sessions: int = 12,
    pool: int = 30,
    turns: int = 12,
    reply_words: int = 300,
    seed: int = 7,
) -> int:
    """Write the home; the number of turns written."""
    rng = random.Random(seed)
    writer = OpenClawWriter(out)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    written = 0
    for a in range(agents):
        agent = "main" if a == 0 else f"agent{a}"
        writer.add_agent(agent, "Juniper", "Dana")
        picks = rng.sample(range(pool), min(sessions, pool))
        for s, pick in enumerate(picks):
            session = writer.new_session(agent, start + timedelta(days=s, hours=a))
            for n, text in enumerate(session_turns(seed * 1000 + pick, turns, reply_words)):
                if n % 2 == 0:
                    session.user(text, sender="Dana")
                else:
                    session.assistant(text)
            path = out / "agents" / agent / "sessions" / f"{session.session_id}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(session.jsonl())
            written += turns
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the OpenClaw state directory to write")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=12, help="sessions per agent")
    parser.add_argument("--pool", type=int, default=30, help="sessions the haystacks share")
    parser.add_argument("--turns", type=int, default=12, help="turns per session")
    parser.add_argument("--reply-words", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"OUT: {args.out} is not empty; give a new directory")
    turns = write_home(
        args.out,
        agents=args.agents,
        sessions=args.sessions,
        pool=args.pool,
        turns=args.turns,
        reply_words=args.reply_words,
        seed=args.seed,
    )
    print(f"wrote {turns} turns for {args.agents} agents to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
