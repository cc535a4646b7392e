"""Retention: each store deletes what is older than its setting, keeps what it must (each job's
newest runs and last failure, open signals), in batches, and the files shrink on disk. Real
SQLite in a temporary directory, an injected clock; one run of the real daemon for status."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram import Chat, Message, Update, User
from telegram.ext import ApplicationHandlerStop

from daemon.bot.handlers import Allowlist, Handlers
from daemon.opening import retention_table
from jobs import retention
from jobs.base import HealthConfig, JobContext
from stores.coordination.signals import SignalKind, SignalStore, new_signal
from stores.llm_history import LLMHistory
from stores.retention import Retained
from stores.runlog import RunLog, RunStatus, RunTrigger
from tests.support import infractl, running_daemon, settings_for

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def run_at(log: RunLog, job: str, at: datetime, status: RunStatus, stats: Any = None) -> int:
    run_id = log.start_run(job, RunTrigger.SCHEDULE, at, at)
    if status is not RunStatus.RUNNING:
        log.finish_run(run_id, status, at + timedelta(seconds=1), stats=stats)
    return run_id


def prune_all(rule: Callable[[datetime, int], int], before: datetime, batch: int = 7) -> int:
    removed = 0
    while (n := rule(before, batch)) == batch:
        removed += n
    return removed + n


@pytest.fixture
def run_log(tmp_path: Path) -> Iterator[RunLog]:
    log = RunLog(tmp_path / "runs.sqlite")
    yield log
    log.close()


def test_old_runs_go_but_each_jobs_newest_runs_and_last_failure_stay(run_log: RunLog) -> None:
    start = NOW - timedelta(days=200)
    ingest = [
        run_at(
            run_log,
            "ingest",
            start + timedelta(hours=12 * n),
            RunStatus.FAILED if n in (3, 5) else RunStatus.SUCCESS,
        )
        for n in range(400)  # 200 days, two a day
    ]
    backup = [
        run_at(run_log, "backup", start + timedelta(days=n), RunStatus.SUCCESS) for n in (1, 2)
    ]
    stuck = run_at(run_log, "summarize", start, RunStatus.RUNNING)
    before = NOW - timedelta(days=90)

    removed = prune_all(lambda b, n: run_log.prune(b, n, keep_last=100), before)

    kept = {run.run_id for run in run_log.runs(limit=1000)}
    recent = {r for n, r in enumerate(ingest) if start + timedelta(hours=12 * n) >= before}
    assert len(recent) > 100  # so the age, not the count, decides for ingest
    assert kept == recent | {ingest[5]} | set(backup) | {stuck}
    assert removed == len(ingest) - len(recent) - 1
    assert run_log.count_runs() == len(kept)
    assert run_log.state("ingest").last_run_id == ingest[-1]


def test_a_job_that_runs_rarely_keeps_its_last_runs_however_old(run_log: RunLog) -> None:
    old = [
        run_at(run_log, "synthesize", NOW - timedelta(days=400 - n), RunStatus.SUCCESS)
        for n in range(10)
    ]
    assert prune_all(lambda b, n: run_log.prune(b, n, keep_last=3), NOW - timedelta(days=90)) == 7
    assert [r.run_id for r in run_log.runs("synthesize")] == old[:-4:-1]


def test_llm_results_older_than_the_limit_go(tmp_path: Path) -> None:
    history = LLMHistory(tmp_path / "llm.sqlite")
    try:
        for days in (200, 100, 91, 89, 1):
            history.record(
                created_at=NOW - timedelta(days=days), purpose="refine", mode="m", prompt="p"
            )
        assert prune_all(history.prune, NOW - timedelta(days=90), batch=2) == 3
        assert history.count() == 2
    finally:
        history.close()


def test_closed_signals_go_open_ones_stay_and_pruned_drop_lines_stay_gone(tmp_path: Path) -> None:
    store = SignalStore(tmp_path / "signals.sqlite")
    try:
        long_ago = NOW - timedelta(days=60)

        def signal(text: str, origin: str = "cli", ttl: timedelta | None = None) -> Any:
            return new_signal(
                source="main",
                targets=["work"],
                kind=SignalKind.FACT,
                text=text,
                now=long_ago,
                ttl=ttl,
                origin=origin,
            )

        resolved = signal("resolved long ago")
        expired = signal("expired long ago", "main/memory/signals.jsonl:1", timedelta(days=2))
        open_forever = signal("still open")
        fresh = signal("resolved yesterday")
        for s in (resolved, expired, open_forever, fresh):
            store.add(s, long_ago)
        store.resolve(resolved.id, long_ago + timedelta(days=1))
        store.resolve(fresh.id, NOW - timedelta(days=1))

        assert prune_all(store.prune, NOW - timedelta(days=30), batch=1) == 2
        assert {s.id for s in store.signals(NOW, include_closed=True)} == {
            open_forever.id,
            fresh.id,
        }
        # The drop file read again from its start: the pruned line does not come back.
        assert store.add_from_drop("main", [expired], None, NOW) == 0
        assert store.count() == 2
    finally:
        store.close()


def context(tmp_path: Path, rules: tuple[Retained, ...], run_log: RunLog) -> JobContext:
    return JobContext(
        clock=lambda: NOW,
        tz=ZoneInfo("UTC"),
        state_dir=tmp_path,
        run_log=run_log,
        scheduler=None,  # type: ignore[arg-type]  # the retention job does not look at it
        health=HealthConfig(min_free_disk_bytes=0),
        retention=rules,
    )


async def test_the_job_prunes_every_store_in_the_table_and_the_files_shrink(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, OPENCLAW_INFRA_RETENTION__KEEP_RUNS_PER_JOB="10")
    run_log = RunLog(tmp_path / "runs.sqlite")
    history = LLMHistory(tmp_path / "llm.sqlite")
    signals = SignalStore(tmp_path / "signals.sqlite")
    try:
        fat = {"detail": "x" * 4000}  # what a looping watcher's runs added up to
        for n in range(3000):
            run_at(run_log, "ingest", NOW - timedelta(days=200, minutes=-n), RunStatus.SUCCESS, fat)
        rules = retention_table(settings, run_log, history, signals)
        assert [(r.name, r.keep) for r in rules] == [
            ("runs", timedelta(days=90)),
            ("llm_history", timedelta(days=90)),
            ("signals", timedelta(days=30)),
        ]
        grown = run_log.file_bytes()

        result = await retention.run(context(tmp_path, rules, run_log))

        stores = result.stats["stores"]
        assert stores["runs"]["removed"] == 2990
        assert stores["runs"]["held"] == 10
        assert (stores["llm_history"]["removed"], stores["signals"]["removed"]) == (0, 0)
        runs_file = result.stats["files"]["runs.sqlite"]
        assert runs_file["how"] == "vacuum"
        assert run_log.file_bytes() == runs_file["bytes_after"] < grown / 10
        assert result.stats["files"]["llm.sqlite"]["how"] == "not worth it"

        for n in range(3000):  # and again: now the file takes back space a little at a time
            run_at(run_log, "ingest", NOW - timedelta(days=100, minutes=-n), RunStatus.SUCCESS, fat)
        again = await retention.run(context(tmp_path, rules, run_log))
        assert again.stats["files"]["runs.sqlite"]["how"] == "incremental vacuum"
        assert run_log.file_bytes() < grown / 5
    finally:
        for store in (run_log, history, signals):
            store.close()


def test_a_new_store_joins_with_one_line(tmp_path: Path, run_log: RunLog) -> None:
    """What another table (say, a health history) needs: one entry; the job does the rest."""
    calls: list[tuple[datetime, int]] = []

    def prune(before: datetime, limit: int) -> int:
        calls.append((before, limit))
        return 0

    rule = Retained("health_history", timedelta(days=14), prune, lambda: 5, run_log)
    result = asyncio.run(retention.run(context(tmp_path, (rule,), run_log)))
    assert calls == [(NOW - timedelta(days=14), retention.BATCH)]
    assert result.stats["stores"]["health_history"]["held"] == 5


def test_strangers_are_remembered_only_for_the_minute_their_log_line_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    handlers = Handlers(
        call=None,  # type: ignore[arg-type]  # the gate calls nothing
        allowlist=Allowlist(frozenset({1}), frozenset()),
        signer=None,  # type: ignore[arg-type]
        voice=None,  # type: ignore[arg-type]
        clock=lambda: NOW,
        zone=ZoneInfo("UTC"),
        refine=False,
    )

    async def stranger(user_id: int) -> None:
        user = User(id=user_id, first_name="x", is_bot=False)
        message = Message(1, NOW, Chat(user_id, "private"), from_user=user, text="hi")
        with pytest.raises(ApplicationHandlerStop):
            await handlers.gate(Update(user_id, message=message), None)  # type: ignore[arg-type]

    async def flood() -> list[int]:
        sizes = []
        for minute in range(10):
            clock[0] += 61
            for n in range(300):
                await stranger(10_000 * minute + n + 2)
            sizes.append(len(handlers._refused_logged))
        return sizes

    sizes = asyncio.run(flood())
    assert max(sizes) <= 2 * 300, sizes  # not 3,000: the earlier minutes' strangers went


# --- the daemon: triggered, and shown in status ----------------------------------------------


@pytest.fixture
def daemon_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ocr-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_status_shows_each_stores_retention_and_the_last_prune(daemon_root: Path) -> None:
    env = {"OPENCLAW_INFRA_RETENTION__SIGNALS": "12d"}
    with running_daemon(daemon_root, env) as daemon:
        before = daemon.call("status")["retention"]
        assert [(s["name"], s["keep"], s["last_pruned_at"]) for s in before] == [
            ("runs", "90d", None),
            ("llm_history", "90d", None),
            ("signals", "12d", None),
        ]
        run = daemon.call("trigger", {"job": "retention", "wait": True, "timeout": 60})
        assert run["status"] == "success", run
        after = {s["name"]: s for s in daemon.call("status")["retention"]}
        assert after["runs"]["rows"] >= 1
        assert after["runs"]["last_pruned_at"] == run["finished_at"]
        assert after["runs"]["last_removed"] == 0
        assert after["signals"]["setting"] == "OPENCLAW_INFRA_RETENTION__SIGNALS"
        shown = infractl("status", env={"OPENCLAW_INFRA_SOCKET_PATH": os.fspath(daemon.socket)})
        assert shown.returncode == 0, shown.stderr
        assert "keep     signals 12d:" in shown.stdout
        as_json = json.loads(
            infractl(
                "status", "--json", env={"OPENCLAW_INFRA_SOCKET_PATH": os.fspath(daemon.socket)}
            ).stdout
        )
        assert as_json["retention"][0]["name"] == "runs"
