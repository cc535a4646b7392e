#!/usr/bin/env python3
"""Generate OpenClaw state-directory fixtures by driving the REAL OpenClaw offline.

    python3 tools/openclaw_fixtures/make.py --version 2026.9.6 \\
        --out tests/fixtures/openclaw/v2026.9.6
    python3 tools/openclaw_fixtures/make.py --version 2026.7.1 \\
        --out tests/fixtures/openclaw/v2026.7.1 --upgrade-to 2026.9.6 \\
        --upgrade-out tests/fixtures/openclaw/v2026.7.1-upgraded-2026.9.6
    python3 tools/openclaw_fixtures/make.py --all --out-root tests/fixtures/openclaw

See README.md beside this file. Stdlib only; Node 24 and OpenClaw come from npm into
``--cache`` (default ``$OPENCLAW_FIXTURES_CACHE`` or ~/.cache/openclaw-fixtures/cache),
sandboxes live in ``--work`` (default ~/.cache/openclaw-fixtures/sandboxes). Nothing outside
--out/--work/--cache is written; no network but the npm registry (for the installs) and
127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scenario as S  # noqa: E402
import verify  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402
from sandbox import (  # noqa: E402
    DEFAULT_CACHE,
    CommandFailed,
    Sandbox,
    checkpoint_sqlite,
    ensure_openclaw,
    free_port,
)

DEFAULT_WORK = Path(
    os.environ.get("OPENCLAW_FIXTURES_WORK") or Path.home() / ".cache/openclaw-fixtures/sandboxes"
)
TRIM_TOP = {
    # top-level entries of the state dir left out of a fixture, and why
    "cache": "caches (Control UI assets: ~50 MB)",
    "logs": "logs (config audit)",
    "tmp": "temporary files",
    "state": "shared gateway state DB (devices, device keys, cron, audit; not read by the daemon)",
    "identity": "device identity keys",
    "credentials": "channel credentials",
    "devices": "paired devices",
    "media": "inbound media cache",
    "plugin-skills": "plugin skill cache",
    "telegram": "Telegram ingress spool / offsets",
    "backups": "doctor backups of migrated files",
    "config-journal-fingerprint.key": "config journal key",
    "browser": "browser profiles",
    "canvas": "canvas host files",
}
TRIM_ANYWHERE = {
    ".git": "git repository OpenClaw initialises in each workspace"
    " (a nested repo cannot be committed)"
}


# =========================================================================== profile
def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


@dataclass
class Caps:
    """What the installed version can do, read from its own --help output."""

    onboard_agent_name: bool
    sessions_delete: bool
    agents_bind: bool
    sqlite_sessions: bool


def detect_caps(sb: Sandbox) -> Caps:
    onboard = sb.run("onboard", "--help", check=False).stdout
    sessions = sb.run("sessions", "--help", check=False).stdout
    agents = sb.run("agents", "--help", check=False).stdout
    return Caps(
        onboard_agent_name="--agent-name" in onboard,
        sessions_delete=bool(re.search(r"^\s+delete\b", sessions, re.M)),
        agents_bind=bool(re.search(r"^\s+bind\b", agents, re.M)),
        # 2026.7.2 moved transcripts into agents/<id>/agent/openclaw-agent.sqlite
        sqlite_sessions=version_tuple(sb.install.version) >= (2026, 7, 2),
    )


# =========================================================================== helpers
def in_transcripts(state_dir: Path, phrase: str, kinds=("transcript", "archive")) -> bool:
    return any(doc.kind in kinds and phrase in doc.text for doc in verify.iter_docs(state_dir))


def wait_model_quiet(fm, quiet: float = 4.0, timeout: float = 120) -> None:
    """Wait until the fake model has had no request for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = fm.requests[-1]["t"] if fm.requests else 0
        if time.time() - last >= quiet:
            return
        time.sleep(0.5)


def rule_hits(fm, marker: str) -> int:
    for r in fm.script:
        if marker in (r.match, r.name):
            return r.hits
    return 0


