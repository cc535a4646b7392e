"""``infractl service install|uninstall``: the unit files of ``systemd/`` and ``launchd/``,
rendered with the absolute paths of this install, written where the service manager looks.

The service reads the ``.env`` named with ``--env-file`` (default: ``./.env`` where install is
run), always by its absolute path: a service's working directory is not the person's. The
systemd unit is sandboxed (``ProtectSystem=strict``) with write access to exactly the
directories the settings name: the state directory, the backups, OpenClaw's home (the agents'
workspaces, where the notes go) and any workspace outside it.
"""

from __future__ import annotations

import os
import pwd
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

import platformdirs

from daemon.errors import BadSettings, NotConfigured, NotFound
from stores.atomic import atomic_write_text, ensure_private_dir

SYSTEMD_UNIT = "openclaw-infra.service"
LAUNCHD_PLIST = "ai.openclaw.infra.plist"


def template_path(kind: str) -> Path:
    """The template in a source checkout, else where the wheel installs shared data."""
    relative = (
        Path("systemd", SYSTEMD_UNIT) if kind == "systemd" else Path("launchd", LAUNCHD_PLIST)
    )
    for root in (
        Path(__file__).resolve().parent.parent,
        Path(sys.prefix) / "share" / "openclaw-infra",
    ):
        if (root / relative).is_file():
            return root / relative
    raise NotFound(f"service template {relative} is missing from this install")


def infrad_path() -> Path:
    """The ``infrad`` of the environment this ``infractl`` runs in."""
    beside = Path(sys.executable).parent / "infrad"
    if not beside.is_file():
        raise NotFound(
            f"no infrad beside {sys.executable}; run `infractl service install` from the"
            " environment openclaw-infra is installed in"
        )
    return beside.absolute()


def render(
    kind: str,
    infrad: Path,
    env_file: Path | None,
    log_dir: Path,
    writable: Sequence[Path] = (),
) -> str:
    template = Template(template_path(kind).read_text())
    if kind == "systemd":
        args = ["--env-file", str(env_file)] if env_file else []
        command = " ".join([_systemd_executable(str(infrad))] + [_systemd_quote(a) for a in args])
        return template.substitute(
            infrad=command, env_file_arg="", read_write_paths=_read_write_paths(writable)
        )
    extra = "".join(
        f"\n    <string>{escape(a)}</string>"
        for a in (["--env-file", str(env_file)] if env_file else [])
    )
    return template.substitute(
        infrad=escape(str(infrad)), env_file_args=extra, log_dir=escape(str(log_dir))
    )


def _systemd_executable(path: str) -> str:
    """ExecStart's program: ``%`` is a specifier there too, but ``$`` is not expanded and
    systemd refuses a program path with quotes, backslashes or control characters outright."""
    if any(c in "\"'\\" or not c.isprintable() for c in path):
        raise NotConfigured(
            f"systemd cannot run {path!r}: quotes, backslashes and control characters are "
            "not allowed in a program path; install openclaw-infra under another path"
        )
    escaped = path.replace("%", "%%")
    return escaped if _plain(path) else f'"{escaped}"'


def _systemd_quote(arg: str) -> str:
    """An ExecStart argument as systemd reads it: ``%`` specifiers and ``$`` variables are
    expanded even inside quotes, so both are doubled; C escapes are undone inside quotes."""
    escaped = "".join(_SYSTEMD_ESCAPES.get(c) or _c_escape(c) for c in arg)
    return escaped if _plain(arg) else f'"{escaped}"'


_SYSTEMD_ESCAPES = {"%": "%%", "$": "$$", "\\": "\\\\", '"': '\\"'}


def _read_write_paths(paths: Sequence[Path]) -> str:
    """``ReadWritePaths=`` for ``paths``; each ``-``-prefixed, so that one missing (a backup
    directory not made yet) does not stop the service from starting."""
    if not paths:
        return "# ReadWritePaths: none found at install time"
    words = []
    for path in dict.fromkeys(paths):
        word = "-" + str(path)
        escaped = "".join(
            {"%": "%%", "\\": "\\\\", '"': '\\"'}.get(c) or _c_escape(c) for c in word
        )
        words.append(escaped if _plain(word) else f'"{escaped}"')
    return "ReadWritePaths=" + " ".join(words)


