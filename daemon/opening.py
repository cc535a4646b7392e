"""Opening the daemon's stores and clients from the settings, each safe to start on a bad day.

A corrupt database is moved aside (kept, reported) and a fresh one started, so one damaged
file never keeps the daemon down; an LLM without a key is reported, and the jobs fall back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from daemon.config.settings import Settings
from daemon.logs import get_logger
from daemon.paths import ENV_PREFIX
from daemon.server import ConnectionLimits
from jobs.base import HealthConfig, MemoryConfig, SummaryConfig, SyncConfig, SynthesisConfig
from jobs.llm import LLMClient, LLMConfig, LLMNotConfigured
from stores.backup.config import config_from_settings
from stores.childenv import child_environ
from stores.coordination.feedback import FeedbackStore
from stores.coordination.mistakes import MistakeStore
from stores.coordination.signals import SignalStore
from stores.llm_history import LLMHistory
from stores.memory.embedders import make_embedder
from stores.memory.store import MemoryStore
from stores.retention import Retained
from stores.runlog import RunLog
from stores.sqlite import CorruptDatabase, quarantine

log = get_logger(__name__)


def open_memory_store(state_dir: Path, settings: Settings, *, new_embedder: bool) -> MemoryStore:
    """The embedder the settings name, and the store; a corrupt index is kept aside and the
    store starts empty, to be refilled from the transcripts by the next ingest."""
    config = settings.embedder
    embedder = make_embedder(
        config.kind,
        model=config.model,
        base_url=config.base_url,
        api_key=config.api_key.get_secret_value() if config.api_key else None,
        threads=config.threads,
    )
    rest = settings.memory.release_vectors_after
    opening = partial(
        MemoryStore.open,
        state_dir,
        embedder,
        chroma_url=settings.chroma_url,
        release_vectors_after=rest.total_seconds() if rest is not None else None,
    )
    try:
        return opening(allow_new_embedder=new_embedder)
    except CorruptDatabase as exc:
        kept = quarantine(state_dir / "memory.sqlite")
        log.error("memory.index_corrupt", kept_as=str(kept), error=str(exc))
        return opening(allow_new_embedder=True)


def open_run_log(path: Path) -> RunLog:
    """Open the run history; a corrupt file is moved aside (kept, reported), never reused."""
    try:
        return RunLog(path)
    except CorruptDatabase as exc:
        kept = quarantine(path)
        log.error("runlog.corrupt", path=str(path), kept_as=str(kept), error=str(exc))
        return RunLog(path)


_Store = TypeVar("_Store", SignalStore, MistakeStore)


def open_sqlite_store(factory: Callable[[Path], _Store], path: Path, name: str) -> _Store:
    """Like the run history: a corrupt file is moved aside (kept, reported) and a fresh one
    started."""
    try:
        return factory(path)
    except CorruptDatabase as exc:
        kept = quarantine(path)
        log.error(f"{name}.corrupt", path=str(path), kept_as=str(kept), error=str(exc))
        return factory(path)


def job_settings(settings: Settings, state_dir: Path) -> dict[str, Any]:
    """The JobContext fields that are the jobs' own settings."""
    jobs, memory = settings.jobs, settings.memory
    return {
        "health": HealthConfig(
            min_free_disk_bytes=settings.min_free_disk_mb * 2**20,
            keep_history=jobs.health.keep_history,
        ),
        "memory_config": MemoryConfig(memory.window_turns, memory.window_stride),
        "backup": config_from_settings(settings.backup, state_dir),
        "prompting": {
            "summarize": jobs.summarize.prompting,
            "synthesize": jobs.synthesize.prompting,
        },
        "summaries": SummaryConfig(
            keep_hourly_for=jobs.summarize.keep_hourly_for, catch_up=jobs.summarize.catch_up
        ),
    }


def sync_context(
    settings: Settings, signals: SignalStore, mistakes: MistakeStore
) -> dict[str, Any]:
    """The JobContext fields of the sync and synthesize jobs."""
    sync, synthesize = settings.sync, settings.jobs.synthesize
    return {
        "signals": signals,
        "mistakes": mistakes,
        "sync": SyncConfig(
            openclaw_command=sync.openclaw_command,
            announce=sync.announce,
            announce_timeout=sync.announce_timeout,
            signal_ttl=sync.signal_ttl,
            wake_on=sync.wake_on,
            child_env=child_environ(
                os.environ,
                secrets=settings.secrets(),
                extra={"OPENCLAW_STATE_DIR": str(settings.resolved_openclaw_state_dir())},
            ),
        ),
        "synthesis": SynthesisConfig(
            similarity=synthesize.similarity, max_recommendations=synthesize.max_recommendations
        ),
    }


def retention_table(
    settings: Settings, run_log: RunLog, llm_history: LLMHistory, signals: SignalStore
) -> tuple[Retained, ...]:
    """What the ``retention`` job prunes and ``status`` shows: one line per store."""
    keep = settings.retention
    setting = f"{ENV_PREFIX}RETENTION__"
    runs = partial(run_log.prune, keep_last=keep.keep_runs_per_job)
    return (
        Retained("runs", keep.runs, runs, run_log.count_runs, run_log, f"{setting}RUNS"),
        Retained(
            "llm_history",
            keep.llm_history,
            llm_history.prune,
            llm_history.count,
            llm_history,
            f"{setting}LLM_HISTORY",
        ),
        Retained(
            "signals", keep.signals, signals.prune, signals.count, signals, f"{setting}SIGNALS"
        ),
    )


def socket_limits(settings: Settings) -> ConnectionLimits:
    limits = settings.socket
    return ConnectionLimits(
        max_connections=limits.max_connections,
        max_per_peer=limits.max_per_peer,
        idle_timeout=limits.idle_timeout.total_seconds(),
    )


def llm_config(settings: Settings) -> LLMConfig:
    key = settings.anthropic_api_key
    llm = settings.llm
    return LLMConfig(
        api_key=key.get_secret_value() if key else None,
        base_url=settings.anthropic_base_url,
        model=llm.model,
        max_tokens=llm.max_tokens,
        timeout_s=llm.timeout.total_seconds(),
        max_retries=llm.max_retries,
        input_usd_per_mtok=llm.input_usd_per_mtok,
        output_usd_per_mtok=llm.output_usd_per_mtok,
        send_temperature=llm.send_temperature,
        api_version=llm.api_version,
    )


def open_llm(settings: Settings) -> tuple[LLMClient | None, str | None]:
    """The Anthropic client, or why there is none (no key: jobs fall back to extractive)."""
    try:
        client = LLMClient(llm_config(settings))
    except LLMNotConfigured as exc:
        log.info("llm.off", reason=exc.message)
        return None, exc.message
    log.info("llm.on", model=settings.llm.model)
    return client, None


def open_llm_history(path: Path) -> LLMHistory:
    """Like the run history: a corrupt file is moved aside and a fresh one started."""
    try:
        return LLMHistory(path)
    except CorruptDatabase as exc:
        kept = quarantine(path)
        log.error("llm_history.corrupt", path=str(path), kept_as=str(kept), error=str(exc))
        return LLMHistory(path)


def open_feedback(path: Path) -> FeedbackStore:
    """Like the run history: a corrupt file is moved aside and a fresh one started."""
    try:
        return FeedbackStore(path)
    except CorruptDatabase as exc:
        kept = quarantine(path)
        log.error("feedback.corrupt", path=str(path), kept_as=str(kept), error=str(exc))
        return FeedbackStore(path)