class Driver:
    """Runs the scenario against one sandbox; records what it did in a Ledger."""

    def __init__(self, sb: Sandbox, caps: Caps, ledger: S.Ledger) -> None:
        self.sb = sb
        self.caps = caps
        self.ledger = ledger
        self.fm = S.make_fake_model(sb.logs / "fake-model.jsonl")
        self.tg = FakeTelegram(
            S.BOT_TOKEN, bot_username=S.BOT_USERNAME, log_path=sb.logs / "fake-telegram.jsonl"
        )
        self.default_agent = "main"

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        sb, L = self.sb, self.ledger
        self.fm.start()
        self.tg.start()
        port = free_port(span=10)
        sb.gateway_port = port
        L.step(
            "fakes started", model=self.fm.base_url, telegram=self.tg.api_root, gateway_port=port
        )
        onboard = [
            "onboard",
            "--non-interactive",
            "--accept-risk",
            "--skip-health",
            "--auth-choice",
            "custom-api-key",
            "--custom-base-url",
            self.fm.base_url,
            "--custom-model-id",
            S.MODEL_ID,
            "--custom-provider-id",
            S.PROVIDER_ID,
            "--custom-api-key",
            S.MODEL_KEY,
            "--secret-input-mode",
            "plaintext",
            "--custom-compatibility",
            "openai",
            "--gateway-auth",
            "token",
            "--gateway-token",
            S.GATEWAY_TOKEN,
            "--gateway-port",
            str(port),
            "--skip-daemon",
            "--skip-skills",
            "--skip-search",
            "--skip-channels",
            "--skip-ui",
        ]
        if self.caps.onboard_agent_name:
            onboard += ["--agent-name", S.DEFAULT_AGENT_NAME]
        sb.run(*onboard, timeout=300)
        cfg = self.read_config()
        self.default_agent = default_agent_id(cfg)
        L.step(
            "onboard", agent=self.default_agent, argv=onboard
        )  # every secret in it is a made-up fixture value

        sb.run("channels", "add", "--channel", "telegram", "--token", S.BOT_TOKEN)
        sets = [
            {"path": "channels.telegram.apiRoot", "value": self.tg.api_root},
            {"path": "channels.telegram.dmPolicy", "value": "allowlist"},
            {"path": "channels.telegram.allowFrom", "value": [str(S.PERSON.id)]},
            {"path": f"models.providers.{S.PROVIDER_ID}.models[0].reasoning", "value": True},
            {"path": "update.checkOnStart", "value": False},
            {"path": "logging.file", "value": str(sb.logs / "openclaw.log")},
        ]
        sb.run("config", "set", "--batch-json", json.dumps(sets))
        L.step("config set --batch-json", sets=sets)

        st = self.sb.state_dir
        second_ws = st / f"workspace-{S.SECOND_AGENT_ID}"
        sb.run(
            "agents",
            "add",
            S.SECOND_AGENT_NAME,
            "--non-interactive",
            "--workspace",
            str(second_ws),
            "--model",
            f"{S.PROVIDER_ID}/{S.MODEL_ID}",
            "--json",
        )
        L.step("agents add", agent=S.SECOND_AGENT_ID, workspace=str(second_ws))
        if self.caps.agents_bind and self.caps.onboard_agent_name:
            # 2026.9: with two agents each Telegram account needs an explicit owner.
            sb.run("agents", "bind", "--agent", self.default_agent, "--bind", "telegram:default")
            L.step("agents bind", agent=self.default_agent, bind="telegram:default")

        cfg = self.read_config()
        default_ws = Path(agent_workspace(cfg, self.default_agent, st))
        for path, text in S.workspace_notes(default_ws, second_ws).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        L.step(
            "workspace notes written",
            files=[str(p) for p in S.workspace_notes(default_ws, second_ws)],
        )
        for agent, ws in ((self.default_agent, default_ws), (S.SECOND_AGENT_ID, second_ws)):
            sb.run(
                "agents",
                "set-identity",
                "--agent",
                agent,
                "--from-identity",
                "--workspace",
                str(ws),
                "--json",
            )
        L.step("agents set-identity --from-identity")

        P = L.present
        P.append(
            S.Expect(
                S.MEMORY_MD,
                self.default_agent,
                "MEMORY.md",
                ("workspace",),
                path=rel_to(default_ws / "MEMORY.md", st),
            )
        )
        P.append(
            S.Expect(
                S.USER_MD,
                self.default_agent,
                "USER.md",
                ("workspace",),
                path=rel_to(default_ws / "USER.md", st),
            )
        )
        P.append(
            S.Expect(
                S.MEMORY_NOTE,
                self.default_agent,
                "memory note",
                ("workspace",),
                path=rel_to(default_ws / "memory" / "2026-11-30-note.md", st),
            )
        )
        P.append(
            S.Expect(
                S.SECOND_MEMORY_MD,
                S.SECOND_AGENT_ID,
                "MEMORY.md",
                ("workspace",),
                path=rel_to(second_ws / "MEMORY.md", st),
            )
        )
        P.append(
            S.Expect(
                S.DEFAULT_AGENT_NAME,
                self.default_agent,
                "IDENTITY.md",
                ("workspace",),
                path=rel_to(default_ws / "IDENTITY.md", st),
            )
        )
        P.append(
            S.Expect(
                S.SECOND_AGENT_NAME,
                S.SECOND_AGENT_ID,
                "IDENTITY.md",
                ("workspace",),
                path=rel_to(second_ws / "IDENTITY.md", st),
            )
        )

    def read_config(self) -> dict:
        return json.loads((self.sb.state_dir / "openclaw.json").read_text())

    # ------------------------------------------------------------------ turns
    def cli_turn(self, agent: str, text: str, session_key: str | None = None) -> str:
        args = ["agent", "--agent", agent, "--message", text]
        if session_key:
            args += ["--session-key", session_key]
        proc = self.sb.run(*args, timeout=300)
        out = proc.stdout.strip().splitlines()
        self.ledger.step(
            "cli turn",
            agent=agent,
            session_key=session_key,
            text=text[:80],
            reply=(out[-1] if out else ""),
        )
        return proc.stdout

    def tg_turn(
        self, text: str, marker: str, *, expect_reply: str | None = "", timeout: float = 180
    ) -> None:
        mark = self.tg.mark()
        self.tg.send_user_message(S.PERSON, text)
        if expect_reply is None:  # a silent turn (NO_REPLY): wait for the model, then the row
            S.wait_until(
                lambda: rule_hits(self.fm, marker) > 0, timeout, f"model asked about {marker}"
            )
        else:
            c = self.tg.wait_for_bot_message(
                S.PERSON.id, since=mark, timeout=timeout, contains=expect_reply or None
            )
            if c is None:
                raise TimeoutError(f"no Telegram reply to {text!r}; see {self.sb.logs}")
        S.wait_until(
            lambda: in_transcripts(self.sb.state_dir, marker), 60, f"{marker} in a transcript"
        )
        wait_model_quiet(self.fm)
        self.ledger.step("telegram turn", text=text[:80], expect_reply=expect_reply)

    # ------------------------------------------------------------------ scenario
    def run(self) -> None:
        sb, L, A = self.sb, self.ledger, self.default_agent
        P, N = L.present, L.absent
        sb.start_gateway()
        sb.wait_gateway_ready()
        mark = 0
        S.wait_until(
            lambda: self.tg.polled_since(mark), 120, "Telegram getUpdates from the gateway"
        )
        L.step("gateway ready; Telegram polling")

        # --- Telegram turns from the person
        tg_key = "telegram DM"
        # Before /new: 2026.9 keeps them in the live session (a `reset` entry follows);
        # 2026.7 moves the whole transcript to <sid>.jsonl.reset.<ts>.
        TG = ("transcript", "archive")
        self.tg_turn(
            f"Hello from the garden, remember {S.TG_PLAIN} please",
            S.TG_PLAIN,
            expect_reply=S.TG_PLAIN_REPLY,
        )
        P.append(S.Expect(S.TG_PLAIN, A, "telegram turn", TG, session_key=tg_key))
        P.append(S.Expect(S.TG_PLAIN_REPLY, A, "telegram reply", TG, session_key=tg_key))

        self.tg_turn(
            f"Should I plant early this year? {S.TG_REASONING_ASK}",
            S.TG_REASONING_ASK,
            expect_reply=S.TG_REASONING_REPLY,
        )
        P.append(S.Expect(S.TG_REASONING_ASK, A, "telegram turn", TG, session_key=tg_key))
        P.append(
            S.Expect(
                S.TG_REASONING_REPLY, A, "telegram reply (after reasoning)", TG, session_key=tg_key
            )
        )
        N.append(
            S.Never(
                S.REASONING_SECRET,
                "reasoning",
                "stored as a thinking block of the assistant message",
            )
        )

        self.tg_turn(
            f"Can you check the ledger file? {S.TG_TOOL_ASK}",
            S.TG_TOOL_ASK,
            expect_reply=S.TG_TOOL_REPLY,
        )
        P.append(S.Expect(S.TG_TOOL_ASK, A, "telegram turn", TG, session_key=tg_key))
        P.append(
            S.Expect(S.TG_TOOL_REPLY, A, "telegram reply (after tool call)", TG, session_key=tg_key)
        )
        N.append(
            S.Never(
                S.TOOL_RESULT_SECRET,
                "tool result",
                "the read tool's result (toolResult message); also in the workspace file"
                " reference/ledger.txt, which is not a memory file",
            )
        )

        self.tg_turn(
            f"Just so you know, no need to answer: {S.TG_NOREPLY}", S.TG_NOREPLY, expect_reply=None
        )
        recovered = rule_hits(self.fm, "recovery") > 0
        L.step("NO_REPLY in a direct chat", recovery_prompt_sent=recovered)
        P.append(
            S.Expect(S.TG_NOREPLY, A, "telegram turn (answered NO_REPLY)", TG, session_key=tg_key)
        )
        N.append(S.Never("NO_REPLY", "silent reply token"))
        if recovered:
            N.append(
                S.Never(
                    S.RECOVERY_PROMPT,
                    "recovery prompt",
                    "2026.9 asks again after a NO_REPLY in a direct chat",
                )
            )

        # --- CLI turns in the default agent's main session
        self.cli_turn(A, f"From the terminal: {S.CLI_MAIN}")
        P.append(
            S.Expect(S.CLI_MAIN, A, "cli turn", ("transcript",), session_key=f"agent:{A}:main")
        )
        P.append(
            S.Expect(
                S.CLI_MAIN_REPLY, A, "cli reply", ("transcript",), session_key=f"agent:{A}:main"
            )
        )
        self.cli_turn(A, S.long_message())
        P.append(
            S.Expect(
                S.CLI_LONG,
                A,
                "cli turn (long, >1 KiB)",
                ("transcript",),
                session_key=f"agent:{A}:main",
            )
        )

        # --- a session that gets compacted
        key = "project-kestrel"
        full = f"agent:{A}:{key}"
        for i, m in enumerate(S.COMPACT_TURNS):
            self.cli_turn(A, f"Kestrel project note {i + 1}: {m}", session_key=key)
            P.append(
                S.Expect(m, A, "cli turn (compacted session)", ("transcript",), session_key=full)
            )
        sb.run("sessions", "compact", full, timeout=300)
        L.step("sessions compact", key=full)
        S.wait_until(
            lambda: in_transcripts(sb.state_dir, S.COMPACT_SUMMARY), 60, "compaction summary stored"
        )
        P.append(
            S.Expect(
                S.COMPACT_SUMMARY,
                A,
                "compaction summary",
                ("transcript",),
                session_key=full,
                entry_type="compaction",
            )
        )
        self.cli_turn(A, f"After the summary: {S.POST_COMPACT}", session_key=key)
        P.append(
            S.Expect(
                S.POST_COMPACT, A, "cli turn (after compaction)", ("transcript",), session_key=full
            )
        )

        # --- a session that gets deleted
        key = "scratch-doomed"
        full = f"agent:{A}:{key}"
        for m in S.DELETED_TURNS:
            self.cli_turn(A, f"Scratch thought {m}", session_key=key)
        if self.caps.sessions_delete:
            sb.run("sessions", "delete", full, "--yes", "--json")
            L.step("sessions delete", key=full, how="openclaw sessions delete --yes")
        else:
            sb.run(
                "gateway",
                "call",
                "sessions.delete",
                "--params",
                json.dumps({"key": full, "deleteTranscript": True}),
                "--json",
            )
            L.step(
                "sessions delete",
                key=full,
                how="openclaw gateway call sessions.delete (no CLI command in this version)",
            )
        for m in S.DELETED_TURNS:
            P.append(S.Expect(m, A, "deleted session", ("archive",), session_key=full))

        # --- the second agent
        for m in S.SECOND_TURNS:
            self.cli_turn(S.SECOND_AGENT_ID, f"For the reading list: {m}")
            P.append(
                S.Expect(
                    m,
                    S.SECOND_AGENT_ID,
                    "second agent cli turn",
                    ("transcript",),
                    session_key=f"agent:{S.SECOND_AGENT_ID}:main",
                )
            )

        # --- /new inside the Telegram conversation
        self.tg_turn(f"Before we start over: {S.TG_PRE_RESET}", S.TG_PRE_RESET)
        mark = self.tg.mark()
        self.tg.send_user_message(S.PERSON, "/new")
        if self.tg.wait_for_bot_message(S.PERSON.id, since=mark, timeout=120) is None:
            raise TimeoutError("no answer to /new")
        L.step("telegram /new")
        time.sleep(2)
        self.tg_turn(f"New topic: {S.TG_POST_RESET}", S.TG_POST_RESET)
        P.append(
            S.Expect(
                S.TG_PRE_RESET,
                A,
                "reset session (before /new)",
                ("transcript", "archive"),
                session_key=tg_key,
            )
        )
        P.append(
            S.Expect(
                S.TG_POST_RESET,
                A,
                "telegram turn (after /new)",
                ("transcript",),
                session_key=tg_key,
            )
        )

        # --- system events with an immediate heartbeat (twice: HEARTBEAT_OK, then NO_REPLY)
        N.append(
            S.Never(
                S.SYSTEM_EVENT_SECRET, "system event", "openclaw system event --text ... --mode now"
            )
        )
        for i, reply in enumerate(("HEARTBEAT_OK", "NO_REPLY")):
            if i:
                time.sleep(35)  # event-driven heartbeats are at least 30 s apart
            hb_before = rule_hits(self.fm, "heartbeat")
            sb.run(
                "system",
                "event",
                "--text",
                f"Reminder {i + 1} from a cron script: {S.SYSTEM_EVENT_SECRET}",
                "--mode",
                "now",
            )
            L.step("system event --mode now", n=i + 1)
            try:
                S.wait_until(
                    lambda n=hb_before: rule_hits(self.fm, "heartbeat") > n, 90, "heartbeat turn"
                )
                wait_model_quiet(self.fm)
                L.step("heartbeat turn", answered=reply)
            except TimeoutError as exc:
                L.not_produced.append(
                    {"what": f"heartbeat turn after system event {i + 1}", "why": str(exc)}
                )
        N.append(S.Never("[OpenClaw heartbeat poll]", "heartbeat poll"))
        N.append(S.Never("HEARTBEAT_OK", "heartbeat ack"))

        # --- an outbound message (delivery mirror)
        mark = self.tg.mark()
        sb.run(
            "message",
            "send",
            "--channel",
            "telegram",
            "--target",
            str(S.PERSON.id),
            "--message",
            f"Sent by a script: {S.MIRROR_SECRET}",
            "--json",
        )
        if (
            self.tg.wait_for_bot_message(
                S.PERSON.id, since=mark, timeout=60, contains=S.MIRROR_SECRET
            )
            is None
        ):
            L.not_produced.append(
                {"what": "openclaw message send", "why": "no sendMessage reached the fake Telegram"}
            )
        time.sleep(3)
        L.step("message send")
        N.append(
            S.Never(
                S.MIRROR_SECRET,
                "delivery mirror",
                "openclaw message send; stored (if at all) as an assistant copy with provider"
                " openclaw / model delivery-mirror",
            )
        )
        N.append(
            S.Never(
                "untrusted metadata",
                "wrapper metadata",
                "the label of the inbound metadata wrapper (older releases)",
            )
        )
        N.append(
            S.Never(
                "⟦openclaw:ctx⟧",
                "wrapper metadata",
                "the marker of the relabelled / current metadata wrapper",
            )
        )
        N.append(
            S.Never(
                f'"username":"{S.PERSON.username}"',
                "wrapper metadata",
                "the sender JSON of the metadata wrapper",
            )
        )

        # --- notes OpenClaw itself wrote into memory/ (the session-memory hook on /new)
        cfg = self.read_config()
        ws = Path(agent_workspace(cfg, A, sb.state_dir))
        ours = {ws / "memory" / "2026-11-30-note.md"}
        for note in sorted((ws / "memory").glob("*.md")):
            if note in ours:
                continue
            text = note.read_text(errors="replace")
            for phrase in (S.TG_PLAIN, S.TG_PRE_RESET):
                if phrase in text:
                    P.append(
                        S.Expect(
                            phrase,
                            A,
                            "memory note written by OpenClaw (session-memory hook on /new)",
                            ("workspace",),
                            path=rel_to(note, sb.state_dir),
                        )
                    )
            L.step("OpenClaw wrote a memory note", path=rel_to(note, sb.state_dir))

    def shutdown(self) -> None:
        try:
            self.sb.stop_gateway()
        finally:
            self.fm.stop()
            self.tg.stop()


