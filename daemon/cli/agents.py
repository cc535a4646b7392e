"""``infractl mcp`` and ``infractl openclaw connect|disconnect|status``: the memory for agents.

``mcp`` runs the MCP server (``daemon.mcp``) over stdio for one agent. ``openclaw connect``
registers one such server per agent with OpenClaw through OpenClaw's own command line (``openclaw
mcp set``), never by editing its configuration: OpenClaw tells a server nothing about the agent
calling it, so each agent gets a server of its own (``infra-<agent>``) and is kept from the
others' (``tools.deny``, set with ``openclaw config set``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daemon.cli.common import call, command, emit, group
from daemon.errors import BadRequest, NotConfigured, Unavailable
from daemon.paths import client_socket_path

SERVER_PREFIX = "infra-"
#: How long one ``openclaw`` command may take (it starts Node.js, and may ask the gateway).
OPENCLAW_TIMEOUT = 60.0


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    p = command(
        sub,
        "mcp",
        cmd_mcp,
        "serve the memory to one agent as MCP tools over stdin/stdout (what `infractl"
        " openclaw connect` registers with OpenClaw)",
        "infractl mcp --agent main",
        parents=[],
    )
    p.add_argument("--agent", help="the agent this server is for (its id in OpenClaw)")
    openclaw = group(
        sub,
        "openclaw",
        "give OpenClaw's agents the memory, as MCP tools",
        ("infractl openclaw connect --dry-run", "infractl openclaw status --probe"),
    )
    actions: list[tuple[str, Handler, str, tuple[str, ...]]] = [
        (
            "connect",
            cmd_connect,
            "register the memory server with OpenClaw, one per agent",
            ("infractl openclaw connect --dry-run", "infractl openclaw connect --agent main"),
        ),
        (
            "disconnect",
            cmd_disconnect,
            "remove what connect registered",
            ("infractl openclaw disconnect",),
        ),
        (
            "status",
            cmd_status,
            "whether OpenClaw knows the servers (and, with --probe, runs them)",
            ("infractl openclaw status --probe",),
        ),
    ]
    for name, handler, text, example in actions:
        p = command(openclaw, name, handler, text, example, parents=[out])
        p.add_argument(
            "--agent", action="append", metavar="ID", help="this agent only (repeat); default: all"
        )
        p.add_argument(
            "--openclaw-command",
            default="openclaw",
            metavar="PATH",
            help="OpenClaw's command line (default: openclaw, found on PATH)",
        )
        if name != "status":
            p.add_argument("--dry-run", action="store_true", help="print the commands, run none")
        else:
            p.add_argument("--probe", action="store_true", help="also start each server once")


def cmd_mcp(args: argparse.Namespace) -> int:
    from daemon.mcp.server import AGENT_ID, serve  # the MCP SDK takes half a second to import

    if args.agent is not None and not AGENT_ID.fullmatch(args.agent):
        raise BadRequest(f"--agent {args.agent!r}: not an agent id (lower-case letters, digits)")
    return serve(_socket(args), args.agent)


def cmd_connect(args: argparse.Namespace) -> int:
    agents = _agents(args)
    plan = _connect_plan(args, agents, _denied(args, agents))
    return _carry_out(args, plan, f"connected {len(agents)} agent(s): {', '.join(agents)}")


def cmd_disconnect(args: argparse.Namespace) -> int:
    agents = _agents(args)
    registered = set(_servers(args))
    plan = [
        _openclaw(args, "mcp", "unset", _server(agent))
        for agent in agents
        if _server(agent) in registered
    ]
    for agent, denied in _denied(args, agents).items():
        kept = [d for d in denied if not d.startswith(SERVER_PREFIX)]
        if kept != denied:
            plan.append(_deny(args, agent, kept))
    return _carry_out(args, plan, f"disconnected {', '.join(agents)}")


def cmd_status(args: argparse.Namespace) -> int:
    agents = _agents(args)
    known = _servers(args)
    rows = []
    for agent in agents:
        entry = known.get(_server(agent))
        row: dict[str, Any] = {"agent": agent, "server": _server(agent), "registered": bool(entry)}
        if entry is not None and args.probe:
            probed = _run_json(args, "mcp", "probe", _server(agent), "--json")
            row["tools"] = (probed.get("servers") or {}).get(_server(agent), {}).get("tools")
        rows.append(row)

    def render(data: list[dict[str, Any]]) -> None:
        for row in data:
            state = "registered" if row["registered"] else "not registered"
            tools = f", {row['tools']} tools" if "tools" in row else ""
            print(f"{row['agent']}: {row['server']} {state}{tools}")
        if not all(r["registered"] for r in data):
            print("run `infractl openclaw connect` to register the missing ones")

    emit(args, rows, render)
    return 0 if all(r["registered"] for r in rows) else 1


# --- what to run -----------------------------------------------------------------------------


def _connect_plan(
    args: argparse.Namespace, agents: list[str], denied: dict[str, list[str]]
) -> list[list[str]]:
    command = _infractl()
    socket = str(_socket(args))
    plan = []
    for agent in agents:
        server = {
            "command": command[0],
            "args": [*command[1:], "--socket", socket, "mcp", "--agent", agent],
        }
        plan.append(_openclaw(args, "mcp", "set", _server(agent), json.dumps(server)))
    for agent in agents:
        others = [f"{_server(a)}__*" for a in agents if a != agent]
        current = denied.get(agent, [])
        wanted = [d for d in current if not d.startswith(SERVER_PREFIX)] + others
        if sorted(wanted) != sorted(current):
            plan.append(_deny(args, agent, wanted))
    return plan


def _deny(args: argparse.Namespace, agent: str, patterns: list[str]) -> list[str]:
    path = f"agents.entries.{agent}.tools.deny"
    if not patterns:
        return _openclaw(args, "config", "unset", path)
    return _openclaw(args, "config", "set", path, json.dumps(patterns), "--strict-json")


def _carry_out(args: argparse.Namespace, plan: list[list[str]], done: str) -> int:
    if args.dry_run:
        emit(args, {"commands": plan}, lambda d: print("\n".join(_shell(c) for c in d["commands"])))
        return 0
    for argv in plan:
        _run(argv)
    emit(args, {"ran": plan}, lambda d: print(done))
    return 0


def _agents(args: argparse.Namespace) -> list[str]:
    """The agents asked for, else every agent the daemon finds in OpenClaw's home."""
    known = [a["id"] for a in call(args, "agents")["agents"]]
    asked = args.agent or known
    unknown = sorted(set(asked) - set(known))
    if unknown:
        raise BadRequest(
            f"--agent: no agent {', '.join(unknown)}; OpenClaw knows {', '.join(known)}"
        )
    return list(dict.fromkeys(asked))


