"""The history of multi-pass results: a real SQLite file, and ``refine`` recording into it."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.llm import LLMClient, LLMConfig, LLMNotConfigured, LLMUnavailable, LLMUsage
from jobs.refine import refine
from jobs.three_pass import CritiqueMalformed, Mode
from stores.llm_history import LLMHistory
from tests.fake_anthropic import FakeAnthropic, error, running, text

NOW = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
CRITIQUE = {"problems": [{"issue": "Too long.", "fix": "Cut it to one line."}], "verdict": "revise"}


@pytest.fixture
def history(tmp_path: Path) -> Iterator[LLMHistory]:
    store = LLMHistory(tmp_path / "llm.sqlite")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    yield from running()


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[LLMClient]:
    async with LLMClient(
        LLMConfig(api_key=fake.api_key, base_url=fake.base_url, max_retries=1)
    ) as llm:
        yield llm


def clock() -> datetime:
    return NOW


# --- the store ---------------------------------------------------------------------------------


def test_a_result_is_kept_and_read_back(history: LLMHistory) -> None:
    kept = history.record(
        created_at=NOW,
        purpose="summarize",
        mode="three-pass",
        run_id=42,
        prompt="Summarise.",
        system="Be brief.",
        draft="long draft",
        critique=CRITIQUE,
        refined="short",
        final="short",
        usage={"total": {"input_tokens": 10, "output_tokens": 2, "cost_usd": 0.00006}},
        latency_ms=812.5,
    )
    again = history.get(kept.id)
    assert again == kept
    assert again.ok
    assert again.created_at == NOW
    assert again.critique == CRITIQUE
    assert again.usage["total"]["input_tokens"] == 10
    assert again.to_dict()["run_id"] == 42
    assert json.loads(json.dumps(again.to_dict())) == again.to_dict()


def test_results_are_listed_newest_first_and_by_purpose(history: LLMHistory) -> None:
    for n, purpose in enumerate(["summarize", "refine", "summarize", "refine"]):
        history.record(
            created_at=NOW + timedelta(minutes=n),
            purpose=purpose,
            mode="three-pass",
            prompt=f"prompt {n}",
        )
    assert [r.prompt for r in history.recent()] == ["prompt 3", "prompt 2", "prompt 1", "prompt 0"]
    assert [r.prompt for r in history.recent(limit=2)] == ["prompt 3", "prompt 2"]
    assert [r.prompt for r in history.recent(purpose="summarize")] == ["prompt 2", "prompt 0"]
    assert history.recent(purpose="sync") == []


def test_the_file_is_private_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    store = LLMHistory(path)
    store.record(created_at=NOW, purpose="refine", mode="single-pass", prompt="p", final="f")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reopened = LLMHistory(path)
    try:
        assert [r.final for r in reopened.recent()] == ["f"]
    finally:
        reopened.close()


def test_old_results_can_be_pruned(history: LLMHistory) -> None:
    for days in (40, 10, 1):
        history.record(
            created_at=NOW - timedelta(days=days), purpose="summarize", mode="m", prompt=str(days)
        )
    assert history.prune(NOW - timedelta(days=30)) == 1
    assert [r.prompt for r in history.recent()] == ["1", "10"]


def test_an_unknown_id_is_a_key_error(history: LLMHistory) -> None:
    with pytest.raises(KeyError, match="no LLM result 7"):
        history.get(7)


# --- refine records what happened ------------------------------------------------------------


async def test_refine_records_all_passes_and_their_cost(
    fake: FakeAnthropic, client: LLMClient, history: LLMHistory
) -> None:
    fake.script(
        text("a long draft", input_tokens=50, output_tokens=5),
        text(json.dumps(CRITIQUE), input_tokens=80, output_tokens=15),
        text("short", input_tokens=90, output_tokens=1),
    )
    usage = LLMUsage()

    result, record = await refine(
        client, history, clock=clock, prompt="Say it.", system="Be brief.", run_id=9, usage=usage
    )

    assert record == history.recent()[0]
    assert (record.purpose, record.mode, record.run_id) == ("refine", "three-pass", 9)
    assert (record.prompt, record.system) == ("Say it.", "Be brief.")
    assert (record.draft, record.refined, record.final) == ("a long draft", "short", "short")
    assert record.critique is not None
    assert record.critique["problems"] == CRITIQUE["problems"]
    assert record.usage["draft"]["usage"]["input_tokens"] == 50
    assert record.usage["critique"]["temperature"] == 0.5
    assert record.usage["refine"]["usage"]["output_tokens"] == 1
    assert record.usage["total"]["input_tokens"] == 220
    assert record.usage["total"]["cost_usd"] == pytest.approx(usage.cost_usd)
    assert record.latency_ms == result.latency_ms
    assert record.error is None


async def test_a_single_pass_refine_is_recorded_as_such(
    fake: FakeAnthropic, client: LLMClient, history: LLMHistory
) -> None:
    fake.script(text("only a draft"))
    _, record = await refine(client, history, clock=clock, prompt="p", mode=Mode.SINGLE)
    assert (record.mode, record.final, record.critique, record.refined) == (
        "single-pass",
        "only a draft",
        None,
        None,
    )
    assert set(record.usage) == {"draft", "total"}


async def test_a_malformed_critique_is_recorded_as_an_error(
    fake: FakeAnthropic, client: LLMClient, history: LLMHistory
) -> None:
    fake.script(text("the draft"), text("fine!"), text("still fine!"))
    with pytest.raises(CritiqueMalformed):
        await refine(client, history, clock=clock, prompt="p", purpose="summarize")
    (record,) = history.recent()
    assert not record.ok
    assert record.error is not None
    assert record.error.startswith("CritiqueMalformed: the critique was not valid JSON twice")
    assert record.draft == "the draft"
    assert record.final is None, "an unreviewed draft is not passed off as the answer"
    assert record.critique == {"malformed": ["fine!", "still fine!"]}
    assert record.usage["critique"]["calls"] == 2


async def test_an_unavailable_api_is_recorded_without_the_key(
    fake: FakeAnthropic, client: LLMClient, history: LLMHistory
) -> None:
    fake.otherwise = error(529, "Overloaded", echo_credentials=True)
    with pytest.raises(LLMUnavailable):
        await refine(client, history, clock=clock, prompt="p")
    (record,) = history.recent()
    assert record.error is not None
    assert record.error.startswith(
        "LLMUnavailable: the Anthropic API failed (529 overloaded_error)"
    )
    assert fake.api_key not in json.dumps(record.to_dict())


async def test_without_a_client_refine_is_not_configured(history: LLMHistory) -> None:
    with pytest.raises(LLMNotConfigured, match="OPENCLAW_INFRA_ANTHROPIC_API_KEY"):
        await refine(None, history, clock=clock, prompt="p")
    assert history.recent() == [], "nothing was tried, so nothing is recorded"