# =========================================================================== config
def default_agent_id(cfg: dict) -> str:
    agents = cfg.get("agents") or {}
    entries = agents.get("entries")
    if isinstance(entries, dict) and entries:
        for k, v in entries.items():
            if isinstance(v, dict) and v.get("default"):
                return k
        return next(iter(entries))
    lst = agents.get("list")
    if isinstance(lst, list) and lst:
        for v in lst:
            if isinstance(v, dict) and v.get("default"):
                return v["id"]
        return lst[0].get("id", "main")
    return "main"


def agent_workspace(cfg: dict, agent: str, state_dir: Path) -> str:
    agents = cfg.get("agents") or {}
    entry = None
    if isinstance(agents.get("entries"), dict):
        entry = agents["entries"].get(agent)
    elif isinstance(agents.get("list"), list):
        entry = next((a for a in agents["list"] if a.get("id") == agent), None)
    if entry and entry.get("workspace"):
        return entry["workspace"]
    if agent == default_agent_id(cfg):
        return (agents.get("defaults") or {}).get("workspace") or str(state_dir / "workspace")
    return str(state_dir / f"workspace-{agent}")


def rel_to(p: Path, root: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(p)


# =========================================================================== export
def export_state(sb: Sandbox, out: Path, keep_all: bool = False) -> dict:
    """Copy the sandbox's state dir to out/state, trimmed. Returns what was left out."""
    dest = out / "state"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    trimmed: list[dict] = []
    src = sb.state_dir

    def ignore(dirpath: str, names: list[str]) -> list[str]:
        if keep_all:
            return []
        skip = []
        at_top = Path(dirpath).resolve() == src.resolve()
        for n in names:
            why = None
            if at_top and n in TRIM_TOP:
                why = TRIM_TOP[n]
            elif n in TRIM_ANYWHERE:
                why = TRIM_ANYWHERE[n]
            elif n.endswith(("-wal", "-shm")):
                why = "SQLite WAL companions (checkpointed)"
            if why:
                full = Path(dirpath) / n
                trimmed.append({"path": rel_to(full, src), "why": why, "bytes": du(full)})
                skip.append(n)
        return skip

    shutil.copytree(src, dest, ignore=ignore, symlinks=True)
    if not keep_all:
        trimmed += trim_trajectories(dest)
    return {"trimmed": trimmed}


def trim_trajectories(state: Path) -> list[dict]:
    """Keep one run trace (``<sid>.trajectory.jsonl``, also inside the SQLite import
    archive) per fixture, the smallest; drop the others (each holds the full compiled prompt
    of every turn, ~100-600 KB). One is enough to test that readers skip them."""
    files = sorted(
        (p for p in state.rglob("*") if p.is_file() and ".trajectory.jsonl" in p.name),
        key=lambda p: (p.stat().st_size, str(p)),
    )
    out = []
    if not files:
        return out
    keep_sid = re.search(r"([0-9a-f]{8}-[0-9a-f-]{27})", files[0].name)
    for p in files:
        if keep_sid and keep_sid.group(1) in p.name:
            continue  # the kept session's trace (and its imported copy)
        out.append(
            {
                "path": rel_to(p, state),
                "why": "run trace (*.trajectory.jsonl), not a transcript; one kept as a sample",
                "bytes": p.stat().st_size,
            }
        )
        p.unlink()
    return out


def du(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


# =========================================================================== manifest
def sqlite_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)


def describe_agents(state: Path, sandbox_state: Path) -> list[dict]:
    cfg = json.loads((state / "openclaw.json").read_text())
    agents_cfg = cfg.get("agents") or {}
    ids: list[tuple[str, dict]] = []
    if isinstance(agents_cfg.get("entries"), dict):
        ids = list(agents_cfg["entries"].items())
    elif isinstance(agents_cfg.get("list"), list):
        ids = [(a.get("id"), a) for a in agents_cfg["list"]]
    else:
        ids = [("main", {})]
    default = default_agent_id(cfg)
    out = []
    for aid, entry in ids:
        ws_abs = agent_workspace(cfg, aid, sandbox_state)
        ws_rel = (
            rel_to(Path(ws_abs), sandbox_state) if ws_abs.startswith(str(sandbox_state)) else ws_abs
        )
        ws_dir = state / ws_rel
        name = (entry or {}).get("name") or ((entry or {}).get("identity") or {}).get("name")
        ident_name = None
        ident = ws_dir / "IDENTITY.md"
        if ident.exists():
            m = re.search(r"^\s*-\s*\*{0,2}Name:\*{0,2}\s*(.+?)\s*$", ident.read_text(), re.M)
            ident_name = m.group(1) if m else None
        adir = state / "agents" / aid
        info = {
            "id": aid,
            "default": aid == default,
            "name_in_config": name,
            "name_in_identity_md": ident_name,
            "workspace": f"state/{ws_rel}",
            "workspace_in_config": ws_abs,
            "agent_dir": f"state/agents/{aid}",
        }
        db = adir / "agent" / "openclaw-agent.sqlite"
        if db.exists():
            info["db"] = f"state/agents/{aid}/agent/openclaw-agent.sqlite"
            info.update(describe_db(db))
        sj = adir / "sessions" / "sessions.json"
        if sj.exists():
            info["sessions_json"] = f"state/agents/{aid}/sessions/sessions.json"
            info.update(describe_jsonl(adir / "sessions"))
        sdir = adir / "sessions"
        info["archive_files"] = sorted(
            f"state/{rel_to(f, state)}"
            for f in (sdir.iterdir() if sdir.exists() else [])
            if re.search(r"\.jsonl\.(reset|deleted|bak)\.", f.name)
        )
        files = []
        for sub in ("sessions", "session-sqlite-import-archive"):
            d = adir / sub
            if d.exists():
                files += [
                    f"state/{rel_to(f, state)}"
                    for f in sorted(d.rglob("*"))
                    if f.is_file() and "skills-prompts" not in f.parts
                ]
        info["files"] = files
        out.append(info)
    return out


def _count_roles(objs: list[dict]) -> dict:
    c = {
        "user": 0,
        "assistant": 0,
        "toolResult": 0,
        "compaction": 0,
        "reset": 0,
        "events": len(objs),
    }
    for o in objs:
        t = o.get("type")
        if t == "message":
            role = (o.get("message") or {}).get("role")
            if role in c:
                c[role] += 1
        elif t in ("compaction", "reset"):
            c[t] += 1
    return c


def journal_mode_of(db: Path) -> str:
    """From the file header (bytes 18/19 are 2 in WAL mode), without opening the DB."""
    with db.open("rb") as fh:
        head = fh.read(20)
    return "wal" if head[18:20] == b"\x02\x02" else "rollback (delete/truncate/persist)"


def describe_db(db: Path) -> dict:
    con = sqlite_ro(db)
    try:
        uv = con.execute("PRAGMA user_version").fetchone()[0]
        jm = journal_mode_of(db)
        sessions = []
        for sid, key in con.execute(
            "SELECT session_id, session_key FROM session_windows ORDER BY created_at"
        ):
            objs = []
            for ej, ez in con.execute(
                "SELECT event_json, event_zstd FROM transcript_events"
                " WHERE session_id=? ORDER BY seq",
                (sid,),
            ):
                text = ej if ej is not None else verify._decode(ez)
                with contextlib.suppress(ValueError):
                    objs.append(json.loads(text))
            zstd_rows = con.execute(
                "SELECT count(*) FROM transcript_events WHERE session_id=? AND event_json IS NULL",
                (sid,),
            ).fetchone()[0]
            sessions.append(
                {
                    "session_id": sid,
                    "session_key": key,
                    "zstd_rows": zstd_rows,
                    **_count_roles(objs),
                }
            )
        archives = [
            {"archive_name": n, "session_key": k, "reason": r, "encoding": e}
            for n, k, r, e in con.execute(
                "SELECT archive_name, session_key, reason, encoding"
                " FROM session_transcript_archives ORDER BY created_at"
            )
        ]
        cold = [
            r[0] for r in con.execute("SELECT archive_name FROM session_transcript_cold_archives")
        ]
        orphan = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT session_id FROM transcript_events"
                " WHERE session_id NOT IN (SELECT session_id FROM session_windows)"
            )
        ]
        return {
            "layout": "sqlite",
            "user_version": uv,
            "journal_mode": jm,
            "sessions": sessions,
            "sessions_count": len(sessions),
            "user_turns": sum(s["user"] for s in sessions),
            "assistant_messages": sum(s["assistant"] for s in sessions),
            "db_archives": archives,
            "db_cold_archives": cold,
            "transcripts_without_window": orphan,
        }
    finally:
        con.close()


