"""The daily sync on real stores and real note files with an injected clock; the announcement
goes to a fake ``openclaw`` executable that records its arguments (tests/fake_openclaw)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.sample.writer import OpenClawWriter
from jobs.base import JobContext, SyncConfig
from jobs.sync import run
from stores.coordination.digest_notes import read_digest
from stores.coordination.drops import DROP_FILE
from stores.coordination.feedback import Choice, FeedbackStore
from stores.coordination.mistakes import MistakeStore
from stores.coordination.signals import SignalKind, SignalPriority, SignalStore, new_signal
from stores.coordination.summary_notes import Origin, SummaryKind, roll_up, write_hour
from stores.hours import hour_window_at
from stores.memory.chunking import chunk_id
from stores.memory.records import Chunk, Write
from tests.memory_fixtures import (
    MAIN_KEY,
    WORK_KEY,
    Harness,
    HashedWords,
    hashed_words_are_not_rebuilt,
)
from tests.support import REPO, base_environ, infractl, running_daemon

pytestmark = hashed_words_are_not_rebuilt

NOW = datetime(2026, 3, 11, 7, 15, tzinfo=UTC)
YESTERDAY = date(2026, 3, 10)
TALK = datetime(2026, 3, 10, 9, 10, tzinfo=UTC)
FAKE = REPO / "tests" / "fake_openclaw"
EXTRACTIVE = Origin(SummaryKind.EXTRACTIVE, "no LLM configured")


@dataclass
class World:
    h: Harness
    writer: OpenClawWriter
    signals: SignalStore
    mistakes: MistakeStore
    feedback: FeedbackStore
    openclaw: Path

    def ctx(self, now: datetime = NOW, **sync: object) -> JobContext:
        config = SyncConfig(openclaw_command=str(self.openclaw))
        config = replace(config, **sync)  # type: ignore[arg-type]
        return replace(
            self.h.context(),
            clock=lambda: now,
            signals=self.signals,
            mistakes=self.mistakes,
            feedback=self.feedback,
            sync=config,
        )

    def note(self, agent: str) -> Path:
        return self.writer.workspace(agent) / "memory" / f"{NOW.date().isoformat()}-sync.md"

    def calls(self) -> list[list[str]]:
        record = Path(f"{self.openclaw}.calls")
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]


def _world(tmp_path: Path, agents: tuple[str, ...] = ("main", "work", "coding")) -> World:
    writer = OpenClawWriter(tmp_path / "openclaw")
    names = {"main": "Juniper", "work": "Ledger", "coding": "Bolt"}
    for agent in agents:
        writer.add_agent(agent, names[agent], "Dana", memory="- Dana likes tea.\n")
    s = writer.new_session("main", TALK)
    s.user("Book Tasca do Chico for Friday")
    s.assistant("Booked Tasca do Chico for Saturday.")
    s.tool("calendar", {"day": "Friday"}, "Error: calendar API timed out", is_error=True)
    writer.write_legacy("main", MAIN_KEY, s)
    if "work" in agents:
        w = writer.new_session("work", TALK)
        w.user("The Q3 report is due on the 5th.")
        w.assistant("Noted: Q3 report due on the 5th.")
        writer.write_sqlite("work", WORK_KEY, [w])
    h = Harness.open(writer.home, tmp_path / "state", HashedWords())
    h.ingest()
    fake = tmp_path / "openclaw-fake"
    shutil.copy(FAKE, fake)
    return World(
        h,
        writer,
        SignalStore(tmp_path / "state" / "signals.sqlite"),
        MistakeStore(tmp_path / "state" / "mistakes.sqlite"),
        FeedbackStore(tmp_path / "state" / "feedback.sqlite"),
        fake,
    )


def _yesterday(world: World) -> None:
    """Work's day was rolled up, main has only hourly sections, coding only a memory record."""
    window = hour_window_at(TALK, UTC)
    writer = world.writer
    write_hour(writer.workspace("work"), window, "- Q3 report due on the 5th.", EXTRACTIVE)
    roll_up(
        writer.workspace("work"),
        YESTERDAY,
        "- The Q3 report is due on the 5th; Priya owns revenue.",
        EXTRACTIVE,
        keep_hours=timedelta(days=7),
        now=NOW,
    )
    write_hour(writer.workspace("main"), window, "- Dinner booked at Tasca do Chico.", EXTRACTIVE)
    start, end = window.timestamps
    chunk = Chunk(
        id=chunk_id("hourly", "coding", window.utc_start.isoformat()),
        kind="hourly",
        agent="coding",
        source="coding:hourly",
        text="[2026-03-10 09:00] (hourly summary)\n- Fixed the flaky login test.",
        search_text="Fixed the flaky login test",
        ts_start=start,
        ts_end=end,
    )
    world.h.store.write(Write(chunks=[chunk]), NOW)


