#!/usr/bin/env python3
"""MCP round trip: a real OpenClaw agent recalls a fact from openclaw-infra's memory over MCP.

    python3 tools/openclaw_fixtures/mcp_roundtrip.py
    python3 tools/openclaw_fixtures/mcp_roundtrip.py --version 2026.9.6 --infra-bin .venv/bin

Every step is a real command of OpenClaw (npm, run offline against the scripted fake model on
127.0.0.1) or of this project (``infrad``, ``infractl`` from ``--infra-bin``):

1. Node 24 + OpenClaw installed into the cache (once); ``openclaw onboard --non-interactive``
   with a custom provider pointing at the fake model, gateway token auth on loopback;
   ``openclaw gateway run``.
2. ``infrad`` started on that OpenClaw home (its own state directory and a socket under /tmp);
   one ``openclaw agent --agent <id> --message`` turn tells the agent a fact; the script waits
   until ``infractl memory search`` finds it (the ingest job reads OpenClaw's SQLite).
3. A wrapper script runs the sandbox's ``openclaw`` with the sandbox's environment;
   ``infractl openclaw connect --openclaw-command <wrapper>`` (``--dry-run`` first), then
   ``infractl openclaw status --probe``.
4. ``openclaw agent --agent <id> --session-key recall --message "<question> <marker>"``, with
   OpenClaw's default tool surface (Tool Search: MCP tools are not offered by name but found
   in its catalog): the fake model calls ``tool_search``, then ``tool_call`` with the id of
   ``infra-<id>__memory_search`` it found, then answers with what the memory tool returned.
   Then ``openclaw config set tools.toolSearch false`` and the same question in session
   ``recall-direct``: every schema is offered and the model calls
   ``infra-<id>__memory_search`` by its name.
5. The transcript OpenClaw wrote (``transcript_events`` of the agent's SQLite, zstd rows
   decompressed) is read back and printed: user turn, tool call, tool result, reply.

Exit status 0 when the tool result holds the fact and its source (agent, session id, entry
ids) and the reply repeats it; 1 when it does not; 2 for bad usage. The sandbox is left in
``--work`` for reading (``logs/``: cli.log, gateway.log, openclaw.log, fake-model.jsonl,
infrad.log, infractl.log) and wiped at the next run. Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import scenario as S  # noqa: E402
import verify  # noqa: E402
from fake_model import FakeModel, RequestContext, Rule, Text, ToolCall  # noqa: E402
from make import agent_workspace, default_agent_id  # noqa: E402
from sandbox import DEFAULT_CACHE, CommandFailed, Sandbox, ensure_openclaw, free_port  # noqa: E402

DEFAULT_WORK = Path(
    os.environ.get("OPENCLAW_FIXTURES_WORK") or Path.home() / ".cache/openclaw-fixtures/sandboxes"
)
FACT_CODE = "8842-kestrel"
FACT = f"The storage unit code is {FACT_CODE}"
TELL = f"Please keep this for later: {FACT}."
TELL_REPLY = "Noted: I will remember the storage unit code."
QUERY = "storage unit code"
SERVER_PREFIX = "infra-"
#: What the model searches OpenClaw's tool catalog for (Tool Search, the default surface).
CATALOG_QUERY = "search memory of past conversations and notes"


@dataclass(frozen=True)
class Ask:
    """One recall turn: its session, the phrase that picks the fake model's rule, the route."""

    session: str
    marker: str
    #: "tool-search": OpenClaw's default (``tools.toolSearch`` unset): MCP tools are deferred
    #: behind tool_search / tool_call. "direct": ``tools.toolSearch: false``, every schema
    #: offered and the MCP tool called by its own name.
    route: str

    @property
    def text(self) -> str:
        return f"What was the storage unit code again? {self.marker}"


ASKS = (
    Ask("recall", "recall-heron-13", "tool-search"),
    Ask("recall-direct", "recall-plover-58", "direct"),
)


@dataclass
class Report:
    """What the run did, for the closing summary."""

    timings: list[tuple[str, float]] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def timed(self, what: str, started: float) -> None:
        took = time.monotonic() - started
        self.timings.append((what, took))
        print(f"   ({what}: {took:.1f}s)", flush=True)


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(argv: list[str], out: str) -> None:
    print(f"$ {shlex.join(argv)}")
    for line in out.rstrip().splitlines():
        print(f"  {line}")