def describe_jsonl(sessions_dir: Path) -> dict:
    index = json.loads((sessions_dir / "sessions.json").read_text())
    sessions = []
    for key, entry in index.items():
        sid = entry.get("sessionId")
        f = sessions_dir / f"{sid}.jsonl"
        objs = []
        if f.exists():
            for line in f.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    objs.append(json.loads(line))
        sessions.append(
            {
                "session_id": sid,
                "session_key": key,
                "file": f.name if f.exists() else None,
                "origin_label": (entry.get("origin") or {}).get("label"),
                **_count_roles(objs),
            }
        )
    archives = sorted(
        p.name
        for p in sessions_dir.iterdir()
        if re.search(r"\.jsonl\.(reset|deleted|bak)\.", p.name)
    )
    return {
        "layout": "jsonl",
        "sessions": sessions,
        "sessions_count": len(sessions),
        "user_turns": sum(s["user"] for s in sessions),
        "assistant_messages": sum(s["assistant"] for s in sessions),
        "jsonl_archives": archives,
    }


def telegram_origin_label(state: Path) -> str | None:
    """The origin.label 2026.7 keeps for the Telegram DM session (sessions.json), or the same
    field inside session_nodes.entry_json (SQLite layout), if any."""
    for sj in sorted(state.glob("agents/*/sessions/sessions.json")):
        for key, entry in json.loads(sj.read_text()).items():
            label = (entry.get("origin") or {}).get("label")
            if ":telegram:" in key and label:
                return label
    for db in sorted(state.glob("agents/*/agent/openclaw-agent.sqlite")):
        con = sqlite_ro(db)
        try:
            for key, ej in con.execute("SELECT session_key, entry_json FROM session_nodes"):
                try:
                    label = (json.loads(ej).get("origin") or {}).get("label")
                except ValueError:
                    continue
                if ":telegram:" in key and label:
                    return label
        finally:
            con.close()
    return None


