from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config.envexample import render_env_example
from daemon.config.names import SettingsError
from daemon.config.settings import Settings, known_names, load_settings
from jobs.registry import JOBS
from tests.support import REPO, base_environ, settings_for


def _error(root: Path, **env: str) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_for(root, **env)
    return str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OPENCLAW_INFRA_LOG_LEVEL", "loud", "Input should be 'debug'"),
        ("OPENCLAW_INFRA_LOG_FORMAT", "xml", "Input should be 'auto'"),
        ("OPENCLAW_INFRA_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("OPENCLAW_INFRA_CATCHUP_GRACE", "soon", "not a duration"),
        ("OPENCLAW_INFRA_SHUTDOWN_GRACE", "-5s", "not a duration"),
        ("OPENCLAW_INFRA_MIN_FREE_DISK_MB", "-1", "greater than or equal to 0"),
        ("OPENCLAW_INFRA_MIN_FREE_DISK_MB", "lots", "valid integer"),
        ("OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE", "61 * * * *", "not a valid cron line"),
        ("OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE", "sometimes", "not a schedule"),
        ("OPENCLAW_INFRA_JOBS__HEALTH__TIMEOUT", "0s", "duration must be positive"),
        ("OPENCLAW_INFRA_JOBS__HEALTH__ENABLED", "perhaps", "valid boolean"),
        ("OPENCLAW_INFRA_MEMORY__RELEASE_VECTORS_AFTER", "0", "positive, got '0', or 'never'"),
        ("OPENCLAW_INFRA_MEMORY__RELEASE_VECTORS_AFTER", "idle", "not a duration: 'idle'"),
        ("OPENCLAW_INFRA_OPENCLAW_PROFILE", "../etc", "not a profile name"),
        ("OPENCLAW_INFRA_SOCKET_PATH", "/tmp/" + "x" * 120, "a Unix socket allows"),
        ("OPENCLAW_INFRA_STAT_DIR", "/tmp/x", "did you mean OPENCLAW_INFRA_STATE_DIR"),
        ("OPENCLAW_INFRA_JOBS__HEALTH__COLOUR", "red", "unknown setting"),
    ],
)
def test_each_bad_value_is_one_line_naming_the_variable(
    root: Path, variable: str, value: str, expected: str
) -> None:
    message = _error(root, **{variable: value})
    assert message.startswith(f"{variable}: "), message
    assert expected in message
    assert "\n" not in message


def test_one_job_field_keeps_the_other_defaults(root: Path) -> None:
    settings = settings_for(root, OPENCLAW_INFRA_JOBS__HEALTH__TIMEOUT="2m")
    assert settings.jobs.health.timeout == timedelta(minutes=2)
    assert str(settings.jobs.health.schedule) == "every 5m"
    assert settings.jobs.health.enabled is True


def test_the_vector_index_is_released_after_a_duration_or_never(root: Path) -> None:
    assert settings_for(root).memory.release_vectors_after == timedelta(minutes=10)
    never = settings_for(root, OPENCLAW_INFRA_MEMORY__RELEASE_VECTORS_AFTER="Never").memory
    assert never.release_vectors_after is None
    assert never.model_dump(mode="json")["release_vectors_after"] == "never"
    soon = settings_for(root, OPENCLAW_INFRA_MEMORY__RELEASE_VECTORS_AFTER="90s").memory
    assert soon.release_vectors_after == timedelta(seconds=90)


def test_openclaw_variables_are_honoured(root: Path) -> None:
    environ = base_environ(root)
    del environ["OPENCLAW_INFRA_OPENCLAW_STATE_DIR"]
    environ["OPENCLAW_STATE_DIR"] = str(root / "elsewhere")
    environ["OPENCLAW_WORKSPACE_DIR"] = str(root / "ws")
    environ["OPENCLAW_CONFIG_PATH"] = str(root / "oc.json")
    environ["OPENCLAW_HOME"] = str(root / "home")
    settings = load_settings(environ=environ)
    assert settings.resolved_openclaw_state_dir() == root / "elsewhere"
    # OpenClaw's own variable is OpenClaw's rule (after its config); the daemon's wins outright.
    assert (settings.workspace_path, settings.openclaw_workspace_dir) == (None, root / "ws")
    env = settings.openclaw_source().env
    assert (env.config_path, env.home, env.workspace_dir) == (
        root / "oc.json",
        root / "home",
        root / "ws",
    )


