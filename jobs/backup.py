"""The ``backup`` and ``restore_drill`` jobs.

``backup``: a consistent archive of the state directory and the agents' workspaces, read back
and checked before it is kept, then retention applied (``stores.backup.create``). The memory
store's writers are paused only while its files are copied; the pause is in the run's stats.

``restore_drill``: the newest backup restored into scratch space and checked as ``verify``
does (every sha256, every SQLite file, the Chroma copy opened and searched), the result recorded
as the run's stats and as the backup's verification; the scratch space is removed.

Both do their work in a worker thread (``jobs.base.in_thread``). Cancelling the job (its
timeout, the daemon stopping) cancels only the await on that thread, so the thread is told
through the run's stop token, stops at its next file or chunk, removes what it wrote and lets the
writers go; the job waits for that before it ends, so the run's recorded end is when the work
really ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from jobs.base import JobContext, JobResult, in_thread
from stores.backup.config import BackupConfig
from stores.backup.create import Created, Sources, create_backup
from stores.backup.crypto import Keys
from stores.backup.repo import BackupDir
from stores.backup.select import Workspace
from stores.backup.verify import CopyReport, verify
from stores.counts import count
from stores.openclaw.home import discover
from stores.runlog import RunTrigger

log = structlog.get_logger(__name__)


async def run(ctx: JobContext) -> JobResult:
    config = _config(ctx)
    sources = await asyncio.to_thread(_sources, ctx, config)
    pause = ctx.memory.writes_paused if ctx.memory is not None else None
    created = await in_thread(
        ctx,
        lambda stop: create_backup(
            config,
            sources,
            pause_writers=pause,
            now=ctx.clock(),
            meter=ctx.progress,
            stop=stop,
            manual=ctx.trigger is RunTrigger.MANUAL,
        ),
    )
    stats = _stats(created)
    log.info(
        "backup.created",
        name=created.backup.name,
        size=created.archive_size,
        paused_ms=created.manifest.pause.held_ms,
        pruned=stats["pruned"],
    )
    pause_text = (
        f"writers paused {created.manifest.pause.held_ms:.0f} ms"
        if created.manifest.pause.paused
        else "memory store not open, no pause"
    )
    summary = (
        f"{created.backup.name}: {count(len(created.manifest.files), 'file')},"
        f" {_mib(created.manifest.total_bytes)} -> {_mib(created.archive_size)}, verified,"
        f" {pause_text}; {len(stats['pruned'])} pruned"
    )
    return JobResult(summary=summary, stats=stats)


async def drill(ctx: JobContext) -> JobResult:
    config = _config(ctx)
    repo = BackupDir(config.dir)
    keys = Keys(config.passphrase, config.key_file)
    backup = await asyncio.to_thread(repo.get, None)
    report: CopyReport = await in_thread(
        ctx,
        lambda stop: verify(
            repo,
            backup,
            keys,
            ctx.clock(),
            ctx.progress,
            prefix=".drill-",
            stop=stop,
            by="restore drill",
        ),
    )
    if not report.ok:
        raise RuntimeError(f"restore drill of {report.summary()}")
    log.info("backup.drilled", name=backup.name, files=report.files, took_ms=report.took_ms)
    return JobResult(summary=f"restored and checked {report.summary()}", stats=report.to_dict())


def _config(ctx: JobContext) -> BackupConfig:
    if ctx.backup is None:
        raise RuntimeError("backups are not configured in this daemon")
    return ctx.backup


def _sources(ctx: JobContext, config: BackupConfig) -> Sources:
    notes = []
    if ctx.memory is None and ctx.memory_error:
        notes.append(f"memory store not open: {ctx.memory_error}")
    elif ctx.memory is not None and ctx.memory.vectors.where.startswith("http"):
        notes.append(
            f"vectors live in the Chroma server {ctx.memory.vectors.where}, not in this backup:"
            " after a restore, `infractl memory reindex` embeds them again"
        )
    if ctx.openclaw is None:
        return Sources(ctx.state_dir, notes=notes)
    home = discover(ctx.openclaw)
    databases = {
        a.id: a.database
        for a in home.agents
        if config.include_openclaw_databases and a.database.is_file()
    }
    return Sources(
        state_dir=ctx.state_dir,
        openclaw_home=ctx.openclaw.home,
        workspaces=[Workspace(a.id, a.workspace) for a in home.agents],
        databases=databases,
        notes=notes,
    )


def _stats(created: Created) -> dict[str, Any]:
    manifest = created.manifest
    copied_ms = created.timings_ms["snapshot_ms"] + created.timings_ms["archive_ms"]
    return {
        "name": created.backup.name,
        "archive": created.backup.archive.name,
        "size": created.archive_size,
        "files": len(manifest.files),
        "bytes": manifest.total_bytes,
        "compression": manifest.compression,
        "encrypted": bool(created.backup.beside and created.backup.beside.encryption),
        "pause": manifest.pause.model_dump(),
        "memory": manifest.memory.model_dump() if manifest.memory else None,
        "skipped": len(manifest.skipped),
        "skipped_examples": [s.model_dump() for s in manifest.skipped[:10]],
        "notes": manifest.notes,
        "verified": {"files": created.check.files, "chroma": created.check.chroma},
        "timings_ms": created.timings_ms,
        "throughput_mib_s": round(manifest.total_bytes / 2**20 / max(copied_ms / 1000, 1e-3), 1),
        "leftovers_removed": created.leftovers,
        "pruned": list(created.pruned.remove) if created.pruned else [],
    }


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"
