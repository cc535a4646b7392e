"""``infractl service install``: the systemd unit and the launchd plist, rendered for this install.

The unit is checked by systemd's own parser (``systemd-analyze verify``) where it is installed.
That command exits 0 on unknown keys, unparsable values and unknown sections, merely logging
them, so a clean unit is one that makes it print nothing at all; the broken-unit tests show that
this check does catch each of those.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import NotConfigured
from daemon.service import LAUNCHD_PLIST, SYSTEMD_UNIT, infrad_path, render

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)
#: The daemon of the environment the tests run in: what `service install` must point at.
INFRAD = Path(sys.executable).parent / "infrad"
#: Keys naming other units: each must be one the user manager can see.
DEPENDENCY_KEYS = ("After", "Before", "Wants", "Requires", "Requisite", "BindsTo", "WantedBy")

#: launchd restarts any non-zero exit; a bad setting must exit 0 there (see the plist).
LAUNCHD_ARGS = ["--settings-error-status", "0"]

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections of a unit file, each key with all its values in order (keys may repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{line!r} is outside any section"
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{section}.{key} given {len(values)} times"
    return values[0]


def render_unit(
    infrad: Path = INFRAD, env_file: Path | None = None, home: Path | None = None
) -> str:
    return render("systemd", infrad, env_file, Path("/unused"), writable(home) if home else ())


def render_plist(infrad: Path, env_file: Path | None, log_dir: Path) -> dict[str, Any]:
    loaded = plistlib.loads(render("launchd", infrad, env_file, log_dir).encode())
    assert isinstance(loaded, dict)
    return loaded


def verify(unit_text: str, where: Path) -> str:
    """What ``systemd-analyze --user verify`` says about the unit: stdout and stderr together.

    ``--user`` because it is a user unit (dependencies resolve against the user manager's
    search path); the user mode needs a runtime directory, so it gets a private one.
    ``--man=no``: no man pages in a container, and the unit names none.
    """
    assert SYSTEMD_ANALYZE is not None
    where.mkdir(parents=True, exist_ok=True)
    unit = where / SYSTEMD_UNIT
    unit.write_text(unit_text)
    runtime = where / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(where / "home"),
        "XDG_RUNTIME_DIR": str(runtime),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "--user", "verify", "--man=no", str(unit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = done.stdout + done.stderr
    # A clean unit must also exit 0; a non-zero exit always comes with a message.
    assert done.returncode == 0 or said, f"exit {done.returncode} with no output"
    return said


def user_unit_dirs(where: Path) -> list[Path]:
    assert SYSTEMD_ANALYZE is not None
    runtime = where / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = subprocess.run(
        [SYSTEMD_ANALYZE, "--user", "unit-paths"],
        env={**os.environ, "HOME": str(where / "home"), "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [Path(line) for line in out.splitlines() if line.strip()]


def clean_environ(home: Path) -> dict[str, str]:
    """This environment with HOME moved and nothing that would move the targets elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "OPENCLAW_")) and k != "NOTIFY_SOCKET"
    }
    env["HOME"] = str(home)
    # A short socket path whatever the temporary HOME: install checks the settings.
    env["XDG_RUNTIME_DIR"] = RUNTIME
    return env


RUNTIME = f"/run/user/{os.getuid()}"


def writable(home: Path) -> list[Path]:
    """What a unit installed with ``clean_environ(home)`` and no settings may write."""
    state = home / ".local" / "state" / "openclaw-infra"
    return [state, state / "backups", home / ".openclaw", Path(RUNTIME, "openclaw-infra")]


