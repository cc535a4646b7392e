"""``infractl signal add|list|resolve``, ``infractl priorities``, ``infractl mistake add|list``.

An agent's skill can call ``infractl signal add --from work --to main --kind request "..."``;
``--json`` gives it the stored signal (and whether it was new) to read back.
"""

from __future__ import annotations

import argparse
from typing import Any

from daemon.cli import args as check
from daemon.cli.common import call, clip, command, emit, group, note, span, table, when

KINDS = ("fact", "decision", "request", "warning")
PRIORITIES = ("low", "normal", "high", "urgent")
RULES = ("manual", "assistant_error", "tool_error", "user_correction")


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    signal = group(
        sub, "signal", "notes from one agent to others", "infractl signal list --agent main"
    )
    mistake = group(sub, "mistake", "the mistakes log", "infractl mistake list --since 7d")
    p = command(
        signal,
        "add",
        cmd_signal_add,
        "send a signal from one agent to others",
        'infractl signal add --from work --to main --kind request "Book the Lisbon flights"',
        parents=[out],
    )
    p.add_argument("text", type=check.text(2000), help="what the signal says")
    p.add_argument(
        "--from", dest="source", required=True, type=check.agent_id, metavar="AGENT", help="sender"
    )
    p.add_argument(
        "--to",
        action="append",
        required=True,
        type=_targets,
        metavar="AGENT",
        help="an agent, or all (repeat, or separate with commas)",
    )
    p.add_argument("--kind", required=True, choices=KINDS, help="what sort of note it is")
    p.add_argument("--priority", choices=PRIORITIES, default="normal", help="how pressing")
    p.add_argument(
        "--expires", type=check.expiry, help="3d, 12h, a date, a time, or never (default: 7 days)"
    )
    p = command(
        signal,
        "list",
        cmd_signal_list,
        "open signals, newest first",
        ("infractl signal list --agent main", "infractl signal list --all -n 20"),
        parents=[out],
    )
    p.add_argument("--agent", type=check.agent_id, help="only those addressed to this agent")
    p.add_argument(
        "--from", dest="source", type=check.agent_id, metavar="AGENT", help="only this sender's"
    )
    p.add_argument("--all", action="store_true", help="resolved and expired ones too")
    p.add_argument(
        "-n", "--limit", type=check.bounded(1, 1000), default=100, help="at most this many (1-1000)"
    )
    p = command(
        signal,
        "resolve",
        cmd_signal_resolve,
        "close a signal: done, or dealt with",
        'infractl signal resolve 3f9a1c2b4d5e --note "booked"',
        parents=[out],
    )
    p.add_argument("id", type=check.signal_id, help="the signal's id (12 hex digits)")
    p.add_argument("--note", type=check.text(2000, "note"), help="what became of it")
    p = command(
        sub,
        "priorities",
        cmd_priorities,
        "open requests and recommendations marked useful, most pressing first",
        "infractl priorities --agent main",
        parents=[out],
    )
    p.add_argument("--agent", type=check.agent_id, help="only what concerns this agent")
    p = command(
        mistake,
        "add",
        cmd_mistake_add,
        "record what went wrong",
        'infractl mistake add --agent main "Booked the wrong day" --lesson "Confirm the date"',
        parents=[out],
    )
    p.add_argument("text", type=check.text(4000), help="what went wrong")
    p.add_argument("--agent", required=True, type=check.agent_id, help="whose mistake")
    p.add_argument("--lesson", type=check.text(4000, "lesson"), help="what to do differently")
    p = command(
        mistake,
        "list",
        cmd_mistake_list,
        "mistakes, newest first",
        ("infractl mistake list --since 7d", "infractl mistake list --rule user_correction"),
        parents=[out],
    )
    p.add_argument("--agent", type=check.agent_id, help="only this agent's")
    p.add_argument("--since", type=check.moment, help="YYYY-MM-DD, an ISO time, or an age like 7d")
    p.add_argument("--rule", choices=RULES, help="only those recorded this way")
    p.add_argument(
        "-n", "--limit", type=check.bounded(1, 1000), default=50, help="at most this many (1-1000)"
    )


