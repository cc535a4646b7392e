"""``infractl service install``: the unit files of ``systemd/`` and ``launchd/``, rendered with
the absolute paths of this install, written where the service manager looks for them."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

import platformdirs

from daemon.errors import NotConfigured, NotFound
from stores.atomic import atomic_write_text

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


def render(kind: str, infrad: Path, env_file: Path | None, log_dir: Path) -> str:
    template = Template(template_path(kind).read_text())
    if kind == "systemd":
        args = ["--env-file", str(env_file)] if env_file else []
        command = " ".join([_systemd_executable(str(infrad))] + [_systemd_quote(a) for a in args])
        return template.substitute(infrad=command, env_file_arg="")
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


def _c_escape(c: str) -> str:
    return c if c.isprintable() else "".join(f"\\x{b:02x}" for b in c.encode())


def _plain(arg: str) -> bool:
    return all(c.isalnum() or c in "/._-+:=@" for c in arg)


def target_path(kind: str) -> Path:
    if kind == "systemd":
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(config) / "systemd" / "user" / SYSTEMD_UNIT
    return Path.home() / "Library" / "LaunchAgents" / LAUNCHD_PLIST


def install(kind: str | None, dry_run: bool, env_file: Path | None) -> int:
    kind = kind or ("launchd" if sys.platform == "darwin" else "systemd")
    env = env_file.expanduser().absolute() if env_file else None
    if env is not None and not env.is_file():
        raise NotFound(f"--env-file {env}: no such file")
    log_dir = Path(platformdirs.user_log_dir("openclaw-infra", appauthor=False))
    text = render(kind, infrad_path(), env, log_dir)
    target = target_path(kind)
    if dry_run:
        sys.stdout.write(text)
        print(f"\n# would be written to {target}", file=sys.stderr)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "launchd":
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_text(target, text, mode=0o644)
    print(f"wrote {target}")
    if kind == "systemd":
        print(
            "enable it:  systemctl --user daemon-reload && "
            "systemctl --user enable --now openclaw-infra"
        )
        print(
            "keep it running after logout:  loginctl enable-linger "
            + shlex.quote(os.environ.get("USER", "$USER"))
        )
    else:
        print(f"load it:  launchctl bootstrap gui/{os.getuid()} {shlex.quote(str(target))}")
    return 0
