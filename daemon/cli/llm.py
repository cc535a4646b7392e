"""``infractl refine`` and ``infractl refine-history``: three-pass prompting from the shell.

The answer goes to stdout alone, so that it can be piped; what it cost goes to stderr.
"""

from __future__ import annotations

import argparse
from typing import Any

from daemon.cli import args as check
from daemon.cli.common import call, clip, command, count, emit, ms, note, table, when

#: Three passes, each a request the SDK may retry: minutes, not the 30 s other commands get.
REFINE_TIMEOUT = 900.0


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    p = command(
        sub,
        "refine",
        cmd_refine,
        "answer a prompt by draft, critique and refine",
        'infractl refine "Write a two-line status update on the garden" --show-passes',
        parents=[out],
    )
    p.add_argument("prompt", type=check.text(20_000, "prompt"), help="what to answer")
    p.add_argument(
        "--system",
        type=check.text(20_000, "system prompt"),
        help="standing instructions",
    )
    p.add_argument("--single-pass", action="store_true", help="only the draft")
    p.add_argument(
        "--show-passes", action="store_true", help="print every pass, not only the answer"
    )
    p.add_argument(
        "--timeout",
        type=check.seconds,
        default=REFINE_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting after this long (default {REFINE_TIMEOUT:.0f})",
    )
    p = command(
        sub,
        "refine-history",
        cmd_refine_history,
        "past refine and summary results",
        "infractl refine-history -n 5 --purpose refine",
        parents=[out],
    )
    p.add_argument(
        "-n", "--limit", type=check.bounded(1, 500), default=20, help="at most this many (1-500)"
    )
    p.add_argument("--purpose", help="only these (refine, summarize, ...)")


def cmd_refine(args: argparse.Namespace) -> int:
    params = {
        "prompt": args.prompt,
        "system": args.system or "",
        "mode": "single-pass" if args.single_pass else "three-pass",
    }
    data = call(args, "refine", params, timeout=args.timeout)

    def render(d: dict[str, Any]) -> None:
        if args.show_passes:
            _passes(d)
        print(d["final"])
        note(args, _cost_line(d))

    emit(args, data, render)
    return 0


def _passes(d: dict[str, Any]) -> None:
    print(f"── draft  {_stats(d['draft']['stats'])}\n{d['draft']['text']}\n")
    critique = d.get("critique")
    if critique is not None:
        print(f"── critique  {_stats(critique['stats'])}  verdict {critique['verdict']}")
        for n, problem in enumerate(critique["problems"], 1):
            print(f"{n}. {problem['issue']}\n   fix: {problem['fix']}")
        print()
    if d.get("refined") is not None:
        print(f"── refined  {_stats(d['refined']['stats'])}")
    else:
        print(f"── refine skipped: {d['skip_reason']}")
    print("── answer")


def _stats(stats: dict[str, Any]) -> str:
    usage = stats["usage"]
    temperature = stats.get("temperature")
    return (
        f"(t={temperature if temperature is not None else '-'}, {ms(stats['latency_ms'])},"
        f" {usage['input_tokens']} in / {usage['output_tokens']} out)"
    )


def _cost_line(d: dict[str, Any]) -> str:
    usage = d["usage"]
    critique = d.get("critique")
    found = f", {count(len(critique['problems']), 'problem')} found" if critique is not None else ""
    return (
        f"{d['mode']}{found}; {usage['input_tokens']} in / {usage['output_tokens']} out tokens,"
        f" ${usage['cost_usd']:.4f}, {ms(d['latency_ms'])} (history #{d['history_id']})"
    )


def cmd_refine_history(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.purpose:
        params["purpose"] = args.purpose
    data = call(args, "refine.history", params)

    def render(d: dict[str, Any]) -> None:
        rows = []
        for r in d["results"]:
            total = (r.get("usage") or {}).get("total") or {}
            rows.append(
                [
                    str(r["id"]),
                    when(r["created_at"]),
                    r["purpose"],
                    r["mode"],
                    "ok" if r["error"] is None else "error",
                    f"${total['cost_usd']:.4f}" if total else "-",
                    clip(r["final"] or r["error"] or "", 60),
                ]
            )
        table(["id", "when", "purpose", "mode", "status", "cost", "answer"], rows, "no results")

    emit(args, data, render)
    return 0