def delivery_mirror_rows(state: Path) -> list[dict]:
    """Assistant copies written by OpenClaw itself (provider openclaw)."""
    rows = []
    for doc in verify.iter_docs(state, immutable=True):
        if doc.kind not in ("transcript", "archive"):
            continue
        msg = (doc.obj or {}).get("message") if doc.obj else None
        if isinstance(msg, dict) and msg.get("provider") == "openclaw":
            text = " ".join(
                b.get("text", "") for b in msg.get("content") or [] if isinstance(b, dict)
            )
            rows.append(
                {
                    "location": f"state/{doc.location}",
                    "kind": doc.kind,
                    "model": msg.get("model"),
                    "text": text[:200],
                }
            )
    return rows


def session_of(location: str) -> str | None:
    m = re.search(r"transcript_events\[([^,\]]+),", location)
    if m:
        return m.group(1)
    m = re.search(
        r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl", location
    )
    return m.group(1) if m else None


def verify_fixture(fixture_dir: Path, ledger: S.Ledger) -> tuple[list[dict], list[dict], list[str]]:
    """Check every present phrase is really where it should be; locate the absent ones."""
    state = fixture_dir / "state"
    phrases = [e.phrase for e in ledger.present] + [n.phrase for n in ledger.absent]
    hits = verify.find(state, list(dict.fromkeys(phrases)), immutable=True)
    tg_label = telegram_origin_label(state)
    problems: list[str] = []
    present_out = []
    for e in ledger.present:
        docs = hits.get(e.phrase, [])
        good = [d for d in docs if d.kind in e.kinds]
        if e.path:
            good = [d for d in good if d.location == e.path]
        if e.entry_type:
            good = [d for d in good if d.obj and d.obj.get("type") == e.entry_type]
        if not good:
            problems.append(
                f"present phrase {e.phrase!r} ({e.where}) not found as {e.kinds} {e.path or ''};"
                f" found in {[d.location for d in docs][:5]}"
            )
        speaker = None
        speaker_source = None
        role = None
        for d in good:
            msg = (d.obj or {}).get("message") if d.obj else None
            if isinstance(msg, dict):
                role = msg.get("role")
                meta = msg.get("__openclaw") or {}
                if role == "user" and meta.get("senderName"):
                    speaker, speaker_source = meta["senderName"], "message.__openclaw.senderName"
                    break
                if role == "user" and "telegram" in e.where:
                    speaker_source = (
                        "none: the message row records no sender (only __openclaw.senderIsOwner)"
                    )
        rec = {
            "phrase": e.phrase,
            "agent": e.agent,
            "where": e.where,
            "session_key": e.session_key,
            "role": role,
            "speaker": speaker,
            "speaker_source": speaker_source,
            "session_origin_label": tg_label if "telegram" in e.where and role == "user" else None,
            "found_kinds": sorted({d.kind for d in good}),
            "found_in": [f"state/{d.location}" for d in good][:8],
            "also_in": sorted(
                {
                    f"{d.kind}: state/{d.location.split('#')[0].split('[')[0]}"
                    for d in docs
                    if d not in good
                }
            )[:10],
        }
        present_out.append(rec)
    absent_out = []
    for n in ledger.absent:
        docs = hits.get(n.phrase, [])
        absent_out.append(
            {
                "phrase": n.phrase,
                "why": n.why,
                "note": n.note,
                "in_openclaw_files": bool(docs),
                "found_kinds": sorted({d.kind for d in docs}),
                "found_in": [f"state/{d.location}" for d in docs][:10],
                "found_in_count": len(docs),
            }
        )
    return present_out, absent_out, problems


