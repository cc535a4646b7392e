"""The scripted scenario: marker phrases, the fake model's script, and the steps.

Every phrase is a made-up word group that occurs nowhere else, so a test can grep for it.
``PRESENT`` phrases are things a person or the agent said, or wrote in notes: they are in
OpenClaw's files and belong in the daemon's memory. ``ABSENT`` phrases must never end up in
the daemon's memory (system events, reasoning, tool results, heartbeat polls, delivery
mirrors, wrapper metadata); some of them *are* in OpenClaw's files (a thinking block, a
toolResult), which is the point: the manifest says where.

The same phrases are used for every OpenClaw version, so the tests can share one table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fake_model import FakeModel, RequestContext, Rule, Text, ToolCall
from fake_telegram import TelegramUser

# --------------------------------------------------------------------------- phrases
# Telegram turns (person: Ada Lovelace, @ada_l, id 4242001)
TG_PLAIN = "zebrafinch-quartz-17"
TG_PLAIN_REPLY = "marmot-lantern-52"
TG_REASONING_ASK = "heron-copper-08"
TG_REASONING_REPLY = "stoat-juniper-46"
REASONING_SECRET = "NEVERSTORE-ocelot-thinking-41"
TG_TOOL_ASK = "kiwi-basalt-63"
TOOL_RESULT_SECRET = "NEVERSTORE-gannet-ledger-29"
TG_TOOL_REPLY = "puffin-saffron-70"
TG_NOREPLY = "walrus-indigo-35"
TG_PRE_RESET = "lynx-marble-24"
TG_POST_RESET = "ibex-cobalt-81"
# CLI turns (openclaw agent --message) in the default agent's main session
CLI_MAIN = "okapi-velvet-12"
CLI_MAIN_REPLY = "civet-harbor-55"
CLI_LONG = "tapir-granite-90"  # a >1 KiB message: its row is zstd-compressed in 2026.9
# A CLI session that gets compacted
COMPACT_TURNS = ["narwhal-amber-44", "quokka-pewter-57", "dingo-ivory-19"]
COMPACT_SUMMARY = "SUMMARY-albatross-fern-66"
POST_COMPACT = "gecko-topaz-73"
# A CLI session that gets deleted
DELETED_TURNS = ["vole-crimson-38", "shrike-bramble-27"]
# The second agent
SECOND_TURNS = ["axolotl-sienna-26", "pangolin-mauve-84"]
# Workspace notes
MEMORY_MD = "MEMORY-badger-linen-15"
USER_MD = "USER-falcon-oak-47"
MEMORY_NOTE = "NOTE-beaver-slate-92"
SECOND_MEMORY_MD = "MEMORY-egret-moss-31"
# Never memory
SYSTEM_EVENT_SECRET = "NEVERSTORE-sysevent-cormorant-58"
MIRROR_SECRET = "NEVERSTORE-mirror-jackdaw-11"

DEFAULT_AGENT_NAME = "Wren"
SECOND_AGENT_NAME = "Juniper"
SECOND_AGENT_ID = "juniper"
PERSON = TelegramUser(4242001, "Ada", "Lovelace", "ada_l")
PERSON_NAME = "Ada Lovelace"
BOT_TOKEN = "7000000001:AAFixtureBotTokenNotReal_abcdefghijk"
BOT_USERNAME = "fixture_wren_bot"
GATEWAY_TOKEN = "fixture-gateway-token-not-secret"
MODEL_KEY = "fixture-local-key-not-secret"
PROVIDER_ID = "fixture"
MODEL_ID = "fixture-model"

HEARTBEAT_PROMPTS = (
    "[OpenClaw heartbeat poll]",  # 2026.7.1: the stored poll is also what the model sees
    "Follow the heartbeat monitor scratch context",  # 2026.9.6
    "HEARTBEAT.md",
)


def _is_heartbeat(ctx: RequestContext) -> bool:
    return any(p in ctx.last_user_text for p in HEARTBEAT_PROMPTS)


def _tool_reply(ctx: RequestContext) -> str:
    # The tool result (which holds TOOL_RESULT_SECRET) is *not* repeated in the answer.
    return f"I checked the ledger file; all entries reconcile. ({TG_TOOL_REPLY})"


RECOVERY_PROMPT = "The previous attempt did not produce a user-visible answer"


class HeartbeatReplies:
    """First heartbeat turn: ``HEARTBEAT_OK`` (the legacy ack); later ones: ``NO_REPLY``
    (what the 2026.9 heartbeat prompt asks for)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, ctx: RequestContext) -> str:
        self.count += 1
        return "HEARTBEAT_OK" if self.count == 1 else "NO_REPLY"


