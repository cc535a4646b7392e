"""``infractl feedback list|stats``: the recommendations sent and what was answered."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from daemon.cli.common import call, clip, emit, table, when

STATES = ("pending", "sent", "answered", "snoozed", "archived")


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    feedback = sub.add_parser(
        "feedback", help="recommendations sent and the answers to them"
    ).add_subparsers(metavar="ACTION")

    def action(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        p = feedback.add_parser(name, parents=[out], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = action("list", cmd_list, "recommendations, newest first, with the answer if any")
    p.add_argument("--state", choices=STATES, help="only those in this state")
    p.add_argument("-n", "--limit", type=int, default=50)
    action("stats", cmd_stats, "how many were sent, answered, and how")


def cmd_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.state:
        params["state"] = args.state
    data = call(args, "feedback.list", params)

    def render(d: dict[str, Any]) -> None:
        rows = [
            [
                r["id"],
                when(r["created_at"]),
                r["source_job"],
                r["state"] + (f" until {when(r['snooze_until'])}" if r["snooze_until"] else ""),
                (r["choice"] or "-").replace("_", " "),
                clip(r["title"], 60),
            ]
            for r in d["results"]
        ]
        table(["ID", "CREATED", "FROM", "STATE", "ANSWER", "TITLE"], rows, "no recommendations yet")

    emit(args, data, render)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    data = call(args, "feedback.stats")

    def render(d: dict[str, Any]) -> None:
        print(
            f"recommendations {d['recommendations']}  delivered {d['delivered']}"
            f"  answered {d['answered']}"
        )
        for title, counts in (
            ("state", d["by_state"]),
            ("answer", d["by_choice"]),
            ("from", d["by_source"]),
        ):
            if counts:
                shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
                print(f"{title:<6}  {shown}")

    emit(args, data, render)
    return 0