def _c_escape(c: str) -> str:
    return c if c.isprintable() else "".join(f"\\x{b:02x}" for b in c.encode())


def _plain(arg: str) -> bool:
    return all(c.isalnum() or c in "/._-+:=@" for c in arg)


def target_path(kind: str) -> Path:
    if kind == "systemd":
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(config) / "systemd" / "user" / SYSTEMD_UNIT
    return Path.home() / "Library" / "LaunchAgents" / LAUNCHD_PLIST


def platform_kind(kind: str | None) -> str:
    return kind or ("launchd" if sys.platform == "darwin" else "systemd")


def default_env_file(given: Path | None) -> Path | None:
    """The settings file the service reads: the one given, else ./.env if there is one."""
    if given is not None:
        return given.expanduser().absolute()
    here = Path(".env").absolute()
    return here if here.is_file() else None


def writable_paths(env_file: Path | None) -> list[Path]:
    """What the daemon writes, as the service's settings name it; the state directory and the
    backup directory are made here (0700), since a sandboxed service cannot make them."""
    from daemon.config.names import SettingsError
    from daemon.config.settings import load_settings
    from stores.backup.writeback import configured_workspaces

    try:
        settings = load_settings(env_file, os.environ)
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    state = settings.state_dir.expanduser().absolute()
    backups = (settings.backup.dir or state / "backups").expanduser().absolute()
    home = settings.resolved_openclaw_state_dir()
    paths = [state, backups, home, settings.resolved_socket_path().parent]
    workspaces = configured_workspaces(settings.openclaw_source())
    paths += [w.absolute() for w in workspaces.values() if not w.absolute().is_relative_to(home)]
    return paths


def install(kind: str, dry_run: bool, env_file: Path | None) -> tuple[Path, str]:
    """The service file for this install and where it goes; written there unless ``dry_run``.
    infractl says what was done (``daemon.cli.setup``)."""
    log_dir = Path(platformdirs.user_log_dir("openclaw-infra", appauthor=False))
    writable = writable_paths(env_file) if kind == "systemd" else []
    text = render(kind, infrad_path(), env_file, log_dir, writable)
    target = target_path(kind)
    if dry_run:
        return target, text
    target.parent.mkdir(parents=True, exist_ok=True)
    for path in writable[:2]:  # the state and backup directories
        ensure_private_dir(path)
    if kind == "launchd":
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_text(target, text, mode=0o644)
    return target, text


def after_install(kind: str, target: Path, env_file: Path | None) -> list[str]:
    """What the person does next, once the file is written."""
    lines = [
        f"wrote {target}",
        f"it reads {env_file}"
        if env_file
        else "it reads no .env file (none here): pass --env-file to give it one",
    ]
    if kind == "systemd":
        return [
            *lines,
            "enable it:  systemctl --user daemon-reload && "
            "systemctl --user enable --now openclaw-infra",
            f"keep it running after logout:  loginctl enable-linger {shlex.quote(user_name())}",
        ]
    return [*lines, f"load it:  launchctl bootstrap gui/{os.getuid()} {shlex.quote(str(target))}"]


def uninstall(kind: str, dry_run: bool) -> list[Path]:
    """Remove the service file and, for systemd, its enablement links (what ``disable`` would
    remove: once the file is gone, ``systemctl disable`` cannot find them); what was (or, with
    ``dry_run``, would be) removed."""
    target = target_path(kind)
    doomed = [target] if target.exists() else []
    if kind == "systemd":
        doomed += [
            link
            for link in target.parent.glob(f"*.wants/{SYSTEMD_UNIT}")
            if link.is_symlink() or link.exists()
        ]
    if not dry_run:
        for path in doomed:
            path.unlink()
    return doomed


def after_uninstall(kind: str) -> str:
    if kind == "systemd":
        return "then:  systemctl --user stop openclaw-infra; systemctl --user daemon-reload"
    return f"then:  launchctl bootout gui/{os.getuid()}/ai.openclaw.infra"


def user_name() -> str:
    """This user's login name, from the password database (``$USER`` may be unset or wrong)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
