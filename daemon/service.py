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

from daemon.errors import NotFound
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
    return beside.absolute()


def render(kind: str, infrad: Path, env_file: Path | None, log_dir: Path) -> str:
    template = Template(template_path(kind).read_text())
    if kind == "systemd":
        args = [str(infrad)] + (["--env-file", str(env_file)] if env_file else [])
        quoted = " ".join(_systemd_quote(a) for a in args)
        return template.substitute(infrad=quoted, env_file_arg="")
    extra = "".join(
        f"\n    <string>{escape(a)}</string>"
        for a in (["--env-file", str(env_file)] if env_file else [])
    )
    return template.substitute(
        infrad=escape(str(infrad)), env_file_args=extra, log_dir=escape(str(log_dir))
    )


def _systemd_quote(arg: str) -> str:
    if all(c.isalnum() or c in "/._-+:=@" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