# =========================================================================== the fake model
def recall_answer(ctx: RequestContext) -> str:
    """The scripted reply after the memory tool answered: built from its result only."""
    result = ctx.last_tool_result
    code = re.search(r"storage unit code is ([0-9A-Za-z-]+)", result)
    if code is None:
        return f"My memory has nothing on the storage unit code (the tool said: {result[:300]})"
    source = re.search(r"\[([^\]]*session_id[^\]]*)\]", result)
    where = source.group(1) if source else "no source given"
    return f"The storage unit code is {code.group(1)} (from memory: {where})."


def catalog_id(server: str) -> Callable[[RequestContext], dict]:
    """tool_call's arguments: the memory tool's id, as tool_search returned it."""

    def arguments(ctx: RequestContext) -> dict:
        wanted = f"{server}__memory_search"
        found = re.findall(r'"id"\s*:\s*"([^"]+)"', ctx.last_tool_result)
        ids = [i for i in found if wanted in i] or [wanted]  # tool_call also takes the name
        return {"id": ids[0], "args": {"query": QUERY, "k": 3}}

    return arguments


def make_fake_model(log_path: Path, server: str) -> FakeModel:
    rules = [Rule(FACT_CODE, [Text(TELL_REPLY)], name="tell")]
    for ask in ASKS:
        if ask.route == "tool-search":
            steps = [
                ToolCall("tool_search", {"query": CATALOG_QUERY, "limit": 5}),
                ToolCall("tool_call", catalog_id(server)),
                Text(recall_answer),
            ]
        else:
            # The full MCP name: OpenClaw has a memory_search tool of its own.
            steps = [
                ToolCall(f"{server}__memory_search", {"query": QUERY, "k": 3}),
                Text(recall_answer),
            ]
        rules.append(Rule(ask.marker, steps, name=f"{ask.route} {ask.session}"))
    return FakeModel(rules, log_path=log_path)


# =========================================================================== the daemon
class Infra:
    """``infrad`` on the sandbox's OpenClaw home, and ``infractl`` against its socket."""

    def __init__(self, bin_dir: Path, root: Path, sb: Sandbox) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.sb = sb
        self.home = root / "infra-home"
        self.state = root / "infra-state"
        self.env_file = root / "infra.env"
        # AF_UNIX paths are limited to ~100 bytes: a short directory of our own under /tmp.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="mcprt-", dir="/tmp"))
        self.socket = self.sock_dir / "infrad.sock"
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    def env(self) -> dict:
        return {
            "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "TMPDIR": str(self.sb.tmp),
        }

    def daemon_env(self) -> dict:
        return {
            **self.env(),
            "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(self.sb.state_dir),
            "OPENCLAW_INFRA_STATE_DIR": str(self.state),
            "OPENCLAW_INFRA_SOCKET_PATH": str(self.socket),
            "OPENCLAW_INFRA_TIMEZONE": "UTC",
            # Only ingest (and health) matter here; the rest would run on their own clocks.
            **{
                f"OPENCLAW_INFRA_JOBS__{job}__ENABLED": "false"
                for job in (
                    "SUMMARIZE",
                    "SYNC",
                    "SYNTHESIZE",
                    "BACKUP",
                    "RESTORE_DRILL",
                    "RETENTION",
                )
            },
        }

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("# settings come from the environment\n")
        self._log_fh = (self.sb.logs / "infrad.log").open("a", encoding="utf-8")
        self.proc = subprocess.Popen(
            [str(self.bin_dir / "infrad"), "--env-file", str(self.env_file)],
            env=self.daemon_env(),
            cwd=str(self.root),
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"infrad exited; see {self.sb.logs / 'infrad.log'}")
            done = self.ctl("status", "--json", check=False, quiet=True)
            if done.returncode == 0:
                return json.loads(done.stdout)
            time.sleep(1)
        raise TimeoutError(f"infrad not answering on {self.socket} after {timeout}s")

    def ctl(
        self, *args: str, check: bool = True, quiet: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        argv = [str(self.bin_dir / "infractl"), "--socket", str(self.socket), *args]
        t0 = time.monotonic()
        done = subprocess.run(
            argv,
            env=self.env(),
            cwd=str(self.root),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if not quiet or done.returncode != 0:
            with (self.sb.logs / "infractl.log").open("a", encoding="utf-8") as fh:
                fh.write(
                    f"\n$ {shlex.join(argv)}\n[exit {done.returncode} in"
                    f" {time.monotonic() - t0:.1f}s]\n--- stdout\n{done.stdout}\n"
                    f"--- stderr\n{done.stderr}\n"
                )
        if check and done.returncode != 0:
            raise CommandFailed(argv, done)
        return done

    def stop(self, timeout: float = 60) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def write_wrapper(sb: Sandbox, path: Path) -> Path:
    """An ``openclaw`` command for infractl: the sandbox's OpenClaw, its environment only."""
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(sb.env().items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        f"# OpenClaw {sb.install.version} of the sandbox {sb.root}, with its environment only.\n"
        f"cd {shlex.quote(str(sb.home))} || exit 1\n"
        f"exec env -i {assignments} {shlex.quote(str(sb.install.node))}"
        f' {shlex.quote(str(sb.install.entry))} "$@"\n',
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


# =========================================================================== the transcript
def transcript(state_dir: Path, agent: str, session_key: str) -> tuple[str, list[dict]]:
    """(session id, events) of one session, from the agent's SQLite (zstd rows decompressed)."""
    db = state_dir / "agents" / agent / "agent" / "openclaw-agent.sqlite"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT current_session_id FROM session_nodes WHERE session_key = ?", (session_key,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no session {session_key} in {db}")
        sid = row[0]
        events = []
        for ej, ez in con.execute(
            "SELECT event_json, event_zstd FROM transcript_events WHERE session_id = ?"
            " ORDER BY seq",
            (sid,),
        ):
            text = ej if ej is not None else verify.zstd_decompress(ez).decode("utf-8")
            events.append(json.loads(text))
    finally:
        con.close()
    return sid, events


def messages(events: list[dict]) -> list[dict]:
    """The message entries, each with its entry ``id``."""
    return [
        {**e["message"], "entry_id": e.get("id")}
        for e in events
        if e.get("type") == "message" and isinstance(e.get("message"), dict)
    ]


def text_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(p.get("text", "") for p in parts if p.get("type") == "text")


ENVELOPE = re.compile(
    r"<<<EXTERNAL_UNTRUSTED_CONTENT[^>]*>>>\nSource: [^\n]*\n---\n(.*)\n<<<END_EXTERNAL", re.S
)


def unwrap(text: str) -> str:
    """The MCP tool's own text inside a tool_call result (OpenClaw wraps it as untrusted JSON)."""
    body = ENVELOPE.search(text)
    if body is None:
        return text
    try:
        content = json.loads(body.group(1))["result"]["content"]
    except (ValueError, KeyError, TypeError):
        return text
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict))