def _servers(args: argparse.Namespace) -> dict[str, Any]:
    listed = _run_json(args, "mcp", "list", "--json")
    servers = listed.get("servers", listed) if isinstance(listed, dict) else {}
    return {k: v for k, v in servers.items() if k.startswith(SERVER_PREFIX)}


def _denied(args: argparse.Namespace, agents: Sequence[str]) -> dict[str, list[str]]:
    found = {}
    for agent in agents:
        value = _run_json(
            args, "config", "get", f"agents.entries.{agent}.tools.deny", "--json", missing=[]
        )
        found[agent] = [str(v) for v in value] if isinstance(value, list) else []
    return found


def _openclaw(args: argparse.Namespace, *words: str) -> list[str]:
    return [args.openclaw_command, *words]


def _run_json(args: argparse.Namespace, *words: str, missing: Any = None) -> Any:
    done = _run(_openclaw(args, *words), check=missing is None)
    if done.returncode != 0:
        return missing
    try:
        return json.loads(done.stdout or "null")
    except ValueError:
        raise Unavailable(f"`{_shell(_openclaw(args, *words))}` printed no JSON") from None


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=OPENCLAW_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=_child_environment(),
            check=False,
        )
    except FileNotFoundError:
        raise NotConfigured(
            f"{argv[0]}: command not found; install OpenClaw or pass --openclaw-command"
        ) from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`{_shell(argv)}` did not finish in {OPENCLAW_TIMEOUT:g}s") from None
    if check and done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split())[-300:]
        raise Unavailable(f"`{_shell(argv)}` failed ({done.returncode}): {said}")
    return done


def _child_environment() -> dict[str, str]:
    """OpenClaw's command line needs OpenClaw's variables, never the daemon's secrets."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_INFRA_")}


def _server(agent: str) -> str:
    return f"{SERVER_PREFIX}{agent}"


def _socket(args: argparse.Namespace) -> Path:
    return client_socket_path(args.socket, os.environ, args.env_file).absolute()


def _infractl() -> list[str]:
    """This infractl, by an absolute path that works from any working directory."""
    script = Path(sys.argv[0])
    if script.name == "infractl" and script.exists():
        return [str(script.absolute())]
    return [sys.executable, "-m", "daemon.cli"]


def _shell(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(word) for word in argv)


Handler = Callable[[argparse.Namespace], int]
