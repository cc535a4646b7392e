"""Cross-agent signals: the store, the drop files agents write, priorities, and the
``infractl signal`` / ``infractl priorities`` commands against the real daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.sample.writer import OpenClawWriter
from stores.coordination.drops import DROP_FILE, collect, read_drop_file
from stores.coordination.feedback import Choice, FeedbackStore
from stores.coordination.mistakes import MistakeStore
from stores.coordination.priorities import load_priorities
from stores.coordination.signals import (
    DEFAULT_TTL,
    CrossAgentSignal,
    SignalKind,
    SignalPriority,
    SignalStore,
    new_signal,
    parse_expiry,
)
from stores.openclaw.home import discover
from stores.openclaw.problems import ProblemKind
from tests.support import base_environ, infractl, running_daemon

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
AGENTS = ("main", "work", "coding")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SignalStore]:
    s = SignalStore(tmp_path / "signals.sqlite")
    try:
        yield s
    finally:
        s.close()


def _request(
    text: str,
    *,
    to: tuple[str, ...] = ("main",),
    now: datetime = NOW,
    priority: SignalPriority = SignalPriority.NORMAL,
    ttl: timedelta | None = DEFAULT_TTL,
) -> CrossAgentSignal:
    return new_signal(
        source="work",
        targets=to,
        kind=SignalKind.REQUEST,
        text=text,
        now=now,
        priority=priority,
        ttl=ttl,
    )


# --- the store ------------------------------------------------------------------------------


def test_a_signal_is_stored_once_and_listed_for_its_targets(store: SignalStore) -> None:
    signal, created = store.add(_request("Draft the Q3 summary"), NOW)
    assert created
    assert len(signal.id) == 12
    assert store.add(signal, NOW) == (signal, False), "the same id again"
    twin, again = store.add(_request("Draft  the Q3 summary", now=NOW + timedelta(hours=1)), NOW)
    assert (twin.id, again) == (signal.id, False), "same words while the first is open"
    assert [s.id for s in store.signals(NOW, to="main")] == [signal.id]
    assert store.signals(NOW, to="coding") == []
    assert [s.id for s in store.signals(NOW, source="work")] == [signal.id]


def test_all_reaches_every_agent_but_the_sender(store: SignalStore) -> None:
    store.add(_request("Freeze deploys on Friday", to=("all", "main")), NOW)
    (signal,) = store.signals(NOW)
    assert signal.targets == ("all",)
    assert signal.addressed_to("main")
    assert signal.addressed_to("coding")
    assert not signal.addressed_to("work")


def test_expiry_and_resolution_close_a_signal(store: SignalStore) -> None:
    short, _ = store.add(_request("Call back", ttl=timedelta(hours=2)), NOW)
    kept, _ = store.add(_request("Keep the budget", ttl=None), NOW)
    later = NOW + timedelta(hours=3)
    assert [s.id for s in store.signals(later)] == [kept.id]
    closed = {s.id: s.state(later) for s in store.signals(later, include_closed=True)}
    assert closed == {short.id: "expired", kept.id: "open"}
    done = store.resolve(kept.id, later, "done on Tuesday")
    assert (done.state(later), done.resolution) == ("resolved", "done on Tuesday")
    assert (
        store.resolve(kept.id, later + timedelta(days=1), "again").resolution == "done on Tuesday"
    )
    assert store.signals(later) == []
    with pytest.raises(KeyError):
        store.resolve("0123456789ab", later)
    again, created = store.add(_request("Keep the budget", now=later), later)
    assert (created, again.id != kept.id) == (True, True), "a resolved request can be asked again"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", NOW + timedelta(days=3)),
        ("12h", NOW + timedelta(hours=12)),
        ("2w", NOW + timedelta(weeks=2)),
        ("never", None),
        ("2026-03-12", datetime(2026, 3, 12, 23, 0, tzinfo=UTC)),  # the day's end in Berlin
        ("2026-03-12T08:30", datetime(2026, 3, 12, 7, 30, tzinfo=UTC)),
        ("2026-03-12T08:30+00:00", datetime(2026, 3, 12, 8, 30, tzinfo=UTC)),
    ],
)
def test_expiry_forms(text: str, expected: datetime | None) -> None:
    assert parse_expiry(text, NOW, ZoneInfo("Europe/Berlin")) == expected


def test_an_unknown_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="soon"):
        parse_expiry("soon", NOW)


# --- drop files -----------------------------------------------------------------------------


def _home(tmp_path: Path) -> OpenClawWriter:
    writer = OpenClawWriter(tmp_path / "openclaw")
    for agent in AGENTS:
        writer.add_agent(agent, agent.title(), "Dana")
    return writer


def _drop(writer: OpenClawWriter, agent: str, *lines: str | Mapping[str, object]) -> Path:
    path = writer.workspace(agent) / DROP_FILE
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def test_a_drop_file_is_read_line_by_line_and_bad_lines_are_named(tmp_path: Path) -> None:
    writer = _home(tmp_path)
    path = _drop(
        writer,
        "work",
        {"to": "main", "kind": "request", "text": "Draft the Q3 summary", "priority": "high"},
        "{not json",
        {"to": "main", "kind": "gossip", "text": "x"},
        {"to": "nobody", "kind": "fact", "text": "x"},
        {"to": "main", "kind": "fact", "text": "x", "from": "main"},
        {"to": "main", "kind": "fact", "text": "x", "colour": "red"},
        "",
        {"to": ["main", "coding"], "kind": "decision", "text": "We ship on Friday", "id": "d1"},
        {"to": "all", "kind": "warning", "text": "API key rotates tonight", "expires": "12h"},
    )
    read = read_drop_file(writer.workspace("work"), "work", None, known_agents=AGENTS, now=NOW)
    assert [(s.kind.value, s.source, s.targets) for s in read.signals] == [
        ("request", "work", ("main",)),
        ("decision", "work", ("coding", "main")),
        ("warning", "work", ("all",)),
    ]
    assert read.signals[0].priority is SignalPriority.HIGH
    assert read.signals[0].expires_at == NOW + timedelta(days=7)
    assert read.signals[2].expires_at == NOW + timedelta(hours=12)
    assert read.signals[0].origin == str(path)
    problems = {p.where: (p.kind, p.detail) for p in read.problems}
    assert problems == {
        f"{path}:2": (ProblemKind.MALFORMED_LINE, problems[f"{path}:2"][1]),
        f"{path}:3": (ProblemKind.BAD_ENTRY, problems[f"{path}:3"][1]),
        f"{path}:4": (ProblemKind.BAD_ENTRY, "no agent nobody (known: coding, main, work)"),
        f"{path}:5": (ProblemKind.BAD_ENTRY, "'from' is 'main', but this is 'work''s workspace"),
        f"{path}:6": (ProblemKind.BAD_ENTRY, "unknown field 'colour'"),
    }
    assert problems[f"{path}:2"][1].startswith("not JSON: ")
    assert problems[f"{path}:3"][1].startswith("kind: Input should be")
    assert read.state is not None
    assert read.state["line_no"] == 9


def test_a_half_written_line_waits_and_nothing_is_read_twice(
    tmp_path: Path, store: SignalStore
) -> None:
    writer = _home(tmp_path)
    path = _drop(writer, "work", {"to": "main", "kind": "fact", "text": "Priya owns revenue"})
    with path.open("a") as handle:
        handle.write('{"to": "main", "kind": "request", "te')
    agents = list(discover(writer.home).agents)
    first = collect(store, agents, NOW)
    assert (first.added, first.lines, first.problems) == (1, 1, ())
    with path.open("a") as handle:
        handle.write('xt": "Send the deck"}\n')
    second = collect(store, agents, NOW + timedelta(minutes=1))
    assert (second.added, second.lines) == (1, 1)
    assert collect(store, agents, NOW + timedelta(minutes=2)).added == 0
    assert sorted(s.text for s in store.signals(NOW, to="main")) == [
        "Priya owns revenue",
        "Send the deck",
    ]


def test_a_rewritten_drop_file_is_read_again_without_duplicates(
    tmp_path: Path, store: SignalStore
) -> None:
    writer = _home(tmp_path)
    line = {"to": "main", "kind": "fact", "text": "Priya owns revenue", "created": NOW.isoformat()}
    path = _drop(writer, "work", line)
    agents = list(discover(writer.home).agents)
    assert collect(store, agents, NOW).added == 1
    # The agent starts the file over, the old line now second: read from the start again.
    path.write_text(json.dumps({**line, "text": "And Omar QA"}) + "\n" + json.dumps(line) + "\n")
    again = collect(store, agents, NOW + timedelta(minutes=5))
    assert again.added == 1
    assert [p.kind for p in again.problems] == [ProblemKind.FILE_REPLACED]
    assert len(store.signals(NOW, include_closed=True)) == 2


def test_the_same_line_appended_again_later_is_a_new_signal(
    tmp_path: Path, store: SignalStore
) -> None:
    writer = _home(tmp_path)
    warning = {"to": "main", "kind": "warning", "text": "CI is red", "expires": "1d"}
    path = _drop(writer, "coding", warning)
    agents = list(discover(writer.home).agents)
    assert collect(store, agents, NOW).added == 1
    later = NOW + timedelta(days=14)  # the first one has expired
    _drop(writer, "coding", warning)
    assert collect(store, agents, later).added == 1, "red again is news again"
    assert [s.created_at for s in store.signals(later, to="main")] == [later]
    # Rewritten whole with the same two lines (a new file): nothing is new.
    path.write_text(path.read_text())
    assert collect(store, agents, later + timedelta(minutes=1)).added == 0


def test_a_drop_file_date_ends_at_midnight_where_the_person_is(tmp_path: Path) -> None:
    writer = _home(tmp_path)
    _drop(
        writer,
        "work",
        {"to": "main", "kind": "fact", "text": "Offsite week", "expires": "2026-03-12"},
        {"to": "main", "kind": "fact", "text": "Call", "expires": "2026-03-11T09:30"},
    )
    zone = ZoneInfo("America/Los_Angeles")
    read = read_drop_file(
        writer.workspace("work"), "work", None, known_agents=AGENTS, now=NOW, zone=zone
    )
    assert [s.expires_at for s in read.signals] == [
        datetime(2026, 3, 13, 7, 0, tzinfo=UTC),  # midnight in Los Angeles (PDT from 8 March)
        datetime(2026, 3, 11, 16, 30, tzinfo=UTC),
    ]


def test_without_a_drop_file_nothing_happens(tmp_path: Path, store: SignalStore) -> None:
    writer = _home(tmp_path)
    collected = collect(store, list(discover(writer.home).agents), NOW)
    assert (collected.added, collected.lines, collected.problems) == (0, 0, ())
    assert store.drop_state("work") is None


# --- priorities -----------------------------------------------------------------------------


def test_priorities_rank_open_requests_by_priority_then_age(
    tmp_path: Path, store: SignalStore
) -> None:
    old = NOW - timedelta(days=3)
    store.add(_request("Old normal", now=old), NOW)
    store.add(_request("New urgent", priority=SignalPriority.URGENT), NOW)
    store.add(_request("New normal"), NOW)
    store.add(_request("For coding", to=("coding",), priority=SignalPriority.HIGH), NOW)
    store.add(_request("Gone", now=old, ttl=timedelta(days=1)), NOW)
    fact = new_signal(source="work", targets=["main"], kind=SignalKind.FACT, text="FYI", now=NOW)
    store.add(fact, NOW)
    mine = load_priorities(store, NOW, agent="main")
    assert [i.title for i in mine.items] == ["New urgent", "Old normal", "New normal"]
    everyone = load_priorities(store, NOW)
    assert [i.title for i in everyone.items] == [
        "New urgent",
        "For coding",
        "Old normal",
        "New normal",
    ]
    assert mine.to_dict()["items"][1]["age_s"] == 3 * 86400


def test_recommendations_marked_useful_are_priorities_of_their_agents(
    tmp_path: Path, store: SignalStore
) -> None:
    feedback = FeedbackStore(tmp_path / "feedback.sqlite")
    mistakes = MistakeStore(tmp_path / "mistakes.sqlite")
    try:
        for rec_id, title, choice in (
            ("wk-a", "Check the calendar twice", Choice.USEFUL),
            ("wk-b", "Say less", Choice.NOT_USEFUL),
            ("other", "Walk after lunch", Choice.USEFUL),
        ):
            feedback.add_recommendation(title, "...", "synthesize", NOW, id=rec_id)
            feedback.start_delivery(rec_id, NOW)
            feedback.record_choice(rec_id, 1, choice, 1, NOW + timedelta(hours=len(rec_id)))
        mistakes.link_recommendation("wk-a", ["work"], "2026-03-09")
        mistakes.link_recommendation("wk-b", ["work"], "2026-03-09")
        later = NOW + timedelta(days=1)

        def titles(agent: str | None) -> list[str]:
            found = load_priorities(store, later, agent=agent, feedback=feedback, mistakes=mistakes)
            return [i.title for i in found.items]

        assert titles("work") == ["Check the calendar twice", "Walk after lunch"]
        assert titles("main") == ["Walk after lunch"]
        assert (
            load_priorities(
                store, NOW + timedelta(days=40), feedback=feedback, mistakes=mistakes
            ).items
            == ()
        )
    finally:
        feedback.close()
        mistakes.close()


# --- the commands, against the real daemon -----------------------------------------------


def test_signal_and_priorities_commands(root: Path) -> None:
    writer = _home(root)  # where base_environ points OpenClaw's state directory
    with running_daemon(root, {"OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false"}):

        def run(*args: str) -> tuple[int, str, str]:
            done = infractl(*args, env=base_environ(root))
            return done.returncode, done.stdout, done.stderr

        request = [
            "signal",
            "add",
            "--from",
            "work",
            "--to",
            "main",
            "--kind",
            "request",
            "--priority",
            "high",
        ]
        code, out, err = run(*request, "--json", "Draft the Q3 summary")
        assert code == 0, err
        sent = json.loads(out)
        assert sent["created"]
        assert sent["signal"]["to"] == ["main"]
        signal_id = sent["signal"]["id"]
        code, out, _ = run(*request, "Draft the Q3 summary")
        assert (code, out.split(":")[0]) == (0, f"signal {signal_id} already open")
        _drop(writer, "coding", {"to": "all", "kind": "warning", "text": "CI is red"}, "oops")
        code, out, err = run("signal", "list", "--agent", "main", "--json")
        assert code == 0
        listed = json.loads(out)
        assert [s["text"] for s in listed["signals"]] == ["CI is red", "Draft the Q3 summary"]
        assert "signals.jsonl:2: malformed_line" in err
        code, out, _ = run("signal", "list", "--agent", "main")
        assert "Draft the Q3 summary" in out
        assert "CI is red" in out
        code, out, _ = run("priorities", "--agent", "main", "--json")
        assert [i["title"] for i in json.loads(out)["items"]] == ["Draft the Q3 summary"]
        code, out, _ = run("priorities")
        assert "request from work" in out
        assert run("signal", "resolve", signal_id)[:2] == (0, f"signal {signal_id} resolved\n")
        code, out, _ = run("priorities", "--agent", "main")
        assert out == "nothing open for main\n"
        code, _, err = run(
            *["signal", "add", "--from", "work", "--to", "nobody", "--kind", "fact", "x"]
        )
        assert code == 10
        assert "no agent nobody; OpenClaw knows main, work, coding" in err
        code, _, err = run("signal", "resolve", "0123456789ab")
        assert code == 19
        assert "no signal 0123456789ab" in err
        fact = [
            "signal",
            "add",
            "--from",
            "work",
            "--to",
            "main",
            "--kind",
            "fact",
            "--expires",
            "soon",
            "x",
        ]
        code, _, err = run(*fact)
        assert code == 2  # refused by infractl itself, naming the flag
        assert "argument --expires: not a date, time or age: 'soon'" in err
        code, _, err = run(*fact[:-3], "--expires", "2020-01-01", "x")
        assert code == 10
        assert "expires '2020-01-01' is already past" in err
        code, _, err = run(*fact[:-3], "   ")
        assert (code, "argument text: the text is blank" in err) == (2, True), err
        code, _, err = run("mistake", "add", "--agent", "main", " \t ")
        assert (code, "argument text: the text is blank" in err) == (2, True), err
        code, _, err = run(
            *["signal", "add", "--from", "work", "--to", "work", "--kind", "fact", "x"]
        )
        assert code == 10
        assert "work would be signalling itself" in err