def listing(text: str) -> list[str]:
    """The numbered lines of infractl mcp's compact search text ("1. [source] snippet")."""
    return [line for line in unwrap(text).splitlines() if re.match(r"\d+\. \[", line)]


def structured(details: object) -> dict | None:
    """The MCP ``structuredContent`` inside a toolResult's details (nested under tool_call)."""
    if isinstance(details, dict):
        if isinstance(details.get("structuredContent"), dict):
            return details["structuredContent"]
        for value in details.values():
            found = structured(value)
            if found is not None:
                return found
    return None


def tool_calls(message: dict) -> list[dict]:
    content = message.get("content")
    parts = content if isinstance(content, list) else []
    return [p for p in parts if p.get("type") == "toolCall"]


# =========================================================================== the run
def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")


def onboard(sb: Sandbox, fm: FakeModel) -> str:
    port = free_port(span=10)
    sb.gateway_port = port
    sb.run(
        "onboard",
        "--non-interactive",
        "--accept-risk",
        "--skip-health",
        "--auth-choice",
        "custom-api-key",
        "--custom-base-url",
        fm.base_url,
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
        "--gateway-bind",
        "loopback",
        "--skip-daemon",
        "--skip-skills",
        "--skip-search",
        "--skip-channels",
        "--skip-ui",
        "--agent-name",
        S.DEFAULT_AGENT_NAME,
        timeout=300,
    )
    sets = [
        {"path": "update.checkOnStart", "value": False},
        {"path": "logging.file", "value": str(sb.logs / "openclaw.log")},
    ]
    sb.run("config", "set", "--batch-json", json.dumps(sets))
    cfg = json.loads((sb.state_dir / "openclaw.json").read_text())
    return default_agent_id(cfg)


