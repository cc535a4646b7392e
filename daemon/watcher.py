"""Ingest within seconds of a change: watch transcripts and notes, trigger the ingest job.

The watcher only says "something changed"; the ingest job reads from its checkpoints as it
always does, so a missed or duplicated event costs nothing. Changes during a run are coalesced
into one more run after it. Transcript directories are watched recursively; a workspace only
for its notes (``MEMORY.md``, ``USER.md``, ``memory/``), never the rest of it (it may be a
large project tree).

An event is not a change: reading an agent's WAL database (the ingest does, read-only)
touches its ``-shm`` and may create or drop an empty ``-wal``. So a database's events count
only when its stamps (``stores.openclaw.sources.Stamp``: size and time of the file and its
WAL) differ from the last ones seen, and ``-shm`` never does: with nothing changing, the
daemon's own reads start no run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import watchfiles

from daemon.logs import get_logger
from stores.openclaw.home import DATABASE_FILE, OpenClawSource, discover
from stores.openclaw.notes import ROOT_NOTES
from stores.openclaw.sources import Stamp, is_note_file, is_transcript_file

log = get_logger(__name__)


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
        #: Each agent database's stamps when last seen: a touch that leaves them is no change.
        self._stamps: dict[Path, tuple[Stamp, Stamp]] = {}

    def __repr__(self) -> str:
        return f"ChangeWatcher({str(self.source.home)!r})"

    async def start(self) -> None:
        groups = await asyncio.to_thread(self._groups)
        for name, (paths, recursive, wanted) in groups.items():
            if paths:
                task = self._watch(paths, recursive, wanted)
                self._tasks.append(asyncio.create_task(task, name=f"watch-{name}"))
        self._tasks.append(asyncio.create_task(self._ingest_when_dirty(), name="watch-ingest"))
        log.info("watcher.started", paths=[str(p) for g in groups.values() for p in g[0]])

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _groups(self) -> dict[str, tuple[list[Path], bool, Callable[[str], bool]]]:
        """What to watch, how deep, for which names; and the databases' stamps as they are."""
        home = discover(self.source)
        for agent in home.agents:
            self._stamps[agent.database] = _database_stamps(agent.database)
        folders = [a.workspace / "memory" for a in home.agents]
        folders += [e.path for a in home.agents for e in a.extra_paths]
        return {
            "transcripts": (
                [p for p in [self.source.home / "agents"] if p.is_dir()],
                True,
                self._changed,
            ),
            "notes": ([p for p in folders if p.is_dir()], True, is_note_file),
            "workspaces": (
                [a.workspace for a in home.agents if a.workspace.is_dir()],
                False,
                _root_note,
            ),
        }

    def _changed(self, path: str) -> bool:
        """A transcript file; for a database, only when its stamps moved (not our own read)."""
        if not is_transcript_file(path):
            return False
        if not path.endswith((DATABASE_FILE, f"{DATABASE_FILE}-wal")):
            return True
        database = Path(path.removesuffix("-wal"))
        stamps = _database_stamps(database)
        if self._stamps.get(database) == stamps:
            return False
        self._stamps[database] = stamps
        return True

    async def _watch(
        self, paths: list[Path], recursive: bool, wanted: Callable[[str], bool]
    ) -> None:
        try:
            async for changes in watchfiles.awatch(
                *paths,
                watch_filter=lambda _change, path: wanted(path),
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


def _root_note(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in ROOT_NOTES


def _database_stamps(database: Path) -> tuple[Stamp, Stamp]:
    return Stamp.of(database), Stamp.of(Path(f"{database}-wal"))