def test_profile_picks_its_own_openclaw_home(root: Path) -> None:
    environ = base_environ(root)
    del environ["OPENCLAW_INFRA_OPENCLAW_STATE_DIR"]
    environ["OPENCLAW_PROFILE"] = "work"
    assert load_settings(environ=environ).resolved_openclaw_state_dir().name == ".openclaw-work"


def test_socket_defaults_to_the_runtime_directory(root: Path) -> None:
    environ = base_environ(root)
    del environ["OPENCLAW_INFRA_SOCKET_PATH"]
    environ["XDG_RUNTIME_DIR"] = str(root / "run")
    assert load_settings(environ=environ).resolved_socket_path() == (
        root / "run" / "openclaw-infra" / "infrad.sock"
    )
    del environ["XDG_RUNTIME_DIR"]
    assert load_settings(environ=environ).resolved_socket_path() == root / "state" / "infrad.sock"


def test_env_file_values_apply_and_environment_wins(root: Path) -> None:
    env_file = root / "infra.env"
    env_file.write_text(
        "OPENCLAW_INFRA_LOG_LEVEL=debug\nOPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE=0 * * * *\n"
    )
    settings = load_settings(env_file, base_environ(root))
    assert settings.log_level == "debug"
    assert str(settings.jobs.health.schedule) == "0 * * * *"
    environ = {**base_environ(root), "OPENCLAW_INFRA_LOG_LEVEL": "error"}
    assert load_settings(env_file, environ).log_level == "error"


def test_a_typo_in_the_env_file_is_refused(root: Path) -> None:
    env_file = root / "infra.env"
    env_file.write_text("OPENCLAW_INFRA_LOG_LEVL=debug\n")
    with pytest.raises(SettingsError, match="OPENCLAW_INFRA_LOG_LEVL: unknown setting"):
        load_settings(env_file, base_environ(root))


def test_missing_env_file_is_an_error(root: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(root / "nope.env", base_environ(root))


def test_settings_are_frozen(root: Path) -> None:
    settings = settings_for(root)
    with pytest.raises(ValueError, match="frozen"):
        setattr(settings, "log_level", "debug")  # noqa: B010 - mypy knows it is read-only


def test_every_job_has_settings_and_every_setting_a_job() -> None:
    names = {n.split("__")[1].lower() for n in known_names() if "_JOBS__" in n}
    assert names == set(JOBS)


def test_committed_env_example_matches_the_model() -> None:
    committed = (REPO / ".env.example").read_text()
    assert committed == render_env_example(), "run `infractl config example > .env.example`"


def test_env_example_names_every_setting() -> None:
    text = render_env_example()
    for name in known_names(Settings):
        assert f"# {name}=" in text


def _infrad(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_infrad_exits_2_with_one_line_on_a_bad_setting(root: Path) -> None:
    env = {**base_environ(root), "PATH": "/usr/bin:/bin", "OPENCLAW_INFRA_TIMEZONE": "Nowhere/Land"}
    result = _infrad("--check-config", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "infrad: OPENCLAW_INFRA_TIMEZONE: unknown time zone 'Nowhere/Land'"
        " (use an IANA name like 'Europe/Berlin')"
    ]
    assert not (root / "state").exists(), "a refused start must not create state"


def test_check_config_prints_effective_settings(root: Path) -> None:
    env = {**base_environ(root), "PATH": "/usr/bin:/bin", "OPENCLAW_INFRA_LOG_LEVEL": "warning"}
    result = _infrad("--check-config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    import json

    shown = json.loads(result.stdout)
    assert shown["OPENCLAW_INFRA_LOG_LEVEL"] == "warning"
    assert shown["OPENCLAW_INFRA_JOBS__HEALTH__SCHEDULE"] == "every 5m"
    assert shown["(socket)"] == str(root / "s.sock")