def model_script() -> list[Rule]:
    """The fake model's replies, keyed by the marker in the person's message."""
    return [
        Rule(_is_heartbeat, [Text(HeartbeatReplies())], name="heartbeat"),
        # 2026.9 treats NO_REPLY in a direct chat as an empty answer and asks once more.
        Rule(
            RECOVERY_PROMPT,
            [Text("Sorry, I should have answered: noted, thank you.")],
            name="recovery",
        ),
        Rule(TG_PLAIN, [Text(f"Lovely to hear from you. Noted for later: {TG_PLAIN_REPLY}.")]),
        Rule(
            TG_REASONING_ASK,
            [
                Text(
                    f"The short answer is yes ({TG_REASONING_REPLY}).",
                    reasoning=f"Private chain of thought {REASONING_SECRET}:"
                    " weigh the options, answer briefly.",
                )
            ],
        ),
        Rule(
            TG_TOOL_ASK,
            [ToolCall("read", {"path": "reference/ledger.txt"}), Text(_tool_reply)],
        ),
        Rule(TG_NOREPLY, [Text("NO_REPLY")]),
        Rule(TG_PRE_RESET, [Text("Understood, I will keep that in mind.")]),
        Rule(TG_POST_RESET, [Text("Fresh start acknowledged.")]),
        Rule(CLI_MAIN, [Text(f"Recorded from the terminal: {CLI_MAIN_REPLY}.")]),
        Rule(CLI_LONG, [Text("Thanks for the long briefing; I have filed it.")]),
        *[Rule(p, [Text(f"Project note {i + 1} received.")]) for i, p in enumerate(COMPACT_TURNS)],
        Rule(POST_COMPACT, [Text("Continuing after the summary.")]),
        *[Rule(p, [Text("Scratch note taken.")]) for p in DELETED_TURNS],
        *[Rule(p, [Text(f"{SECOND_AGENT_NAME} here, noted.")]) for p in SECOND_TURNS],
    ]


def compaction_summary() -> Text:
    return Text(
        "## Goal\n"
        f"Keep the Kestrel project notes ({COMPACT_SUMMARY}).\n\n"
        "## Progress\n"
        f"- Three project notes were received: {', '.join(COMPACT_TURNS)}.\n\n"
        "## Next steps\n- Continue the project."
    )


def make_fake_model(log_path: Path) -> FakeModel:
    return FakeModel(
        model_script(),
        log_path=log_path,
        model_ids=[MODEL_ID],
        default=Text("Noted."),
        compaction=compaction_summary(),
    )


def long_message() -> str:
    body = (
        "Here is the full briefing for the archive, please keep it. "
        "The greenhouse needs watering on Mondays and Thursdays; the heater is set to 14 degrees; "
        "the seed order goes out at the end of the month; the compost bins rotate weekly. "
    )
    text = f"Long briefing {CLI_LONG}. " + body * 8
    assert len(text.encode()) > 1100
    return text


# --------------------------------------------------------------------------- notes
def identity_md(name: str, creature: str, emoji: str) -> str:
    return (
        "# IDENTITY.md - Who Am I?\n\n"
        f"- **Name:** {name}\n"
        f"- **Creature:** {creature}\n"
        "- **Vibe:** calm, precise, a little dry\n"
        f"- **Emoji:** {emoji}\n"
    )


def workspace_notes(default_ws: Path, second_ws: Path) -> dict[Path, str]:
    """The Markdown a person (or the agent) keeps in the workspaces."""
    return {
        default_ws / "IDENTITY.md": identity_md(
            DEFAULT_AGENT_NAME, "a small brown songbird that keeps notes", "🐦"
        ),
        default_ws / "USER.md": (
            "# USER.md - About Your Human\n\n"
            f"- **Name:** {PERSON_NAME}\n"
            "- **What to call them:** Ada\n"
            "- **Timezone:** Europe/London\n\n"
            f"Ada grows tomatoes and keeps bees ({USER_MD}).\n"
        ),
        default_ws / "MEMORY.md": (
            "# MEMORY.md\n\n"
            f"- Ada prefers short answers in the morning ({MEMORY_MD}).\n"
            "- The bee hives are checked every second Saturday.\n"
        ),
        default_ws / "memory" / "2026-11-30-note.md": (
            f"# 2026-11-30\n\nAda mentioned the new greenhouse layout ({MEMORY_NOTE}).\n"
        ),
        default_ws / "reference" / "ledger.txt": (
            f"ledger line 1: seeds 12.40\nledger line 2: {TOOL_RESULT_SECRET} compost 3.10\n"
        ),
        second_ws / "IDENTITY.md": identity_md(SECOND_AGENT_NAME, "a patient juniper bush", "🌿"),
        second_ws / "MEMORY.md": (
            f"# MEMORY.md\n\n- Juniper tracks the reading list ({SECOND_MEMORY_MD}).\n"
        ),
    }


# --------------------------------------------------------------------------- ledger
@dataclass
class Expect:
    phrase: str
    agent: str
    where: str
    #: which document kinds count as "really there" (see verify.Doc.kind)
    kinds: tuple[str, ...]
    session_key: str | None = None
    #: a file path (relative to the state dir) the phrase must be in, for notes
    path: str | None = None
    #: the compaction summary must be in a ``type: compaction`` entry
    entry_type: str | None = None


@dataclass
class Never:
    phrase: str
    why: str
    note: str = ""


@dataclass
class Ledger:
    present: list[Expect] = field(default_factory=list)
    absent: list[Never] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    not_produced: list[dict] = field(default_factory=list)

    def step(self, what: str, **info) -> None:
        rec = {"t": round(time.time(), 3), "step": what, **info}
        self.steps.append(rec)
        print(f"[{time.strftime('%H:%M:%S')}] {what} {info if info else ''}", flush=True)


def wait_until(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
