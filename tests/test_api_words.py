"""What the socket says about a refused value names that value's kind, per field; and every
count the daemon or infractl prints reads as words ("1 result", not "1 results")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel

from daemon.api.core import PATTERN_WORDS, DaemonAPI
from daemon.errors import BadRequest
from stores.counts import count, plural
from tests.support import REPO


def _models() -> list[tuple[str, type[BaseModel]]]:
    api = DaemonAPI(cast(Any, object()))  # the table only; no method is called
    return [(method, model) for method, (model, _) in api._methods.items()]


def _patterns() -> list[tuple[str, str, str]]:
    found = []
    for method, model in _models():
        for name, field in model.model_fields.items():
            for meta in field.metadata:
                pattern = getattr(meta, "pattern", None)
                if pattern is not None:
                    found.append((method, field.alias or name, str(pattern)))
    return found


@pytest.mark.parametrize(("method", "field", "pattern"), _patterns())
def test_every_pattern_has_words_of_its_own(method: str, field: str, pattern: str) -> None:
    assert pattern in PATTERN_WORDS, f"{method}.{field}: {pattern} has no words"


@pytest.mark.parametrize(
    ("method", "params", "words"),
    [
        ("backup.verify", {"name": "nosuch"}, "name 'nosuch' is not a backup name"),
        ("trigger", {"job": "No Such"}, "job 'No Such' is not a job name"),
        ("memory.add", {"text": "x", "agent": "No One"}, "agent 'No One' is not an agent id"),
        ("feedback.answer", {"id": "??", "round": 1, "choice": "useful"}, "id '??' is not a rec"),
    ],
)
async def test_a_refused_value_is_named_for_what_it_should_be(
    method: str, params: dict[str, Any], words: str
) -> None:
    api = DaemonAPI(cast(Any, object()))
    with pytest.raises(BadRequest) as refused:
        await api.call(method, params)
    assert f"{method}: {words}" in refused.value.message
    if method != "trigger":
        assert "job name" not in refused.value.message


def test_counts_read_as_words() -> None:
    assert count(1, "result") == "1 result"
    assert count(2, "result") == "2 results"
    assert count(0, "memory") == "0 memories"
    assert count(1, "memory") == "1 memory"
    assert plural("entry", 3) == "entries"


#: An f-string placeholder followed by a plural noun: "{n} results". count() says it right.
_PLURAL_AFTER_NUMBER = re.compile(
    r"\{[^{}]*\}\s(?:new\s)?(results|memories|mistakes|files|chunks|vectors|turns|sources"
    r"|problems|patterns|notes|hours|agents|backups|signals|runs|tokens|rows|failures|times)\b"
)


def test_no_count_phrase_is_built_by_hand() -> None:
    found = []
    for top in ("daemon", "jobs", "stores"):
        for path in Path(REPO, top).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if _PLURAL_AFTER_NUMBER.search(line) and ('f"' in line or "f'" in line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []


def test_infractl_counts_as_the_daemon_does() -> None:
    """infractl keeps its own copy (it loads nothing of ``stores``); they must not drift."""
    from daemon.cli.common import IRREGULAR
    from daemon.cli.common import count as cli_count

    for noun in [*IRREGULAR, "result", "file", "memory", "entry", "summary"]:
        for n in (0, 1, 2):
            assert cli_count(n, noun) == count(n, noun)