def _signals(world: World) -> str:
    request = new_signal(
        source="work",
        targets=["main"],
        kind=SignalKind.REQUEST,
        text="Draft the Q3 summary",
        now=NOW - timedelta(days=2),
        priority=SignalPriority.HIGH,
    )
    world.signals.add(request, NOW)
    drop = world.writer.workspace("coding") / DROP_FILE
    drop.write_text(json.dumps({"to": "all", "kind": "warning", "text": "CI is red"}) + "\n")
    return request.id


def _useful(world: World) -> None:
    fb = world.feedback
    fb.add_recommendation("Walk after lunch", "Ten minutes.", "synthesize", NOW, id="wk-walk")
    fb.start_delivery("wk-walk", NOW - timedelta(hours=20))
    fb.record_choice("wk-walk", 1, Choice.USEFUL, 1, NOW - timedelta(hours=10))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = _world(tmp_path)
    _yesterday(w)
    _signals(w)
    _useful(w)
    try:
        yield w
    finally:
        w.h.close()
        w.signals.close()
        w.mistakes.close()
        w.feedback.close()


async def test_each_agent_gets_its_digest(world: World) -> None:
    memory_md = world.writer.workspace("main") / "MEMORY.md"
    before = memory_md.read_bytes()
    result = await run(world.ctx())
    stats = result.stats
    assert (stats["agents"], stats["notes_written"], stats["signals_collected"]) == (3, 3, 1)
    main = read_digest(world.writer.workspace("main"), "sync", NOW.date())
    assert main is not None
    assert main.startswith("## Juniper (main), 2026-03-11")
    assert "### Yesterday in the other agents (2026-03-10)" in main
    assert "#### Ledger (work), from its day summary\n\n- The Q3 report is due" in main
    assert "#### Bolt (coding), from its memory" in main
    assert "Fixed the flaky login test" in main
    assert "Tasca do Chico" not in main, "its own day is not repeated to it"
    assert "- **request** (high) from work: Draft the Q3 summary" in main
    assert "- **warning** (normal) from coding: CI is red" in main
    assert "1. [high] Draft the Q3 summary — request from work, open since 2026-03-09" in main
    walk = "2. [normal] Walk after lunch — recommendation (synthesize) marked useful on 2026-03-10"
    assert walk in main
    assert "- useful: Walk after lunch (synthesize)" in main
    work = read_digest(world.writer.workspace("work"), "sync", NOW.date())
    assert work is not None
    assert "#### Juniper (main), from its hourly notes" in work
    assert "Dinner booked at Tasca do Chico" in work
    assert "Draft the Q3 summary" not in work.split("### Signals")[1].split("### Priorities")[0]
    assert memory_md.read_bytes() == before
    assert world.note("main").read_text().startswith("# Daily sync 2026-03-11\n\n<!-- ")


async def test_the_day_is_the_persons_day_not_utcs(world: World) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # 01:00 on the 11th in Tokyo
    await run(replace(world.ctx(now), tz=tokyo))
    main = read_digest(world.writer.workspace("main"), "sync", date(2026, 3, 11))
    assert main is not None, "dated by the day where the person is"
    assert main.startswith("## Juniper (main), 2026-03-11")
    assert "### Yesterday in the other agents (2026-03-10)" in main
    assert read_digest(world.writer.workspace("main"), "sync", date(2026, 3, 10)) is None