def infractl(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def linked_infrad(directory: Path) -> Path:
    """A real, executable ``infrad`` at an awkward path (systemd checks that ExecStart exists)."""
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "infrad"
    link.symlink_to(INFRAD)
    return link


# --- the unit's content ----------------------------------------------------------------------


def test_infrad_path_is_the_absolute_infrad_of_this_environment() -> None:
    assert infrad_path() == INFRAD
    assert INFRAD.is_absolute()
    assert os.access(INFRAD, os.X_OK), "the venv has no infrad console script"


def test_unit_is_a_notify_service_with_a_watchdog_and_a_private_runtime_dir() -> None:
    unit = parse_unit(render_unit())
    service = "Service"
    assert one(unit, service, "Type") == "notify"
    assert re.fullmatch(r"[1-9][0-9]*s", one(unit, service, "WatchdogSec"))
    assert one(unit, service, "Restart") == "on-failure"
    assert one(unit, service, "UMask") == "0077"
    assert one(unit, service, "RuntimeDirectory") == "openclaw-infra"
    assert one(unit, service, "RuntimeDirectoryMode") == "0700"
    assert one(unit, service, "ExecStart") == str(INFRAD)
    # The template's `$$` is Template's escape: systemd must see its own `$MAINPID`.
    assert one(unit, service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Install", "WantedBy") == "default.target"


def test_unit_has_no_template_placeholders_left() -> None:
    text = render_unit(env_file=Path("/etc/openclaw/infra.env"))
    assert "$infrad" not in text
    assert "$env_file" not in text
    assert one(parse_unit(text), "Service", "ExecStart") == (
        f"{INFRAD} --env-file /etc/openclaw/infra.env"
    )


@pytest.mark.parametrize(
    ("env_file", "expected"),
    [
        ("/home/a b/.env", '"/home/a b/.env"'),
        # `%` starts a specifier and `$` a variable anywhere in an argument: both are doubled.
        ("/home/100%/x$y/.env", '"/home/100%%/x$$y/.env"'),
        ('/home/say "hi"/.env', '"/home/say \\"hi\\"/.env"'),
        ("/home/back\\slash/.env", '"/home/back\\\\slash/.env"'),
        ("/home/tab\there/.env", '"/home/tab\\x09here/.env"'),
    ],
)
def test_env_file_argument_is_quoted_for_systemd(env_file: str, expected: str) -> None:
    exec_start = one(parse_unit(render_unit(env_file=Path(env_file))), "Service", "ExecStart")
    assert exec_start == f"{INFRAD} --env-file {expected}"


# --- systemd's own verdict -------------------------------------------------------------------


def _unknown_key(text: str) -> str:
    return text.replace("[Service]\n", "[Service]\nFrobnicate=yes\n")


def _misspelt_section(text: str) -> str:
    return text.replace("[Service]", "[Servce]")


def _bad_restart(text: str) -> str:
    return text.replace("Restart=on-failure", "Restart=sometimes")


def _bad_watchdog(text: str) -> str:
    return re.sub(r"(?m)^WatchdogSec=.*$", "WatchdogSec=soon", text)


def _unquoted_space(text: str) -> str:
    return re.sub(r'(?m)^ExecStart="(.*)"$', r"ExecStart=\1", text)


@needs_systemd_analyze
@pytest.mark.parametrize(
    ("breakage", "complaint"),
    [
        (_unknown_key, "Frobnicate"),
        (_misspelt_section, "Servce"),
        (_bad_restart, "sometimes"),
        (_bad_watchdog, "soon"),
        (_unquoted_space, "not executable"),
    ],
    ids=["unknown key", "misspelt section", "bad Restart", "bad WatchdogSec", "unquoted space"],
)
def test_verify_catches_a_broken_unit(
    tmp_path: Path, breakage: Callable[[str], str], complaint: str
) -> None:
    """The check below is only worth something if it fails on these; most exit 0."""
    text = render_unit(linked_infrad(tmp_path / "with space"))
    broken = breakage(text)
    assert broken != text
    assert complaint in verify(broken, tmp_path / "unit")


@needs_systemd_analyze
def test_verify_catches_a_missing_infrad(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "infrad"
    assert str(missing) in verify(render_unit(missing), tmp_path / "unit")


@needs_systemd_analyze
def test_rendered_unit_passes_systemd_analyze_verify_without_a_word(tmp_path: Path) -> None:
    assert verify(render_unit(), tmp_path / "unit") == ""


@needs_systemd_analyze
@pytest.mark.parametrize(
    "directory",
    # `%b` is systemd's boot-id specifier: left unescaped, the path would name another file.
    ["with space", "100%b", "dollar$sign", "ünïcode", "semi;colon"],
)
def test_awkward_install_paths_still_verify(tmp_path: Path, directory: str) -> None:
    """systemd resolves ExecStart itself: quoting or escaping gone wrong names a missing file."""
    infrad = linked_infrad(tmp_path / directory / "bin")
    env_file = tmp_path / directory / "settings.env"
    env_file.write_text("")
    assert verify(render_unit(infrad, env_file), tmp_path / "unit") == ""


@pytest.mark.parametrize("character", ['"', "'", "\\", "\t"])
def test_a_program_path_systemd_would_refuse_is_refused_here(character: str) -> None:
    """systemd rejects these in ExecStart's program ("contains special characters"): better
    one clear line from `service install` than a unit that cannot start."""
    with pytest.raises(NotConfigured, match="systemd cannot run"):
        render_unit(Path(f"/opt/odd{character}dir/infrad"))


@needs_systemd_analyze
def test_unit_depends_only_on_units_the_user_manager_has(tmp_path: Path) -> None:
    """It is a user unit: system targets such as network-online.target do not exist there, and a
    dependency on a missing unit is silently ignored, so it would order nothing."""
    dirs = user_unit_dirs(tmp_path)
    unit = parse_unit(render_unit())
    named = {
        name
        for section in unit.values()
        for key in DEPENDENCY_KEYS
        for value in section.get(key, [])
        for name in value.split()
    }
    assert named, "the unit should at least be wanted by default.target"
    missing = sorted(name for name in named if not any((d / name).exists() for d in dirs))
    assert missing == [], f"not units of the user manager: {missing}"


# --- the launchd plist -----------------------------------------------------------------------


def test_plist_loads_and_has_the_required_keys(tmp_path: Path) -> None:
    plist = render_plist(INFRAD, None, tmp_path / "logs")
    assert plist["Label"] == "ai.openclaw.infra"
    assert plist["ProgramArguments"] == [str(INFRAD), *LAUNCHD_ARGS]
    assert Path(plist["ProgramArguments"][0]).is_absolute()
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardOutPath"] == str(tmp_path / "logs" / "infrad.out.log")
    assert plist["StandardErrorPath"] == str(tmp_path / "logs" / "infrad.err.log")
    assert plist["Umask"] == 0o077


def test_plist_keeps_awkward_paths_intact(tmp_path: Path) -> None:
    odd = tmp_path / "a & b <c> 'd' \"e\" $f %g"
    plist = render_plist(odd / "infrad", odd / "settings.env", odd / "logs")
    assert plist["ProgramArguments"] == [
        str(odd / "infrad"),
        *LAUNCHD_ARGS,
        "--env-file",
        str(odd / "settings.env"),
    ]
    assert plist["StandardErrorPath"] == str(odd / "logs" / "infrad.err.log")


# --- `infractl service install` --------------------------------------------------------------


def test_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = infractl(
        "service",
        "install",
        "--dry-run",
        "--kind",
        "systemd",
        env=clean_environ(home),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    unit = parse_unit(done.stdout)
    assert one(unit, "Service", "ExecStart") == str(INFRAD)
    assert Path(one(unit, "Service", "ExecStart")).is_absolute()
    assert done.stdout == render_unit(home=home)
    target = home / ".config" / "systemd" / "user" / SYSTEMD_UNIT
    assert str(target) in done.stderr
    assert not home.exists()


def test_dry_run_prints_the_plist(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = infractl(
        "service",
        "install",
        "--dry-run",
        "--kind",
        "launchd",
        env=clean_environ(home),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    plist = plistlib.loads(done.stdout.encode())
    assert plist["ProgramArguments"] == [str(INFRAD), *LAUNCHD_ARGS]
    assert Path(plist["StandardOutPath"]).is_absolute()
    assert str(home / "Library" / "LaunchAgents" / LAUNCHD_PLIST) in done.stderr
    assert not home.exists()


@pytest.mark.parametrize("xdg_config_home", [None, "elsewhere"])
def test_install_writes_the_unit_where_systemd_looks(
    tmp_path: Path, xdg_config_home: str | None
) -> None:
    home = tmp_path / "home"
    env = clean_environ(home)
    config = home / ".config"
    if xdg_config_home is not None:
        config = tmp_path / xdg_config_home
        env["XDG_CONFIG_HOME"] = str(config)
    done = infractl("service", "install", "--kind", "systemd", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    target = config / "systemd" / "user" / SYSTEMD_UNIT
    assert target.read_text() == render_unit(home=home)
    assert target.stat().st_mode & 0o777 == 0o644
    assert f"wrote {target}" in done.stdout
    assert "systemctl --user daemon-reload" in done.stdout
    assert "systemctl --user enable --now openclaw-infra" in done.stdout


@needs_systemd_analyze
def test_installed_unit_with_an_env_file_in_a_spaced_path_verifies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env_file = tmp_path / "my settings" / "infra.env"
    env_file.parent.mkdir()
    env_file.write_text("OPENCLAW_INFRA_LOG_LEVEL=debug\n")
    done = infractl(
        "service",
        "install",
        "--kind",
        "systemd",
        "--env-file",
        str(env_file),
        env=clean_environ(home),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    text = (home / ".config" / "systemd" / "user" / SYSTEMD_UNIT).read_text()
    assert one(parse_unit(text), "Service", "ExecStart") == f'{INFRAD} --env-file "{env_file}"'
    assert verify(text, tmp_path / "unit") == ""


def test_install_writes_the_plist_where_launchd_looks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env_file = tmp_path / "my settings" / "infra.env"
    env_file.parent.mkdir()
    env_file.write_text("")
    done = infractl(
        "service",
        "install",
        "--kind",
        "launchd",
        "--env-file",
        str(env_file),
        env=clean_environ(home),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    target = home / "Library" / "LaunchAgents" / LAUNCHD_PLIST
    plist = plistlib.loads(target.read_bytes())
    assert plist["ProgramArguments"] == [str(INFRAD), *LAUNCHD_ARGS, "--env-file", str(env_file)]
    log_dir = Path(plist["StandardOutPath"]).parent
    assert log_dir.is_dir(), "launchd does not create the log directory itself"
    assert log_dir.is_relative_to(home)
    assert f"wrote {target}" in done.stdout
    assert f"launchctl bootstrap gui/{os.getuid()} {target}" in done.stdout


def test_install_refuses_a_missing_env_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "nope.env"
    done = infractl(
        "service", "install", "--env-file", str(missing), env=clean_environ(home), cwd=tmp_path
    )
    assert done.returncode == 2  # usage: the flag names a file that is not there
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert str(missing) in done.stderr
    assert not home.exists()
