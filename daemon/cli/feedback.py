"""``infractl feedback list|stats``: the recommendations sent and what was answered."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.cli import args as check
from daemon.cli.common import call, clip, command, emit, group, table, when

STATES = ("pending", "sent", "answered", "snoozed", "archived")


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    feedback = group(
        sub,
        "feedback",
        "recommendations sent and the answers to them",
        "infractl feedback stats",
    )
    p = command(
        feedback,
        "list",
        cmd_list,
        "recommendations, newest first, with the answer if any",
        ("infractl feedback list --state answered", "infractl feedback list -n 10 --json"),
        parents=[out],
    )
    p.add_argument("--state", choices=STATES, help="only those in this state")
    p.add_argument(
        "-n", "--limit", type=check.bounded(1, 1000), default=50, help="at most this many (1-1000)"
    )
    command(
        feedback,
        "stats",
        cmd_stats,
        "how many were sent, answered, and how",
        "infractl feedback stats",
        parents=[out],
    )


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