async def test_the_digests_are_memories_and_survive_a_reset(world: World) -> None:
    await run(world.ctx())
    store = world.h.store
    ids = sorted(store.index.ids_where(kind="sync"))
    assert ids == sorted(chunk_id("sync", a, "2026-03-11") for a in ("main", "work", "coding"))
    main_id = chunk_id("sync", "main", "2026-03-11")
    assert store.index.chunks([main_id])[main_id].path == str(world.note("main"))
    store.reset()
    assert sorted(store.index.ids_where(kind="sync")) == ids
    assert store.index.ids_where(kind="hourly"), "kept too"
    assert not store.index.ids_where(kind="turns")


async def test_each_agent_is_told_once_in_its_own_session(world: World) -> None:
    result = await run(world.ctx())
    assert result.stats["announce"] == {"status": "sent", "detail": ""}
    calls = world.calls()
    assert [c[-1] for c in calls] == ["agent:main:main", "agent:work:main", "agent:coding:main"]
    for call in calls:
        assert call[:3] == ["system", "event", "--text"]
        assert call[4:7] == ["--mode", "now", "--session-key"]
        assert "memory/2026-03-11-sync.md" in call[3]


async def test_a_rerun_replaces_the_section_and_keeps_what_the_agent_added(world: World) -> None:
    await run(world.ctx())
    note = world.note("main")
    first = note.read_bytes()
    again = await run(world.ctx(NOW + timedelta(hours=1)))
    assert (again.stats["notes_written"], again.stats["notes_unchanged"]) == (0, 3)
    assert again.stats["announce"]["status"] == "skipped"
    assert note.read_bytes() == first
    assert len(world.calls()) == 3
    with note.open("a") as handle:
        handle.write("Juniper: read this at breakfast.\n")
    world.signals.add(
        new_signal(
            source="work", targets=["main"], kind=SignalKind.FACT, text="Omar joins", now=NOW
        ),
        NOW,
    )
    third = await run(world.ctx(NOW + timedelta(hours=2)))
    assert third.stats["notes_written"] == 1
    text = note.read_text()
    assert text.count("<!-- openclaw-infra sync 2026-03-11 -->") == 1
    assert "Omar joins" in text
    assert text.endswith("Juniper: read this at breakfast.\n")
    assert world.calls()[3:] == [world.calls()[0]]  # only main's note changed