def _targets(text: str) -> str:
    for part in text.split(","):
        if part.strip() and part.strip().lower() != "all":
            check.agent_id(part.strip().lower())
    return text


def cmd_signal_add(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "from": args.source,
        "to": args.to,
        "kind": args.kind,
        "text": args.text,
        "priority": args.priority,
    }
    if args.expires:
        params["expires"] = args.expires
    data = call(args, "signal.add", params)

    def render(d: dict[str, Any]) -> None:
        s = d["signal"]
        what = "sent" if d["created"] else "already open"
        expires = f", expires {when(s['expires_at'])}" if s["expires_at"] else ""
        to = ", ".join(s["to"])
        print(f"signal {s['id']} {what}: {s['kind']} from {s['from']} to {to}{expires}")

    emit(args, data, render, confirmation=True)
    return 0


def cmd_signal_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"all": args.all, "limit": args.limit}
    if args.agent:
        params["agent"] = args.agent
    if args.source:
        params["from"] = args.source
    data = call(args, "signal.list", params)
    _problems(args, data)

    def render(d: dict[str, Any]) -> None:
        rows = [
            [
                s["id"],
                s["from"],
                ", ".join(s["to"]),
                s["kind"],
                s["priority"],
                s["state"],
                when(s["expires_at"]) if s["expires_at"] else "never",
                clip(s["text"], 70),
            ]
            for s in d["signals"]
        ]
        headers = ["ID", "FROM", "TO", "KIND", "PRIORITY", "STATE", "EXPIRES", "TEXT"]
        table(headers, rows, empty="no open signals")

    emit(args, data, render)
    return 0


def cmd_signal_resolve(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"id": args.id}
    if args.note:
        params["note"] = args.note
    data = call(args, "signal.resolve", params)
    emit(args, data, lambda d: print(f"signal {d['signal']['id']} resolved"), confirmation=True)
    return 0


def cmd_priorities(args: argparse.Namespace) -> int:
    data = call(args, "priorities", {"agent": args.agent} if args.agent else {})
    _problems(args, data)

    def render(d: dict[str, Any]) -> None:
        rows = [
            [
                str(n),
                item["priority"],
                clip(item["title"], 70),
                _origin(item),
                span(item["age_s"]),
                ", ".join(item["targets"]) or "everyone",
            ]
            for n, item in enumerate(d["items"], 1)
        ]
        headers = ["#", "PRIORITY", "WHAT", "FROM", "AGE", "FOR"]
        table(headers, rows, empty="nothing open" + (f" for {d['agent']}" if d["agent"] else ""))

    emit(args, data, render)
    return 0


def cmd_mistake_add(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"agent": args.agent, "text": args.text}
    if args.lesson:
        params["lesson"] = args.lesson
    data = call(args, "mistake.add", params)
    emit(
        args,
        data,
        lambda d: print(f"mistake {d['mistake']['id']} recorded for {args.agent}"),
        confirmation=True,
    )
    return 0


def cmd_mistake_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    for name in ("agent", "since", "rule"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    data = call(args, "mistake.list", params)

    def render(d: dict[str, Any]) -> None:
        rows = [
            [
                when(m["at"]).split(" (")[0],
                m["agent"],
                m["rule"].replace("_", " "),
                clip(m["text"], 70),
                clip(m["lesson"] or "", 40),
            ]
            for m in d["mistakes"]
        ]
        table(["WHEN", "AGENT", "RULE", "WHAT", "LESSON"], rows, empty="no mistakes recorded")

    emit(args, data, render)
    return 0


def _origin(item: dict[str, Any]) -> str:
    if item["source"] == "signal":
        return f"request from {item['origin']}"
    return f"{item['origin']} (marked useful)"


def _problems(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Bad lines in the agents' drop files, once, on stderr: they are skipped, not fatal."""
    for problem in data.get("problems") or []:
        note(args, f"skipped {problem}")
