"""``infractl service install|uninstall`` as a person runs them: the .env it reads, the
sandbox it writes into, launchd's restarts, a file already there, and taking it away again."""

from __future__ import annotations

import os
import plistlib
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.service import LAUNCHD_PLIST, SYSTEMD_UNIT, render
from tests.test_service import (
    INFRAD,
    clean_environ,
    infractl,
    needs_systemd_analyze,
    one,
    parse_unit,
    verify,
    writable,
)

HARDENING = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "RestrictRealtime": "yes",
    "RestrictNamespaces": "yes",
}


def unit_dir(home: Path) -> Path:
    return home / ".config" / "systemd" / "user"


def test_the_unit_is_sandboxed_and_may_write_what_the_daemon_writes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = infractl(
        "service", "install", "--kind", "systemd", env=clean_environ(home), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    unit = parse_unit((unit_dir(home) / SYSTEMD_UNIT).read_text())
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    paths = one(unit, "Service", "ReadWritePaths").split()
    assert paths == [f"-{p}" for p in writable(home)]
    state = writable(home)[0]
    assert state.is_dir(), "a sandboxed service cannot make its own state directory"
    assert state.stat().st_mode & 0o777 == 0o700


@needs_systemd_analyze
def test_the_sandbox_with_awkward_paths_passes_systemd_analyze(tmp_path: Path) -> None:
    odd = [tmp_path / "with space", tmp_path / "100%b", tmp_path / 'say "hi"']
    text = render("systemd", INFRAD, None, Path("/unused"), odd)
    assert verify(text, tmp_path / "unit") == ""
    assert '"-' + str(tmp_path / "100%%b") + '"' in text


def test_the_env_file_here_is_the_one_the_service_reads(tmp_path: Path) -> None:
    """Without --env-file, ./.env (where install runs) is named by its absolute path: the
    service's working directory is not this one."""
    home = tmp_path / "home"
    (tmp_path / ".env").write_text("OPENCLAW_INFRA_LOG_LEVEL=debug\n")
    done = infractl(
        "service", "install", "--kind", "systemd", env=clean_environ(home), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    unit = parse_unit((unit_dir(home) / SYSTEMD_UNIT).read_text())
    assert one(unit, "Service", "ExecStart") == f"{INFRAD} --env-file {tmp_path / '.env'}"
    assert f"it reads {tmp_path / '.env'}" in done.stdout
    done = infractl(
        "service", "install", "--kind", "launchd", env=clean_environ(home), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    plist = plistlib.loads((home / "Library" / "LaunchAgents" / LAUNCHD_PLIST).read_bytes())
    assert plist["ProgramArguments"][-2:] == ["--env-file", str(tmp_path / ".env")]


def test_without_an_env_file_install_says_none_is_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = infractl(
        "service", "install", "--kind", "systemd", env=clean_environ(home), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "it reads no .env file" in done.stdout
    assert "--env-file" not in (unit_dir(home) / SYSTEMD_UNIT).read_text()


def test_launchd_does_not_restart_a_bad_setting(tmp_path: Path) -> None:
    """KeepAlive restarts a non-zero exit; launchd has no key to spare one status, so the
    agent runs infrad with a status of 0 for a bad setting, and infrad keeps to it."""
    plist = plistlib.loads(render("launchd", INFRAD, None, tmp_path).encode())
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    arguments = plist["ProgramArguments"]
    status = arguments[arguments.index("--settings-error-status") + 1]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENCLAW_INFRA_LOG_LEVEL": "loud"}
    done = subprocess.run(
        [sys.executable, "-m", "daemon.main", "--settings-error-status", status],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stderr.startswith("infrad: OPENCLAW_INFRA_LOG_LEVEL: ")
    plain = subprocess.run(
        [sys.executable, "-m", "daemon.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.returncode == 2, "systemd's RestartPreventExitStatus=2 still applies"


def test_install_over_an_existing_file_needs_force(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = clean_environ(home)
    assert (
        infractl("service", "install", "--kind", "systemd", env=env, cwd=tmp_path).returncode == 0
    )
    target = unit_dir(home) / SYSTEMD_UNIT
    target.write_text("# edited by hand\n")
    done = infractl("service", "install", "--kind", "systemd", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"infractl: {target} exists; pass --force to replace it" + (
        " (or `infractl service uninstall`)\n"
    )
    assert target.read_text() == "# edited by hand\n"
    done = infractl("service", "install", "--kind", "systemd", "--force", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ExecStart=" in target.read_text()


def test_linger_is_printed_with_the_real_user_name(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**clean_environ(home), "USER": "somebody-else"}
    done = infractl("service", "install", "--kind", "systemd", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name = pwd.getpwuid(os.getuid()).pw_name
    assert f"loginctl enable-linger {name}\n" in done.stdout


@pytest.mark.parametrize("kind", ["systemd", "launchd"])
def test_uninstall_removes_what_install_wrote(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    env = clean_environ(home)
    assert infractl("service", "install", "--kind", kind, env=env, cwd=tmp_path).returncode == 0
    if kind == "systemd":
        target = unit_dir(home) / SYSTEMD_UNIT
        wants = unit_dir(home) / "default.target.wants"
        wants.mkdir()
        (wants / SYSTEMD_UNIT).symlink_to(target)  # what `systemctl --user enable` makes
    else:
        target = home / "Library" / "LaunchAgents" / LAUNCHD_PLIST
    done = infractl("service", "uninstall", "--kind", kind, "--dry-run", env=env, cwd=tmp_path)
    assert f"would remove {target}" in done.stdout
    assert target.exists()
    done = infractl("service", "uninstall", "--kind", kind, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"removed {target}" in done.stdout
    assert not target.exists()
    if kind == "systemd":
        assert not (unit_dir(home) / "default.target.wants" / SYSTEMD_UNIT).is_symlink()
        assert "systemctl --user stop openclaw-infra" in done.stdout
    else:
        assert f"launchctl bootout gui/{os.getuid()}/ai.openclaw.infra" in done.stdout
    again = infractl("service", "uninstall", "--kind", kind, env=env, cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, f"no service installed at {target}\n")
