"""A synthesis asked for by hand covers the seven days up to now; the Monday one, last week."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.sample.writer import OpenClawWriter
from jobs.base import JobContext
from jobs.outbox import StoreOutbox
from jobs.synthesize import run
from stores.coordination.digest_notes import read_digest
from stores.coordination.feedback import FeedbackStore
from stores.coordination.mistakes import MistakeStore, manual_mistake
from stores.runlog import RunTrigger
from tests.memory_fixtures import Harness, HashedWords, hashed_words_are_not_rebuilt
from tests.test_synthesize import DAY, NOW

pytestmark = hashed_words_are_not_rebuilt


class Fresh:
    def __init__(self, root: Path) -> None:
        writer = OpenClawWriter(root / "openclaw")
        writer.add_agent("main", "Juniper", "Dana")
        self.h = Harness.open(writer.home, root / "state", HashedWords())
        self.mistakes = MistakeStore(root / "state" / "mistakes.sqlite")
        self.feedback = FeedbackStore(root / "state" / "feedback.sqlite")

    def ctx(self, trigger: RunTrigger) -> JobContext:
        return replace(
            self.h.context(),
            clock=lambda: NOW,
            mistakes=self.mistakes,
            feedback=self.feedback,
            outbox=StoreOutbox(self.feedback, lambda: NOW),
            trigger=trigger,
        )

    def note(self) -> str | None:
        return read_digest(self.h.home / "workspace", "weekly", DAY)

    def close(self) -> None:
        self.h.close()
        self.mistakes.close()
        self.feedback.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Fresh]:
    world = Fresh(tmp_path)
    try:
        yield world
    finally:
        world.close()


async def test_a_mistake_recorded_just_now_is_in_a_manual_synthesis(fresh: Fresh) -> None:
    """`infractl mistake add` then `infractl trigger synthesize`: the week is up to now."""
    just_now = manual_mistake("main", "Sent the invoice to the wrong client", NOW - timedelta(1e-3))
    fresh.mistakes.add([just_now], NOW)
    scheduled = await run(fresh.ctx(RunTrigger.SCHEDULE))
    assert scheduled.summary == "no mistakes this week", "Monday's run is about last week"
    manual = await run(fresh.ctx(RunTrigger.MANUAL))
    assert manual.summary == "1 mistake, 1 pattern, 1 note (1 extractive)"
    note = fresh.note()
    assert note is not None
    assert "Sent the invoice to the wrong client" in note
    assert "week 2026-03-09 to 2026-03-16" in note


async def test_a_manual_synthesis_leaves_out_what_is_older_than_a_week(fresh: Fresh) -> None:
    old = manual_mistake("main", "Forgot the dentist", NOW - timedelta(days=7, minutes=1))
    fresh.mistakes.add([old], NOW)
    manual = await run(fresh.ctx(RunTrigger.MANUAL))
    assert manual.summary == "no mistakes this week"