def run(args: argparse.Namespace) -> int:
    rep = Report()
    t_all = time.monotonic()
    bin_dir = Path(args.infra_bin).resolve()
    for exe in ("infrad", "infractl"):
        if not (bin_dir / exe).exists():
            print(
                f"--infra-bin: no {exe} in {bin_dir} (pip install -e . into a venv first)",
                file=sys.stderr,
            )
            return 2

    say(f"OpenClaw {args.version} (npm, cached in {args.cache})")
    t0 = time.monotonic()
    inst = ensure_openclaw(args.version, Path(args.cache))
    node_version = subprocess.run(
        [str(inst.node), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"   {inst.package_dir} on node {node_version}")
    rep.timed("install check", t0)

    root = Path(args.work).resolve() / f"mcp-roundtrip-{args.version}"
    if root.exists():
        shutil.rmtree(root)
    sb = Sandbox(root, inst)
    agent = "wren"  # what --agent-name Wren makes; checked after onboarding
    fm = make_fake_model(sb.logs / "fake-model.jsonl", f"{SERVER_PREFIX}{agent}").start()
    infra = Infra(bin_dir, root, sb)
    try:
        say(f"onboard the sandbox {root} (model {fm.base_url}, gateway on loopback)")
        t0 = time.monotonic()
        got = onboard(sb, fm)
        if got != agent:
            raise RuntimeError(f"onboarding made the agent {got!r}, expected {agent!r}")
        workspace = agent_workspace(
            json.loads((sb.state_dir / "openclaw.json").read_text()), agent, sb.state_dir
        )
        print(f"   agent {agent}, workspace {workspace}")
        rep.timed("onboard", t0)

        say("openclaw gateway run")
        t0 = time.monotonic()
        sb.start_gateway()
        sb.wait_gateway_ready()
        rep.timed("gateway start", t0)

        say(f"infrad on {sb.state_dir} (socket {infra.socket})")
        t0 = time.monotonic()
        infra.start()
        status = infra.wait_ready()
        print(f"   infrad {status.get('version')} pid {status.get('pid')}")
        rep.timed("infrad start", t0)

        say("tell the agent a fact, in an OpenClaw CLI turn")
        t0 = time.monotonic()
        argv = ["agent", "--agent", agent, "--message", TELL]
        done = sb.run(*argv, timeout=300)
        show(["openclaw", *argv], done.stdout)
        rep.timed("fact turn", t0)
        fact_sid, fact_events = transcript(sb.state_dir, agent, f"agent:{agent}:main")
        fact_entries = [m["entry_id"] for m in messages(fact_events)]
        rep.facts["fact_session"] = {"key": f"agent:{agent}:main", "id": fact_sid}

        say("wait until infrad's memory has it (ingest reads OpenClaw's SQLite)")
        t0 = time.monotonic()

        def found() -> dict | None:
            done = infra.ctl(
                "memory", "search", QUERY, "-k", "3", "--json", check=False, quiet=True
            )
            if done.returncode != 0:  # e.g. the store still opening; infractl.log has it
                return None
            hits = json.loads(done.stdout).get("results") or []
            return next((h for h in hits if FACT_CODE in h.get("text", "")), None)

        hit = wait_for(found, args.ingest_timeout, "the fact in `infractl memory search`")
        argv = ["memory", "search", QUERY, "-k", "3"]
        show(["infractl", "--socket", str(infra.socket), *argv], infra.ctl(*argv).stdout)
        rep.facts["ingest_hit"] = hit.get("source")
        rep.timed("fact found by infractl memory search", t0)

        say("register the MCP server with infractl openclaw connect")
        t0 = time.monotonic()
        wrapper = write_wrapper(sb, root / "bin" / "openclaw")
        print(f"   wrapper {wrapper}:")
        for line in wrapper.read_text().splitlines():
            print(f"   | {line[:200]}{' ...' if len(line) > 200 else ''}")
        oc = ["--openclaw-command", str(wrapper)]
        reloads = reload_count(sb)
        for words in (["connect", *oc, "--dry-run"], ["connect", *oc], ["status", *oc, "--probe"]):
            done = infra.ctl("openclaw", *words)
            show(["infractl", "--socket", str(infra.socket), "openclaw", *words], done.stdout)
            if words[0] == "status":
                rep.facts["status_probe"] = done.stdout.strip()
        rep.facts["mcp_servers"] = json.loads((sb.state_dir / "openclaw.json").read_text())["mcp"][
            "servers"
        ]
        wait_reload(sb, reloads, "mcp.servers")
        rep.timed("connect + status --probe", t0)

        for ask in ASKS:
            recall(sb, fm, agent, ask, fact_sid, fact_entries, rep)
    except Exception as exc:
        rep.problems.append(f"{type(exc).__name__}: {exc}")
        print(f"\nFAILED: {exc}", file=sys.stderr)
    finally:
        t0 = time.monotonic()
        infra.stop()
        sb.stop_gateway()
        fm.stop()
        rep.timed("shutdown", t0)
    rep.timings.append(("total", time.monotonic() - t_all))
    summarize(rep, args.version, node_version, root)
    return 1 if rep.problems else 0


RELOADED = re.compile(r"\[reload\] config (?:hot reload applied|change applied)")


def reload_count(sb: Sandbox) -> int:
    return len(RELOADED.findall(sb.gateway_log_text()))


def wait_reload(sb: Sandbox, before: int, what: str, timeout: float = 90) -> None:
    """Wait for the gateway's file watcher to apply a config change (its log says so)."""
    wait_for(lambda: reload_count(sb) > before, timeout, f"the gateway to apply {what}", 0.5)


def recall(
    sb: Sandbox,
    fm: FakeModel,
    agent: str,
    ask: Ask,
    fact_sid: str,
    fact_entries: list[str],
    rep: Report,
) -> None:
    if ask.route == "direct":
        say("the same with Tool Search off: every tool schema offered to the model directly")
        reloads = reload_count(sb)
        argv = ["config", "set", "tools.toolSearch", "false", "--strict-json"]
        show(["openclaw", *argv], sb.run(*argv).stdout)
        wait_reload(sb, reloads, "tools.toolSearch")
    else:
        say(
            "ask the agent in a new session; OpenClaw's default Tool Search: the model finds"
            " the MCP tool with tool_search and calls it with tool_call"
        )
    t0 = time.monotonic()
    argv = ["agent", "--agent", agent, "--session-key", ask.session, "--message", ask.text]
    show(["openclaw", *argv], sb.run(*argv, timeout=300).stdout)
    rep.timed(f"recall turn ({ask.route})", t0)
    rule = f"{ask.route} {ask.session}"
    offered = {
        (t.get("function") or {}).get("name")
        for r in fm.requests
        if str(r.get("chosen", "")).startswith(rule)
        for t in (r.get("body") or {}).get("tools") or []
    }
    turn = check_turn(sb, agent, ask, fact_sid, fact_entries, rep)
    turn["offered_mcp_tools"] = sorted(
        n for n in offered if isinstance(n, str) and n.startswith(SERVER_PREFIX)
    )
    turn["offered_tools"] = len(offered)
    rep.facts.setdefault("turns", []).append(turn)


def check_turn(
    sb: Sandbox, agent: str, ask: Ask, fact_sid: str, fact_entries: list[str], rep: Report
) -> dict:
    """Print the turn as OpenClaw stored it; record what is missing in ``rep.problems``."""
    key = f"agent:{agent}:{ask.session}"
    sid, events = transcript(sb.state_dir, agent, key)
    db = sb.state_dir / "agents" / agent / "agent" / "openclaw-agent.sqlite"
    print(f"   transcript: {db} transcript_events, session {key} ({sid}), {len(events)} events")
    tool = f"{SERVER_PREFIX}{agent}__memory_search"
    turn: dict = {"route": ask.route, "session_key": key, "session_id": sid, "calls": []}
    memory_call = memory_result = None
    calls: dict[str, dict] = {}
    for m in messages(events):
        role = m.get("role")
        if role == "user":
            turn.setdefault("user", text_of(m))
            print(f"   user [{m['entry_id']}]: {text_of(m)}")
        elif role == "assistant" and tool_calls(m):
            for c in tool_calls(m):
                calls[c.get("id")] = c
                print(f"   assistant toolCall: {c.get('name')} {json.dumps(c.get('arguments'))}")
                turn["calls"].append({"name": c.get("name"), "arguments": c.get("arguments")})
                target = c.get("name")
                if target == "tool_call":
                    target = str((c.get("arguments") or {}).get("id", ""))
                if target.endswith(tool) and memory_call is None:
                    memory_call = c
        elif role == "assistant":
            turn["reply"] = text_of(m)
            print(f"   assistant: {text_of(m)}")
        elif role == "toolResult":
            call = calls.get(m.get("toolCallId")) or {}
            print(f"   toolResult of {call.get('name')} (isError={m.get('isError')}):")
            for line in text_of(m).splitlines():
                print(f"     | {line}")
            if memory_call is not None and call is memory_call:
                memory_result = m
            if call.get("name") == "tool_search" and tool in text_of(m):
                turn["listed_by_tool_search"] = True
    if ask.route == "tool-search" and not turn.get("listed_by_tool_search"):
        rep.problems.append(f"{ask.route}: tool_search did not list {tool}")
    if memory_call is None:
        rep.problems.append(f"{ask.route}: no call of {tool} in {key}")
        return turn
    if memory_result is None:
        rep.problems.append(f"{ask.route}: no toolResult for the {tool} call in {key}")
        return turn
    text = text_of(memory_result)
    turn["tool_result"] = text
    turn["tool_result_is_error"] = memory_result.get("isError")
    # The hit as the server sent it (OpenClaw keeps the structured content in the details)...
    results = (structured(memory_result.get("details")) or {}).get("results") or []
    hit = next((r for r in results if FACT_CODE in str(r.get("text"))), None)
    source = (hit or {}).get("source") or {}
    entries = source.get("entry_ids") or []
    turn["fact_hit_source"] = source
    # ...and what the model read (the tool result's text): the fact with where it came from.
    wanted = {
        f"a hit holding the fact {FACT_CODE!r}": hit is not None,
        f"the hit's agent {agent}": source.get("agent") == agent,
        f"the hit's session id {fact_sid}": source.get("session_id") == fact_sid,
        "the hit's entry ids, all of the fact's session": bool(entries)
        and set(entries) <= set(fact_entries),
        "the fact in the text the model read": FACT_CODE in text,
        "the session id in the text the model read": fact_sid in text,
        "an entry id in the text the model read": any(e in text for e in entries),
    }
    for what, ok in wanted.items():
        if not ok:
            rep.problems.append(f"{ask.route}: the tool result lacks {what}")
    if FACT_CODE not in turn.get("reply", ""):
        rep.problems.append(f"{ask.route}: the agent's reply does not repeat the fact")
    return turn


def summarize(rep: Report, version: str, node: str, root: Path) -> None:
    fact = rep.facts.get("fact_session") or {}
    times = dict(rep.timings)
    lines = [
        "",
        "== summary",
        f"MCP round trip, OpenClaw {version} (npm, node {node}) driven offline,"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:",
        f"- fact told in {fact.get('key')} (session {fact.get('id')}); in infrad's memory"
        f" {times.get('fact found by infractl memory search', 0):.1f}s after the turn",
        f"- `infractl openclaw connect` registered"
        f" {', '.join(rep.facts.get('mcp_servers') or {}) or 'nothing'};"
        f" `status --probe`: {rep.facts.get('status_probe')}",
    ]
    for turn in rep.facts.get("turns") or []:
        calls = "; ".join(f"{c['name']} {json.dumps(c['arguments'])}" for c in turn["calls"])
        hits = listing(turn.get("tool_result") or "")
        result = hits[0] if hits else (turn.get("tool_result") or "")[:300]
        lines += [
            f"- {turn['route']} ({turn['offered_tools']} tools offered, MCP ones directly:"
            f" {', '.join(turn['offered_mcp_tools']) or 'none'}), {turn['session_key']}:",
            f"  user: {turn.get('user')!r}",
            f"  calls: {calls}",
            f"  memory tool result ({len(hits)} hits), first: {result}",
            f"  reply: {turn.get('reply')!r}",
        ]
    lines += [
        "- timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in rep.timings),
        f"- sandbox and logs: {root}",
        "- result: " + ("OK" if not rep.problems else "FAILED: " + "; ".join(rep.problems)),
    ]
    print("\n".join(lines))
    with contextlib.suppress(OSError):
        (root / "logs" / "summary.json").write_text(
            json.dumps({"timings": rep.timings, **rep.facts, "problems": rep.problems}, indent=2)
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", default="2026.9.6", help="OpenClaw version (default 2026.9.6)")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="Node + OpenClaw installs")
    ap.add_argument("--work", default=str(DEFAULT_WORK), help="where the sandbox goes")
    ap.add_argument(
        "--infra-bin",
        default=str(REPO / ".venv" / "bin"),
        help="directory holding infrad and infractl (default: the repository's .venv/bin)",
    )
    ap.add_argument(
        "--ingest-timeout",
        type=float,
        default=180,
        help="seconds to wait for the fact in the memory (default 180)",
    )
    args = ap.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
