"""What backup commands draw: a progress bar in bytes, a check's verdict, sizes.

rich is imported only when a bar is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daemon.cli.common import count


class Bar:
    """A rich progress bar in bytes on stderr, updated from a progress dict."""

    def __enter__(self) -> Callable[[dict[str, Any]], None]:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(binary_units=True),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.__enter__()
        task = self.progress.add_task("starting", total=None)

        def draw(p: dict[str, Any]) -> None:
            self.progress.update(
                task,
                description=p.get("phase") or "working",
                completed=p.get("done", 0),
                total=p.get("total"),
            )

        return draw

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def render_check(d: dict[str, Any]) -> None:
    if d["ok"]:
        chroma = d.get("chroma") or {}
        vectors = f", {count(chroma['count'], 'vector')}, search ok" if chroma else ""
        sqlite = f", {count(len(d['sqlite']), 'SQLite file')} intact" if d["sqlite"] else ""
        print(f"{d['name']}: ok: {count(d['files'], 'file')} ({size(d['bytes'])}){sqlite}{vectors}")
        return
    print(f"{d['name']}: FAILED")
    for problem in d["problems"]:
        print(f"  {problem}")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
    return f"{n} B"
