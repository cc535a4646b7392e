"""``infractl memory ...``: search the memory store and manage what it holds."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from daemon.cli.common import call, connect, emit, table, when
from daemon.errors import EXIT_STATUS, ErrorCode


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    memory = sub.add_parser("memory", help="search and manage the memory store")
    actions = memory.add_subparsers(metavar="ACTION")

    def action(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        p = actions.add_parser(name, parents=[out], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = action("search", cmd_memory_search, "find what was said, by whom, when, and where")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10, help="at most this many results")
    p.add_argument("--agent", action="append", default=[], help="only this agent (repeatable)")
    p.add_argument("--session", help="only this session id")
    p.add_argument("--speaker", help="only chunks where this person speaks")
    p.add_argument("--role", choices=["user", "assistant", "summary"])
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=["turns", "summary", "note", "manual", "hourly", "sync", "weekly"],
    )
    p.add_argument("--since", help="YYYY-MM-DD, an ISO time, or an age like 7d")
    p.add_argument("--until", help="same forms as --since")
    p.add_argument("--recent", metavar="HALF_LIFE", help="favour newer memories, e.g. 30d")
    p.add_argument("--budget", type=int, help="most tokens to return")
    p = action("add", cmd_memory_add, "remember a piece of text")
    p.add_argument("text")
    p.add_argument("--agent")
    p.add_argument("--tag", action="append", default=[])
    p = action("forget", cmd_memory_forget, "remove memories by id, session, file or agent")
    p.add_argument("--id")
    p.add_argument("--agent")
    p.add_argument("--session")
    p.add_argument("--path", type=_absolute, help="a note file, as a path from here")
    action("stats", cmd_memory_stats, "what the memory store holds")
    p = action("reindex", cmd_memory_reindex, "rebuild the memory from the transcripts")
    p.add_argument("--agent", help="only this agent")
    p.add_argument("--no-wait", action="store_true", help="start it and return")


def cmd_memory_search(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"query": args.query, "k": args.k}
    for name in (
        "agent",
        "session",
        "speaker",
        "role",
        "kind",
        "since",
        "until",
        "recent",
        "budget",
    ):
        value = getattr(args, name)
        if value not in (None, []):
            params[name] = value
    data = call(args, "memory.search", params)

    def render(d: dict[str, Any]) -> None:
        if not d["results"]:
            print("nothing found")
            return
        for rank, r in enumerate(d["results"], 1):
            print(f"{rank}. {_source_line(r['source'])}  (score {r['score']:.4f})")
            for line in r["text"].splitlines():
                print(f"   {line}")
            print(f"   — {_place(r['source'])}")
        print(f"{len(d['results'])} results, {d['tokens']} tokens, {d['took_ms']:.0f} ms")

    emit(args, data, render)
    return 0


def _source_line(source: dict[str, Any]) -> str:
    parts = [source.get("agent_id") or "(no agent)", source["kind"]]
    if source.get("started_at"):
        parts.append(when(source["started_at"]).split(" (")[0])
    if source.get("speakers"):
        parts.append(", ".join(source["speakers"]))
    return " · ".join(parts)


def _place(source: dict[str, Any]) -> str:
    if source.get("path"):
        return f"{source['path']}:{source.get('line_start')}-{source.get('line_end')}"
    if source.get("session_id"):
        entries = ",".join(source.get("entry_ids") or [])
        return f"session {source['session_id']} entries {entries}"
    return "added by hand" + (f" [{', '.join(source['tags'])}]" if source.get("tags") else "")


def cmd_memory_add(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"text": args.text, "tags": args.tag}
    if args.agent:
        params["agent"] = args.agent
    data = call(args, "memory.add", params)
    emit(args, data, _remembered)
    return 0


def _remembered(data: dict[str, Any]) -> None:
    print(f"remembered as {data['id']}")
    if data.get("vector_pending"):
        print(
            "found by its words now, by meaning once its vector is stored:"
            f" {data['vector_pending']}"
        )


def _absolute(path: str) -> str:
    """The daemon stores notes by absolute path: ``memory/x.md`` or ``~/...`` must match too."""
    return os.path.abspath(os.path.expanduser(path))


def cmd_memory_forget(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in ("id", "agent", "session", "path") if getattr(args, k)}
    data = call(args, "memory.forget", params)
    emit(args, data, lambda d: print(f"forgot {d['removed']} memories"))
    return 0


def cmd_memory_stats(args: argparse.Namespace) -> int:
    data = call(args, "memory.stats")

    def render(d: dict[str, Any]) -> None:
        print(f"store {d['store']}\nembedder {d['embedder']}")
        print(
            f"{d['chunks']} chunks ({d['vectors']} vectors), {d['turns']} turns, "
            f"{d['sources']} sources"
        )
        rows = [
            [agent or "(none)", str(v["chunks"]), _day(v["first"]), _day(v["last"])]
            for agent, v in sorted(d["by_agent"].items())
        ]
        table(["AGENT", "CHUNKS", "FIRST", "LAST"], rows, empty="the store is empty")

    emit(args, data, render)
    return 0


def _day(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts else "-"


def cmd_memory_reindex(args: argparse.Namespace) -> int:
    params = {"agent": args.agent} if args.agent else {}
    started = call(args, "memory.reindex", params)
    if args.no_wait:
        emit(args, started, lambda d: print(f"reindex started: ingest run {d['run_id']}"))
        return 0
    run = _follow(args, started["run_id"], show=not args.json and sys.stderr.isatty())
    emit(
        args,
        run,
        lambda d: print(f"reindex {d['status']}: {_outcome(d)}"),
    )
    return 0 if run["status"] == "success" else EXIT_STATUS[ErrorCode.JOB_FAILED]


def _outcome(run: dict[str, Any]) -> str:
    return str((run.get("stats") or {}).get("summary") or run.get("error_message"))


def _follow(args: argparse.Namespace, run_id: int, *, show: bool) -> dict[str, Any]:
    """Poll a run until it ends, drawing its progress on stderr when that is a terminal."""
    with connect(args) as client:
        if not show:
            while (run := client.call("run", {"run_id": run_id}))["status"] == "running":
                time.sleep(0.2)
            return dict(run)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("starting", total=None)
            while (run := client.call("run", {"run_id": run_id}))["status"] == "running":
                p = run.get("progress") or {}
                bar.update(
                    task,
                    description=p.get("phase") or "working",
                    completed=p.get("done", 0),
                    total=p.get("total"),
                )
                time.sleep(0.2)
        return dict(run)
