"""What every infractl command shares: the socket call, JSON or table output, time formats.

Stdlib only at import; rich is loaded when a table or a progress bar is drawn.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon.paths import client_socket_path

if TYPE_CHECKING:
    from daemon.client import ControlClient


Handler = Callable[[argparse.Namespace], int]


def examples(example: str | tuple[str, ...]) -> str:
    """The epilog every command's --help ends with: one example, or several."""
    lines = (example,) if isinstance(example, str) else example
    return ("examples:\n" if len(lines) > 1 else "example:\n") + "\n".join(f"  {x}" for x in lines)


def command(
    sub: Any,
    name: str,
    handler: Handler,
    help: str,
    example: str | tuple[str, ...],
    *,
    parents: list[argparse.ArgumentParser],
) -> Any:
    """A command (or a group's action) with its help and its example."""
    p = sub.add_parser(name, parents=parents, help=help, description=help, epilog=examples(example))
    p.set_defaults(handler=handler)
    return p


def group(sub: Any, name: str, help: str, example: str | tuple[str, ...]) -> Any:
    """A command made of actions (``memory``, ``backup`` ...). Given without its action, it
    prints its own usage and actions, not infractl's."""
    p = sub.add_parser(name, help=help, description=help, epilog=examples(example))

    def usage(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(handler=usage)
    return p.add_subparsers(title="actions", metavar="ACTION")


def connect(args: argparse.Namespace, timeout: float | None = 30.0) -> ControlClient:
    """A connection to the daemon the settings (or --socket / --env-file) point at."""
    from daemon.client import ControlClient

    return ControlClient(client_socket_path(args.socket, os.environ, args.env_file), timeout)


def call(
    args: argparse.Namespace,
    method: str,
    params: dict[str, Any] | None = None,
    timeout: float | None = 30.0,
) -> Any:
    began = time.perf_counter()
    with connect(args, timeout) as client:
        try:
            return client.call(method, params)
        finally:
            if getattr(args, "verbose", False):
                took = (time.perf_counter() - began) * 1000
                print(f"infractl: {method} at {client.path}: {took:.0f} ms", file=sys.stderr)


def emit(
    args: argparse.Namespace,
    data: Any,
    render: Callable[[Any], None],
    *,
    confirmation: bool = False,
) -> None:
    """Print ``data`` as JSON (--json) or through ``render``. A confirmation ("paused: x")
    is left out with -q; data is always printed."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif not (confirmation and quiet(args)):
        render(data)


def note(args: argparse.Namespace, text: str) -> None:
    """A remark on stderr beside the output (skipped lines, costs); none with -q."""
    if not quiet(args):
        print(f"infractl: {text}", file=sys.stderr)


def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def progress_shown(args: argparse.Namespace) -> bool:
    """A progress bar: on a terminal, not with --json or -q."""
    return not getattr(args, "json", False) and not quiet(args) and sys.stderr.isatty()


def confirm(question: str) -> bool:
    """Ask on the terminal; anything but y/yes is no."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")


def table(headers: list[str], rows: list[list[str]], empty: str = "") -> None:
    if not rows and empty:
        print(empty)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 200  # piped into grep or a file: one row per line, not wrapped at 80
    console.print(table)


def when(iso: str | None) -> str:
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso)
    delta = (moment - datetime.now(UTC)).total_seconds()
    local = moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"{local} ({'in ' + span(delta) if delta > 0 else span(-delta) + ' ago'})"


def ago(iso: str) -> str:
    """``3h ago`` (or ``in 5m`` for a time ahead)."""
    delta = (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()
    return f"in {span(delta)}" if delta > 0 else f"{span(-delta)} ago"


def span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


#: Nouns whose plural is not the singular plus "s"; ``stores.counts`` has the same table (the
#: daemon's side), kept apart because infractl loads nothing of ``stores``; a test compares them.
IRREGULAR = {"memory": "memories", "summary": "summaries", "entry": "entries"}


def count(n: int, noun: str) -> str:
    """``1 result``, ``2 results``, ``1 memory``, ``3 memories``."""
    return f"{n} {noun if n == 1 else IRREGULAR.get(noun) or noun + 's'}"


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