@pytest.mark.parametrize(
    ("env", "within", "status", "detail"),
    [
        ({"OPENCLAW_FAKE_EXIT": "3"}, 30, "failed", "exited with 3: gateway closed (1006)"),
        ({"OPENCLAW_FAKE_SLEEP": "5"}, 0.3, "timeout", "no answer within 0.3s"),
    ],
)
async def test_a_failing_announcement_is_reported_not_raised(  # noqa: PLR0917 - parametrized
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    within: float,
    status: str,
    detail: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = await run(world.ctx(announce_timeout=timedelta(seconds=within)))
    assert result.stats["notes_written"] == 3
    assert result.stats["announce"]["status"] == status
    assert detail in result.stats["announce"]["detail"]


async def test_a_missing_openclaw_or_announcing_off(world: World, tmp_path: Path) -> None:
    missing = await run(world.ctx(openclaw_command=str(tmp_path / "no-such-openclaw")))
    assert missing.stats["announce"]["status"] == "missing"
    assert missing.stats["announce"]["detail"].endswith("no-such-openclaw: command not found")
    world.note("main").unlink()
    off = await run(world.ctx(announce=False))
    assert (off.stats["notes_written"], off.stats["announce"]["status"]) == (1, "off")
    assert world.calls() == []


async def test_a_lone_agent_still_gets_its_digest(tmp_path: Path) -> None:
    w = _world(tmp_path, agents=("main",))
    try:
        _useful(w)
        result = await run(w.ctx())
        assert result.stats["notes_written"] == 1
        text = read_digest(w.writer.workspace("main"), "sync", NOW.date())
        assert text is not None
        assert "Yesterday in the other agents" not in text
        assert "### Signals for you\n\n- none" in text
        assert "1. [normal] Walk after lunch" in text
    finally:
        w.h.close()
        w.signals.close()
        w.mistakes.close()
        w.feedback.close()


async def test_the_sync_finds_new_mistakes_and_skips_agents_without_a_workspace(
    world: World,
) -> None:
    (world.writer.home / "agents" / "ghost" / "sessions").mkdir(parents=True)
    result = await run(world.ctx())
    assert result.stats["mistakes_found"] == 1
    (mistake,) = world.mistakes.mistakes()
    assert mistake.reason == "tool calendar failed"
    assert result.stats["skipped"] == [
        f"ghost: no workspace at {world.writer.home / 'workspace-ghost'}"
    ]
    assert not (world.writer.home / "workspace-ghost").exists()


async def test_bad_drop_lines_are_in_the_stats(world: World) -> None:
    drop = world.writer.workspace("work") / DROP_FILE
    drop.write_text('{"to": "main", "kind": "fact"}\n')
    result = await run(world.ctx())
    assert result.stats["drop_problems"] == 1
    (line,) = result.stats["drop_problem_lines"]
    assert line.startswith(f"{drop}:1: bad_entry: text:")


# --- the real daemon ----------------------------------------------------------------------


def test_sync_from_the_shell(root: Path) -> None:
    writer = OpenClawWriter(root / "openclaw")
    writer.add_agent("main", "Juniper", "Dana")
    writer.add_agent("work", "Ledger", "Dana")
    fake = root / "openclaw-fake"
    shutil.copy(FAKE, fake)
    env = {
        "OPENCLAW_INFRA_SYNC__OPENCLAW_COMMAND": str(fake),
        "OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false",
    }
    with running_daemon(root, env) as daemon:
        cli = base_environ(root)
        sent = infractl(
            *["signal", "add", "--from", "work", "--to", "main", "--kind", "request"],
            "Draft the Q3 summary",
            env=cli,
        )
        assert sent.returncode == 0, sent.stderr
        done = infractl("trigger", "sync", "--wait", "--json", env=cli, timeout=120)
        assert done.returncode == 0, done.stderr + daemon.log()
        run_record = json.loads(done.stdout)
        assert run_record["stats"]["notes_written"] == 2
        assert run_record["stats"]["announce"]["status"] == "sent"
        today = datetime.fromisoformat(run_record["started_at"]).date().isoformat()
        note = writer.workspace("main") / "memory" / f"{today}-sync.md"
        assert "Draft the Q3 summary" in note.read_text()
        calls = [json.loads(line) for line in Path(f"{fake}.calls").read_text().splitlines()]
        assert [c[:3] for c in calls] == [["system", "event", "--text"]] * 2
        assert sorted(c[-1] for c in calls) == ["agent:main:main", "agent:work:main"]
        found = daemon.call("memory.search", {"query": "Q3 summary", "kind": ["sync"]})
        assert {r["source"]["agent_id"] for r in found["results"]} == {"main", "work"}
        health = infractl("health", "--json", env=cli)
        checks = {c["name"]: c["status"] for c in json.loads(health.stdout)["checks"]}
        assert (checks["db:signals"], checks["db:mistakes"]) == ("ok", "ok")


def test_an_urgent_signal_wakes_its_agents_now(root: Path) -> None:
    """Not only in tomorrow's sync note: each agent it is for is woken in its main session."""
    writer = OpenClawWriter(root / "openclaw")
    for agent in ("main", "work", "coding"):
        writer.add_agent(agent, agent.title(), "Dana")
    fake = root / "openclaw-fake"
    shutil.copy(FAKE, fake)
    env = {
        "OPENCLAW_INFRA_SYNC__OPENCLAW_COMMAND": str(fake),
        "OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false",
    }
    with running_daemon(root, env) as daemon:
        quiet = daemon.call(
            "signal.add", {"from": "work", "to": "main", "kind": "fact", "text": "FYI only"}
        )
        assert quiet["woken"] == {}
        urgent = daemon.call(
            "signal.add",
            {
                "from": "work",
                "to": "all",
                "kind": "warning",
                "text": "The prod database is down",
                "priority": "urgent",
            },
        )
        assert urgent["woken"] == {
            "main": {"status": "sent", "detail": ""},
            "coding": {"status": "sent", "detail": ""},
        }
        calls = [json.loads(line) for line in Path(f"{fake}.calls").read_text().splitlines()]
        assert sorted(c[-1] for c in calls) == ["agent:coding:main", "agent:main:main"]
        assert all("The prod database is down" in c[3] for c in calls)
        assert daemon.stop() == 0
