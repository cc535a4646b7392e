"""What every infractl command shares: the socket call, JSON or table output, time formats.

Stdlib only at import; rich is loaded when a table or a progress bar is drawn.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon.paths import client_socket_path

if TYPE_CHECKING:
    from daemon.client import ControlClient


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
    with connect(args, timeout) as client:
        return client.call(method, params)


def emit(args: argparse.Namespace, data: Any, render: Callable[[Any], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render(data)


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


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
