"""Ingest within seconds of a change: watch transcripts and notes, trigger the ingest job.

The watcher only says "something changed"; the ingest job reads from its checkpoints as it
always does, so a missed or duplicated event costs nothing. Changes during a run are coalesced
into one more run after it. Transcript directories are watched recursively; a workspace only
for ``MEMORY.md`` and its ``memory/`` directory, never the rest of it (it may be a large
project tree).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import watchfiles

from daemon.logs import get_logger
from jobs.base import OpenClawSource
from stores.openclaw.home import discover

log = get_logger(__name__)

_TRANSCRIPT = re.compile(r"(\.jsonl(\.(reset|deleted)\..*)?|sessions\.json|\.sqlite(-wal)?)$")
_NOTE = re.compile(r"(^|/)(MEMORY\.md|memory/[^/]+\.md)$")


class ChangeWatcher:
    def __init__(
        self,
        source: OpenClawSource,
        trigger: Callable[[], Awaitable[tuple[bool, asyncio.Task[object] | None]]],
        debounce: timedelta,
    ) -> None:
        self.source = source
        self.trigger = trigger
        self.debounce = debounce
        self._stop = asyncio.Event()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"ChangeWatcher({str(self.source.home)!r})"

    async def start(self) -> None:
        recursive, shallow = await asyncio.to_thread(self._paths)
        if recursive:
            self._tasks.append(asyncio.create_task(self._watch(recursive, True), name="watch"))
        if shallow:
            self._tasks.append(asyncio.create_task(self._watch(shallow, False), name="watch-ws"))
        self._tasks.append(asyncio.create_task(self._ingest_when_dirty(), name="watch-ingest"))
        log.info("watcher.started", paths=[str(p) for p in recursive + shallow])

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _paths(self) -> tuple[list[Path], list[Path]]:
        home = discover(
            self.source.home, profile=self.source.profile, main_workspace=self.source.main_workspace
        )
        recursive = [p for p in [self.source.home / "agents"] if p.is_dir()]
        recursive += [
            a.workspace / "memory" for a in home.agents if (a.workspace / "memory").is_dir()
        ]
        shallow = [a.workspace for a in home.agents if a.workspace.is_dir()]
        return recursive, shallow

    async def _watch(self, paths: list[Path], recursive: bool) -> None:
        try:
            async for changes in watchfiles.awatch(
                *paths,
                watch_filter=_relevant,
                debounce=int(self.debounce.total_seconds() * 1000),
                step=50,
                stop_event=self._stop,
                recursive=recursive,
                ignore_permission_denied=True,
            ):
                log.debug("watcher.changed", files=len(changes))
                self._dirty.set()
        except (OSError, RuntimeError) as exc:  # a watched directory removed, inotify limits
            log.warning("watcher.failed", error=str(exc), note="the scheduled ingest goes on")

    async def _ingest_when_dirty(self) -> None:
        """``trigger`` starts a run (True) or hands back the one going (False), or None when no
        run may start (paused, stopping). A change seen during a run gets a run of its own."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started, task = await self.trigger()
            if task is None:
                log.debug("watcher.not_started", reason="ingest paused, disabled or stopping")
                continue
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            if not started:
                self._dirty.set()


def _relevant(change: watchfiles.Change, path: str) -> bool:
    return bool(_TRANSCRIPT.search(path) or _NOTE.search(path))