def write_manifest(fixture_dir: Path, sb: Sandbox, ledger: S.Ledger, extra: dict) -> dict:
    state = fixture_dir / "state"
    present, absent, problems = verify_fixture(fixture_dir, ledger)
    manifest = {
        "fixture": fixture_dir.name,
        "openclaw_version": extra.pop("openclaw_version"),
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": "tools/openclaw_fixtures/make.py",
        "node": subprocess.run(
            [str(sb.install.node), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "state_dir": "state",
        "sandbox_state_dir": str(sb.state_dir),
        "sandbox_note": "absolute paths inside openclaw.json, sessions.json and transcripts"
        " point at sandbox_state_dir; map that prefix to this fixture's state/ directory",
        **extra,
        "agents": describe_agents(state, sb.state_dir),
        "telegram": {
            "person": {"id": S.PERSON.id, "name": S.PERSON_NAME, "username": S.PERSON.username},
            "bot_username": S.BOT_USERNAME,
            "api_root_in_config": "http://127.0.0.1:<port of the fake>",
        },
        "delivery_mirror_rows": delivery_mirror_rows(state),
        "present": present,
        "absent": absent,
        "not_produced": ledger.not_produced,
        "verification": {"zstd": verify.zstd_backend(), "problems": problems, "ok": not problems},
        "steps": ledger.steps,
    }
    wrapper_phrases = {"untrusted metadata", "⟦openclaw:ctx⟧"}
    if not any(a["in_openclaw_files"] for a in absent if a["phrase"] in wrapper_phrases):
        manifest["not_produced"].append(
            {
                "what": "metadata wrapper (`Sender (untrusted metadata):` /"
                " `Conversation info ...: ⟦openclaw:ctx⟧`) inside stored user text",
                "why": "this version stores the person's text bare; the wrapper goes to the"
                " model only, in the prompt (2026.9: prefixed to the user text; 2026.7.1: a"
                " separate runtime-context user message) and is not "
                "persisted, so there is nothing for `doctor --fix` to relabel either",
            }
        )
    leftovers = [str(p) for p in state.rglob("*") if p.name.endswith(("-wal", "-shm", "-journal"))]
    if leftovers:
        manifest["verification"]["problems"].append(
            f"WAL/journal files in the fixture: {leftovers}"
        )
        manifest["verification"]["ok"] = False
    (fixture_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


# =========================================================================== modes
def run_version(
    version: str,
    out: Path,
    work: Path,
    cache: Path,
    keep_all: bool,
    upgrade_to: str | None = None,
    upgrade_out: Path | None = None,
) -> list[dict]:
    inst = ensure_openclaw(version, cache)
    name = f"v{version}"
    root = work / name
    if root.exists():
        shutil.rmtree(root)
    sb = Sandbox(root, inst, name=name)
    ledger = S.Ledger()
    caps = detect_caps(sb)
    ledger.step("capabilities", **asdict(caps))
    drv = Driver(sb, caps, ledger)
    manifests = []
    try:
        drv.setup()
        drv.run()
    except Exception:
        traceback.print_exc()
        print(f"\nFAILED; sandbox kept at {root} (logs in {sb.logs})", file=sys.stderr)
        drv.shutdown()
        raise
    drv.shutdown()
    ledger.step("gateway stopped")
    save_ledger(root / "ledger.json", ledger)
    ck = checkpoint_sqlite(sb.state_dir)
    ledger.step("sqlite checkpointed", dbs=[c["db"] for c in ck])
    exp = export_state(sb, out, keep_all)
    m = write_manifest(
        out,
        sb,
        ledger,
        {
            "openclaw_version": version,
            "scenario": "full",
            "layout": "sqlite" if caps.sqlite_sessions else "jsonl",
            "capabilities": asdict(caps),
            "sqlite_checkpoint": ck,
            **exp,
        },
    )
    report(out, m)
    manifests.append(m)

    if upgrade_to:
        up_inst = ensure_openclaw(upgrade_to, cache)
        # The upgrade runs in place: config and sessions.json hold absolute paths into this
        # sandbox, so a copy elsewhere would make doctor migrate the original instead.
        sb.install = up_inst
        ledger.step("upgrade: switch to", version=upgrade_to)
        proc = sb.run("doctor", "--fix", "--non-interactive", timeout=900, check=False)
        (sb.logs / "doctor.out").write_text(proc.stdout + "\n" + proc.stderr)
        ledger.step(
            "doctor --fix --non-interactive",
            exit=proc.returncode,
            output=f"{sb.logs / 'doctor.out'}",
        )
        if proc.returncode != 0:
            raise CommandFailed(["openclaw", "doctor", "--fix", "--non-interactive"], proc)
        ck2 = checkpoint_sqlite(sb.state_dir)
        ledger.step("sqlite checkpointed", dbs=[c["db"] for c in ck2])
        # Upgraded files: present phrases now live in the SQLite DB (live) and in the
        # import archive (the old JSONL, renamed).
        up_ledger = S.Ledger(
            present=[_upgraded_expect(e) for e in ledger.present],
            absent=list(ledger.absent),
            steps=list(ledger.steps),
            not_produced=list(ledger.not_produced),
        )
        assert upgrade_out is not None
        save_ledger(root / "ledger-upgraded.json", up_ledger)
        exp2 = export_state(sb, upgrade_out, keep_all)
        m2 = write_manifest(
            upgrade_out,
            sb,
            up_ledger,
            {
                "openclaw_version": upgrade_to,
                "scenario": f"home written by {version}, then"
                f" `openclaw doctor --fix --non-interactive` of {upgrade_to}",
                "upgraded_from": version,
                "layout": "sqlite",
                "doctor_summary": doctor_summary(sb.logs / "doctor.out"),
                "sqlite_checkpoint": ck2,
                **exp2,
            },
        )
        report(upgrade_out, m2)
        manifests.append(m2)
    return manifests


def save_ledger(path: Path, ledger: S.Ledger) -> None:
    path.write_text(json.dumps(asdict(ledger), indent=1, ensure_ascii=False))


def load_ledger(path: Path) -> S.Ledger:
    d = json.loads(path.read_text())
    return S.Ledger(
        present=[S.Expect(**{**e, "kinds": tuple(e["kinds"])}) for e in d["present"]],
        absent=[S.Never(**n) for n in d["absent"]],
        steps=d["steps"],
        not_produced=d["not_produced"],
    )


def remanifest(fixture: Path, sandbox_root: Path, cache: Path) -> dict:
    """Rebuild fixture/manifest.json from the sandbox's ledger.json (no OpenClaw run)."""
    old = (
        json.loads((fixture / "manifest.json").read_text())
        if (fixture / "manifest.json").exists()
        else {}
    )
    ledger = load_ledger(
        sandbox_root / ("ledger-upgraded.json" if old.get("upgraded_from") else "ledger.json")
    )
    inst = ensure_openclaw(old.get("openclaw_version") or sandbox_root.name.lstrip("v"), cache)
    sb = Sandbox(sandbox_root, inst)
    keep = {
        k: v
        for k, v in old.items()
        if k
        in (
            "scenario",
            "upgraded_from",
            "layout",
            "capabilities",
            "sqlite_checkpoint",
            "trimmed",
            "doctor_summary",
        )
    }
    keep["trimmed"] = list(keep.get("trimmed") or []) + trim_trajectories(fixture / "state")
    m = write_manifest(fixture, sb, ledger, {"openclaw_version": inst.version, **keep})
    report(fixture, m)
    return m


def _upgraded_expect(e: S.Expect) -> S.Expect:
    kinds = e.kinds
    if e.kinds == ("archive",):
        kinds = ("archive", "transcript")
    return S.Expect(e.phrase, e.agent, e.where, kinds, e.session_key, e.path, e.entry_type)


def doctor_summary(path: Path) -> list[str]:
    """The doctor's notes about sessions/transcripts, box-drawing stripped."""
    keep = []
    for raw in path.read_text(errors="replace").splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw).strip(" │├╮╯┌└◇─")
        if re.search(
            r"(?i)session|transcript|jsonl|sqlite|agents\.|label|Legacy entries|import", line
        ):
            keep.append(line.strip())
    return keep[:80]


def report(out: Path, m: dict) -> None:
    size = du(out)
    v = m["verification"]
    print(
        f"\n== {out} ({size / 1e6:.2f} MB): present={len(m['present'])}"
        f" absent={len(m['absent'])} ok={v['ok']}"
    )
    for p in v["problems"]:
        print("   PROBLEM:", p)
    for n in m.get("not_produced") or []:
        print("   not produced:", n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--version", help="OpenClaw version to drive, e.g. 2026.9.6")
    ap.add_argument("--out", type=Path, help="fixture directory to (re)write")
    ap.add_argument(
        "--upgrade-to",
        help="after the scenario, run this version's `doctor --fix --non-interactive`"
        " over the home",
    )
    ap.add_argument("--upgrade-out", type=Path, help="fixture directory for the upgraded home")
    ap.add_argument(
        "--all",
        action="store_true",
        help="v2026.9.6, v2026.7.1 and v2026.7.1-upgraded-2026.9.6 under --out-root",
    )
    ap.add_argument("--out-root", type=Path, default=Path("tests/fixtures/openclaw"))
    ap.add_argument("--new-version", default="2026.9.6")
    ap.add_argument("--old-version", default="2026.7.1")
    ap.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help="where sandboxes live (wiped per run)"
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="node + openclaw installs")
    ap.add_argument(
        "--keep-all", action="store_true", help="do not trim caches/logs/.git from the export"
    )
    ap.add_argument(
        "--remanifest",
        type=Path,
        metavar="SANDBOX",
        help="only rebuild --out's manifest.json from SANDBOX/ledger.json"
        " (after changing the manifest code)",
    )
    a = ap.parse_args(argv)
    if a.remanifest:
        if not a.out:
            ap.error("--remanifest needs --out FIXTURE")
        return 0 if remanifest(a.out, a.remanifest, a.cache)["verification"]["ok"] else 1
    if a.all:
        run_version(a.new_version, a.out_root / f"v{a.new_version}", a.work, a.cache, a.keep_all)
        run_version(
            a.old_version,
            a.out_root / f"v{a.old_version}",
            a.work,
            a.cache,
            a.keep_all,
            upgrade_to=a.new_version,
            upgrade_out=a.out_root / f"v{a.old_version}-upgraded-{a.new_version}",
        )
        return 0
    if not a.version or not a.out:
        ap.error("--version and --out (or --all)")
    if a.upgrade_to and not a.upgrade_out:
        ap.error("--upgrade-to needs --upgrade-out")
    ms = run_version(a.version, a.out, a.work, a.cache, a.keep_all, a.upgrade_to, a.upgrade_out)
    return 0 if all(m["verification"]["ok"] for m in ms) else 1


if __name__ == "__main__":
    sys.exit(main())
