"""`infractl refine` end to end: the real daemon, the real SDK, a local Messages API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_anthropic import FakeAnthropic, error, running, text
from tests.support import base_environ, infractl, running_daemon

CRITIQUE = {"problems": [{"issue": "Too vague.", "fix": "Name the day."}], "verdict": "revise"}


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    yield from running()


def _env(fake: FakeAnthropic) -> dict[str, str]:
    return {
        "OPENCLAW_INFRA_ANTHROPIC_API_KEY": fake.api_key,
        "OPENCLAW_INFRA_ANTHROPIC_BASE_URL": fake.base_url,
        "OPENCLAW_INFRA_LLM__MAX_RETRIES": "1",
        "OPENCLAW_INFRA_LOG_LEVEL": "debug",
        "OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false",
    }


def test_refine_from_the_shell(root: Path, fake: FakeAnthropic) -> None:
    fake.script(text("Soon."), text(json.dumps(CRITIQUE)), text("On Tuesday."))
    with running_daemon(root, _env(fake)) as daemon:
        env = {**base_environ(root)}
        shown = infractl("refine", "When?", "--system", "Be exact.", "--show-passes", env=env)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.endswith("On Tuesday.\n")
        assert "1. Too vague.\n   fix: Name the day." in shown.stdout
        assert "three-pass, 1 problem found" in shown.stderr
        listed = infractl("refine-history", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        (record,) = json.loads(listed.stdout)["results"]
        assert (record["prompt"], record["final"]) == ("When?", "On Tuesday.")
        fake.otherwise = error(500, "down", echo_credentials=True)
        failed = infractl("refine", "Again?", env=env)
        assert failed.returncode == 3, failed.stderr
        assert "the Anthropic API failed (500 api_error) after 2 attempts" in failed.stderr
        daemon.stop()
    assert fake.api_key not in failed.stderr + daemon.log()
    assert "When?" not in daemon.log(), "no request bodies in the log, even at debug"


def test_refine_without_a_key_is_not_configured(root: Path) -> None:
    with running_daemon(root, {"OPENCLAW_INFRA_JOBS__INGEST__ENABLED": "false"}):
        result = infractl("refine", "Hi", env=base_environ(root))
    assert result.returncode == 20
    assert "OPENCLAW_INFRA_ANTHROPIC_API_KEY" in result.stderr
