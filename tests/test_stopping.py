"""One way to stop a long job: the run's stop token, set by the runner, seen by the worker thread.

A run that times out is over only when its thread has stopped: nothing is written after the run
is recorded. The embedder here is held at its first call until the runner has asked the run to
stop, so the order of events is set by the test, not by a clock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.runner import JobRunner
from daemon.sample.writer import OpenClawWriter
from jobs import ingest
from jobs.base import JobSpec
from stores.memory.embeddings import FloatArray
from stores.redaction import Redactor
from stores.runlog import RunStatus, RunTrigger
from stores.stopping import Stopped, StopToken, check
from tests.inprocess import settle
from tests.memory_fixtures import SAMPLE_TODAY, Harness, HashedWords, hashed_words_are_not_rebuilt

pytestmark = hashed_words_are_not_rebuilt


class HeldEmbedder(HashedWords):
    """Its first ``embed`` waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.reached, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> FloatArray:
        self.calls += 1
        if self.calls == 1:
            self.reached.set()
            assert self.release.wait(30)
        return super().embed(texts)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    writer = OpenClawWriter(tmp_path / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    session = writer.new_session("main", SAMPLE_TODAY - timedelta(days=1))
    for n in range(600):  # ~300 windows: more than one slice of the embedding loop
        if n % 2:
            session.assistant(f"answer {n} about the ferry timetable")
        else:
            session.user(f"question {n} about the ferry timetable")
    writer.write_legacy("main", "agent:main:main", session)
    harness = Harness.open(writer.home, tmp_path / "state", HeldEmbedder())
    yield harness
    harness.close()


@dataclass
class Watched:
    """The ingest worker as the runner runs it: when it ended, what it raised, and whether it
    had ended when the run was recorded."""

    ended: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    ended_when_recorded: list[bool] = field(default_factory=list)


def watch(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, *, hold_until_stopped: bool = False
) -> Watched:
    watched = Watched()
    real_run = ingest.Ingest.run

    def watched_run(self: ingest.Ingest) -> Any:
        try:
            if hold_until_stopped and not watched.ended.is_set():
                assert self.ctx.stop.wait(30)  # still working when the timeout fires
            return real_run(self)
        except BaseException as exc:
            watched.errors.append(exc)
            raise
        finally:
            watched.ended.set()

    monkeypatch.setattr(ingest.Ingest, "run", watched_run)
    real_finish = harness.run_log.finish_run

    def finish_run(*args: Any, **kw: Any) -> Any:
        watched.ended_when_recorded.append(watched.ended.is_set())
        return real_finish(*args, **kw)

    monkeypatch.setattr(harness.run_log, "finish_run", finish_run)
    return watched


def runner_for(harness: Harness, timeout: timedelta) -> JobRunner:
    return JobRunner(
        specs={"ingest": JobSpec("ingest", ingest.run, "ingest")},
        timeouts={"ingest": timeout},
        run_log=harness.run_log,
        context=harness.context(),
        clock=lambda: harness.clock,
        redactor=Redactor([]),
    )


async def test_a_timed_out_ingest_stops_its_thread_before_the_run_is_recorded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = watch(harness, monkeypatch, hold_until_stopped=True)
    runner = runner_for(harness, timedelta(milliseconds=50))
    entry = await runner.start("ingest", RunTrigger.MANUAL)
    run = await entry.task

    assert run.status is RunStatus.TIMEOUT
    assert entry.stop.is_set()
    assert watched.ended_when_recorded == [True]  # the thread had stopped when recorded
    assert [type(e) for e in watched.errors] == [Stopped]
    assert harness.store.stats().chunks == 0  # it stopped before its first step: no writes


async def test_a_stopping_daemon_stops_an_ingest_between_two_slices(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = harness.store.embedder
    assert isinstance(embedder, HeldEmbedder)
    watched = watch(harness, monkeypatch)
    runner = runner_for(harness, timedelta(minutes=10))
    entry = await runner.start("ingest", RunTrigger.MANUAL)
    await asyncio.to_thread(embedder.reached.wait, 30)
    draining = asyncio.create_task(runner.drain(timedelta(0)))
    await settle(entry.stop.is_set)
    assert harness.run_log.run(entry.run_id).status is RunStatus.RUNNING  # not over yet
    embedder.release.set()
    (run,) = await draining

    assert run.status is RunStatus.CANCELLED
    assert watched.ended_when_recorded == [True]
    assert [type(e) for e in watched.errors] == [Stopped]
    # The slice under way is finished (its windows' pieces, then its notes: two calls at most);
    # no slice starts after the stop.
    assert embedder.calls <= 2
    stats = harness.store.stats()
    assert 0 < stats.vectors < stats.chunks  # stopped midway; what it stored is whole
    assert stats.to_embed == stats.chunks - stats.vectors
    report = harness.ingest()  # the next run goes on where this one stopped
    assert report.embedded == stats.to_embed
    assert harness.store.stats().vectors == stats.chunks


def test_a_token_says_why_it_was_set() -> None:
    token = StopToken()
    token.check()
    check(None)
    token.stop("still running after 0:10:00; cancelled")
    token.stop("the daemon stopped")  # the first reason is the one that counts
    with pytest.raises(Stopped, match="still running after"):
        token.check()
    with pytest.raises(Stopped, match="still running after"):
        check(token)
    plain = threading.Event()
    plain.set()
    with pytest.raises(Stopped, match="stopped"):
        check(plain)
