"""Settings as people write them: any case for a word, and what is printed reads back."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon import logs
from daemon.config.envexample import effective, render_env_example
from daemon.config.names import SettingsError, leaf_fields
from daemon.config.settings import Settings, load_settings
from daemon.config.values import choices
from tests.support import base_environ, settings_for

#: Every enumerated setting, found from the model: a new one is covered without a new line here.
ENUMERATED = {
    name: words
    for name, field in leaf_fields(Settings).items()
    if (words := choices(field.annotation))
}


def test_the_enumerated_settings_are_found() -> None:
    assert {"OPENCLAW_INFRA_LOG_LEVEL", "OPENCLAW_INFRA_BACKUP__COMPRESSION"} <= set(ENUMERATED)


@pytest.mark.parametrize("variable", sorted(ENUMERATED))
@pytest.mark.parametrize("spell", [str.upper, str.title], ids=["upper", "title"])
def test_every_enumerated_setting_takes_any_case(root: Path, variable: str, spell: Any) -> None:
    word = ENUMERATED[variable][-1]
    settings = settings_for(root, **{variable: spell(word)})
    assert effective(settings)[variable] == word


def test_log_level_in_the_spelling_of_python_logging(root: Path) -> None:
    assert settings_for(root, OPENCLAW_INFRA_LOG_LEVEL="INFO").log_level == "info"
    assert settings_for(root, OPENCLAW_INFRA_LOG_LEVEL="WARNING").log_level == "warning"


def test_a_wrong_word_is_still_refused_in_any_case(root: Path) -> None:
    with pytest.raises(SettingsError, match=r"^OPENCLAW_INFRA_LOG_LEVEL: Input should be"):
        settings_for(root, OPENCLAW_INFRA_LOG_LEVEL="LOUD")


def test_check_config_values_paste_back_into_an_env_file(root: Path) -> None:
    """Every line --check-config prints is a .env line that gives the same settings back."""
    env = {
        **base_environ(root),
        "PATH": "/usr/bin:/bin",
        "OPENCLAW_INFRA_BACKUP__INCLUDE": '["*.md", "notes/**"]',
        "OPENCLAW_INFRA_CATCHUP_GRACE": "90m",
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "daemon.main", "--check-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert "OPENCLAW_INFRA_CATCHUP_GRACE=1h30m" in lines
    assert "OPENCLAW_INFRA_MEMORY__WATCH=false" in lines
    assert 'OPENCLAW_INFRA_BACKUP__INCLUDE=["*.md", "notes/**"]' in lines
    assert "OPENCLAW_INFRA_JOBS__HEALTH__TIMEOUT=1m" in lines
    pasted = root / "pasted.env"
    pasted.write_text("\n".join(lines) + "\n")
    again = load_settings(pasted, {"HOME": str(root / "home")})
    first = load_settings(None, {k: v for k, v in env.items() if k != "PATH"})
    assert again.model_dump() == first.model_dump()


def test_check_config_json_uses_the_same_spelling(root: Path) -> None:
    env = {**base_environ(root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "daemon.main", "--check-config", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    shown = json.loads(done.stdout)
    assert shown["OPENCLAW_INFRA_CATCHUP_GRACE"] == "6h"
    assert shown["OPENCLAW_INFRA_MEMORY__WATCH"] == "true"
    assert shown["OPENCLAW_INFRA_BACKUP__INCLUDE"] == '["*.md", "memory/**"]'


def test_env_example_shows_real_defaults_of_lists() -> None:
    text = render_env_example()
    assert '# OPENCLAW_INFRA_BACKUP__INCLUDE=["*.md", "memory/**"]\n' in text
    assert "# OPENCLAW_INFRA_BACKUP__EXCLUDE=[]\n" in text
    # Machine-dependent defaults are described, not printed.
    assert "# OPENCLAW_INFRA_STATE_DIR=\n" in text
    assert "# OPENCLAW_INFRA_TIMEZONE=\n" in text


@pytest.mark.parametrize("value", ["*.md", '["*.md"', '{"a": 1}', '"*.md"'])
def test_a_list_setting_not_in_json_names_itself_and_says_json_list(root: Path, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_for(root, OPENCLAW_INFRA_BACKUP__INCLUDE=value)
    message = str(caught.value)
    assert message.startswith("OPENCLAW_INFRA_BACKUP__INCLUDE: not a JSON list: "), message
    assert '["*.md", "memory/**"]' in message
    assert "\n" not in message


def test_a_list_setting_in_the_env_file_is_checked_too(root: Path) -> None:
    env_file = root / "infra.env"
    env_file.write_text("OPENCLAW_INFRA_BACKUP__EXCLUDE=drafts/**\n")
    with pytest.raises(SettingsError, match=r"^OPENCLAW_INFRA_BACKUP__EXCLUDE: not a JSON list"):
        load_settings(env_file, base_environ(root))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "escapes"), [("1", False), ("", True)])
def test_console_logs_follow_no_color(no_color: str, escapes: bool) -> None:
    stream = _Terminal()
    logs.configure(
        "info", "console", stream=stream, colors=logs.wants_color({"NO_COLOR": no_color})
    )
    structlog.get_logger("t").info("colour.check", field="value")
    assert ("\x1b[" in stream.getvalue()) is escapes


def test_the_banner_names_an_infractl_that_runs(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off PATH, the banner gives the path of this install's infractl; on PATH, the name."""
    from daemon import main

    beside = Path(sys.executable).parent / "infractl"
    if not beside.is_file():
        pytest.skip("infractl is not installed beside this Python")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    main._banner(root / "s.sock", sample=True)
    banner = capsys.readouterr().err
    assert f"try:  {beside} --socket {root / 's.sock'} status" in banner
    monkeypatch.setenv("PATH", f"{beside.parent}:/usr/bin:/bin")
    main._banner(root / "s.sock", sample=True)
    assert "try:  infractl --socket" in capsys.readouterr().err
