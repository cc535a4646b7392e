"""``infractl signal add|list|resolve``, ``infractl priorities``, ``infractl mistake add|list``.

An agent's skill can call ``infractl signal add --from work --to main --kind request "..."``;
``--json`` gives it the stored signal (and whether it was new) to read back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from daemon.cli.common import call, clip, emit, span, table, when

KINDS = ("fact", "decision", "request", "warning")
PRIORITIES = ("low", "normal", "high", "urgent")
RULES = ("manual", "assistant_error", "tool_error", "user_correction")


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    signal = sub.add_parser("signal", help="notes from one agent to others").add_subparsers(
        metavar="ACTION"
    )
    mistake = sub.add_parser("mistake", help="the mistakes log").add_subparsers(metavar="ACTION")

    def action(
        group: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str
    ) -> Any:
        p = group.add_parser(name, parents=[out], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = action(signal, "add", cmd_signal_add, "send a signal from one agent to others")
    p.add_argument("text")
    p.add_argument("--from", dest="source", required=True, metavar="AGENT")
    p.add_argument(
        "--to", action="append", required=True, metavar="AGENT", help="an agent, or all (repeat)"
    )
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--priority", choices=PRIORITIES, default="normal")
    p.add_argument("--expires", help="3d, 12h, a date, a time, or never (default: 7 days)")
    p = action(signal, "list", cmd_signal_list, "open signals, newest first")
    p.add_argument("--agent", help="only those addressed to this agent")
    p.add_argument("--from", dest="source", metavar="AGENT", help="only those this agent sent")
    p.add_argument("--all", action="store_true", help="resolved and expired ones too")
    p.add_argument("-n", "--limit", type=int, default=100)
    p = action(signal, "resolve", cmd_signal_resolve, "close a signal: done, or dealt with")
    p.add_argument("id")
    p.add_argument("--note", help="what became of it")
    p = sub.add_parser(
        "priorities",
        parents=[out],
        help="open items ranked by priority and age",
        description="open requests and recommendations marked useful, most pressing first",
    )
    p.add_argument("--agent", help="only what concerns this agent")
    p.set_defaults(handler=cmd_priorities)
    p = action(mistake, "add", cmd_mistake_add, "record what went wrong")
    p.add_argument("text")
    p.add_argument("--agent", required=True)
    p.add_argument("--lesson", help="what to do differently")
    p = action(mistake, "list", cmd_mistake_list, "mistakes, newest first")
    p.add_argument("--agent")
    p.add_argument("--since", help="YYYY-MM-DD, an ISO time, or an age like 7d")
    p.add_argument("--rule", choices=RULES, help="only those recorded this way")
    p.add_argument("-n", "--limit", type=int, default=50)


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

    emit(args, data, render)
    return 0


def cmd_signal_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"all": args.all, "limit": args.limit}
    if args.agent:
        params["agent"] = args.agent
    if args.source:
        params["from"] = args.source
    data = call(args, "signal.list", params)
    _problems(data)

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
    emit(args, data, lambda d: print(f"signal {d['signal']['id']} resolved"))
    return 0


def cmd_priorities(args: argparse.Namespace) -> int:
    data = call(args, "priorities", {"agent": args.agent} if args.agent else {})
    _problems(data)

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
    emit(args, data, lambda d: print(f"mistake {d['mistake']['id']} recorded for {args.agent}"))
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


def _problems(data: dict[str, Any]) -> None:
    """Bad lines in the agents' drop files, once, on stderr: they are skipped, not fatal."""
    for problem in data.get("problems") or []:
        print(f"infractl: skipped {problem}", file=sys.stderr)
