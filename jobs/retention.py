"""The ``retention`` job: each store's old rows deleted, in batches, and the files shrunk.

What is kept and for how long is the table of ``Retained`` entries in the context (built where
the daemon opens its stores); this job only walks it. Each batch is one short transaction in a
worker thread, so writers are never held up for long and the event loop never waits; between
batches a cancelled run stops. A database that lost enough is vacuumed afterwards, so the space
comes back to the disk and not only to SQLite's free list.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobs.base import JobContext, JobResult
from stores.retention import Retained
from stores.sqlite import Database, Reclaimed

BATCH = 500


async def run(ctx: JobContext) -> JobResult:
    now = ctx.clock()
    stores: dict[str, dict[str, Any]] = {}
    ctx.progress.phase = "pruning"
    ctx.progress.total = len(ctx.retention)
    for done, rule in enumerate(ctx.retention):
        removed = await _prune(rule, now - rule.keep)
        held = await asyncio.to_thread(rule.count)
        stores[rule.name] = {
            "keep_s": rule.keep.total_seconds(),
            "removed": removed,
            "held": held,
            "before": (now - rule.keep).isoformat(),
        }
        ctx.progress.done = done + 1
    ctx.progress.phase = "reclaiming space"
    files = await _reclaim(_databases(ctx.retention))
    freed = sum(f["bytes_before"] - f["bytes_after"] for f in files.values() if "how" in f)
    summary = ", ".join(f"{name} -{s['removed']} ({s['held']} kept)" for name, s in stores.items())
    return JobResult(
        summary=f"{summary or 'nothing to keep'}; {_mib(freed)} given back to the disk",
        stats={"stores": stores, "files": files, "freed_bytes": freed},
    )


async def _prune(rule: Retained, before: datetime) -> int:
    removed = 0
    while True:
        batch = await asyncio.to_thread(rule.prune, before, BATCH)
        removed += batch
        if batch < BATCH:
            return removed


def _databases(rules: Sequence[Retained]) -> list[Database]:
    seen: dict[int, Database] = {}
    for rule in rules:
        seen.setdefault(id(rule.database), rule.database)
    return list(seen.values())


async def _reclaim(databases: list[Database]) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for database in databases:
        try:
            reclaimed: Reclaimed = await asyncio.to_thread(database.reclaim)
        except sqlite3.Error as exc:  # busy, or a full disk: the rows are gone all the same
            files[database.path.name] = {"error": str(exc)}
            continue
        files[database.path.name] = reclaimed.to_dict()
    return files


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
