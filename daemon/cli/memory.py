"""``infractl memory ...``: search the memory store and manage what it holds."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from daemon.cli import args as check
from daemon.cli.args import UsageError
from daemon.cli.common import (
    call,
    command,
    confirm,
    connect,
    count,
    emit,
    group,
    progress_shown,
    table,
    when,
)
from daemon.errors import EXIT_STATUS, ErrorCode

#: The daemon keeps at most this many tags on a memory.
MAX_TAGS = 20


KINDS = ("turns", "summary", "note", "manual", "hourly", "sync", "weekly")


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    memory = group(
        sub,
        "memory",
        "search and manage the memory store",
        ('infractl memory search "dentist appointment" -k 5', "infractl memory stats"),
    )
    p = command(
        memory,
        "search",
        cmd_memory_search,
        "find what was said, by whom, when, and where",
        (
            'infractl memory search "when is the dentist appointment" -k 5',
            'infractl memory search "launch review" --agent work --since 7d --until 1d',
        ),
        parents=[out],
    )
    p.add_argument("query", type=check.text(4000, "query"), help="words or a question")
    p.add_argument("-k", type=check.bounded(1, 100), default=10, help="at most this many (1-100)")
    p.add_argument(
        "--agent", type=check.agent_id, action="append", default=[], help="only this agent (repeat)"
    )
    p.add_argument("--session", help="only this session id")
    p.add_argument("--speaker", help="only chunks where this person speaks")
    p.add_argument(
        "--role", choices=["user", "assistant", "summary"], help="only turns of this role"
    )
    p.add_argument(
        "--kind", action="append", default=[], choices=KINDS, help="only this kind (repeat)"
    )
    p.add_argument("--since", type=check.moment, help="YYYY-MM-DD, an ISO time, or an age like 7d")
    p.add_argument("--until", type=check.moment, help="same forms as --since; after it")
    p.add_argument(
        "--recent",
        type=check.duration,
        metavar="HALF_LIFE",
        help="favour newer memories, e.g. 30d",
    )
    p.add_argument(
        "--budget", type=check.bounded(50, 100_000), help="most tokens to return (50-100000)"
    )
    p = command(
        memory,
        "add",
        cmd_memory_add,
        "remember a piece of text",
        'infractl memory add "The spare key is under the blue pot" --tag home',
        parents=[out],
    )
    p.add_argument("text", type=check.text(20_000), help="what to remember")
    p.add_argument("--agent", type=check.agent_id, help="whose memory (default: everyone's)")
    p.add_argument("--tag", action="append", default=[], help="a tag to find it by (repeat)")
    p = command(
        memory,
        "forget",
        cmd_memory_forget,
        "remove memories by id, session, file or agent",
        (
            "infractl memory forget --session 3db8a3fb-...",
            "infractl memory forget --agent work --dry-run",
        ),
        parents=[out],
    )
    p.add_argument("--id", help="one memory, by the id a search shows")
    p.add_argument("--agent", type=check.agent_id, help="every memory of this agent")
    p.add_argument("--session", help="every memory of this session")
    p.add_argument("--path", type=_absolute, help="a note file, as a path from here")
    p.add_argument("--dry-run", action="store_true", help="say how many would go, remove nothing")
    p.add_argument("--yes", action="store_true", help="do not ask on a terminal")
    command(
        memory,
        "stats",
        cmd_memory_stats,
        "what the memory store holds",
        "infractl memory stats",
        parents=[out],
    )
    p = command(
        memory,
        "reindex",
        cmd_memory_reindex,
        "rebuild the memory from the transcripts",
        ("infractl memory reindex", "infractl memory reindex --agent work --no-wait"),
        parents=[out],
    )
    p.add_argument("--agent", type=check.agent_id, help="only this agent")
    p.add_argument("--no-wait", action="store_true", help="start it and return")


def cmd_memory_search(args: argparse.Namespace) -> int:
    check.ordered(args.since, args.until, ("--since", "--until"))
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
        print(
            f"{count(len(d['results']), 'result')}, {count(d['tokens'], 'token')},"
            f" {d['took_ms']:.0f} ms"
        )

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
    if len(args.tag) > MAX_TAGS:
        raise UsageError(f"--tag: at most {MAX_TAGS} tags, got {len(args.tag)}")
    params: dict[str, Any] = {"text": args.text, "tags": args.tag}
    if args.agent:
        params["agent"] = args.agent
    data = call(args, "memory.add", params)
    emit(args, data, _remembered, confirmation=not data.get("vector_pending"))
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
    """Many memories at once (an agent, a session, a file) are counted and confirmed first
    on a terminal; ``--dry-run`` only counts."""
    params: dict[str, Any] = {
        k: getattr(args, k) for k in ("id", "agent", "session", "path") if getattr(args, k)
    }
    if not params:
        raise UsageError("say what to forget: --id, --agent, --session or --path")
    what = ", ".join(f"{k} {v}" for k, v in params.items())
    ask = args.id is None and not args.yes and not args.json and check.is_terminal()
    if args.dry_run or ask:
        counted = call(args, "memory.forget", {**params, "dry_run": True})
        if args.dry_run:
            emit(args, counted, lambda d: print(f"would forget {count(d['removed'], 'memory')}"))
            return 0
        if counted["removed"] == 0:
            print(f"nothing to forget ({what})")
            return 0
        if not confirm(f"forget {count(counted['removed'], 'memory')} ({what})?"):
            print("nothing forgotten", file=sys.stderr)
            return 1
    data = call(args, "memory.forget", params)
    emit(args, data, lambda d: print(f"forgot {count(d['removed'], 'memory')}"), confirmation=True)
    return 0


def cmd_memory_stats(args: argparse.Namespace) -> int:
    data = call(args, "memory.stats")

    def render(d: dict[str, Any]) -> None:
        print(f"store {d['store']}\nembedder {d['embedder']}")
        print(
            f"{count(d['chunks'], 'chunk')} ({count(d['vectors'], 'vector')}),"
            f" {count(d['turns'], 'turn')}, {count(d['sources'], 'source')}"
        )
        rows = [
            [agent or "(none)", str(v["chunks"]), _day(v["first"]), _day(v["last"])]
            for agent, v in sorted(d["by_agent"].items())
        ]
        table(["AGENT", "CHUNKS", "FIRST", "LAST"], rows, empty="the store is empty")
        problems = d.get("problems") or []
        print(f"\nproblems reading OpenClaw's files: {len(problems) or 'none'}")
        for p in problems:
            times = f" ({count(p['count'], 'time')})" if p["count"] > 1 else ""
            print(f"- {p['source']}: {p['kind']}{times}\n  {p['hint']}\n  e.g. {p['example']}")

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
    run = _follow(args, started["run_id"], show=progress_shown(args))
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
