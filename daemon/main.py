"""``infrad``: the daemon in the foreground, as systemd, launchd or a terminal runs it.

Exit status: 0 after a clean stop, 1 when it cannot start (another instance, a socket in the
way), 2 for a bad setting or argument (`--settings-error-status` changes that for a bad
setting).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import __version__
from daemon.config.names import SettingsError
from daemon.config.settings import Settings, load_settings
from daemon.errors import InfraError
from daemon.paths import ENV_PREFIX
from stores.redaction import Redactor
from stores.sqlite import IncompatibleDatabase

if TYPE_CHECKING:
    from daemon.supervisor import JobTable


#: Another daemon holds the state directory or serves the socket, or something else is in the
#: way of starting (an incompatible database, a file where the socket goes).
EXIT_ALREADY_RUNNING = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infrad", description="openclaw-infra daemon (runs in the foreground)"
    )
    parser.add_argument("--env-file", type=Path, help="read settings from this file, not ./.env")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="print the effective settings (secrets masked) and exit",
    )
    parser.add_argument("--json", action="store_true", help="with --check-config: as JSON")
    parser.add_argument(
        "--settings-error-status",
        type=int,
        default=2,
        metavar="N",
        help="exit status for a bad setting (default 2; the launchd agent uses 0, so that"
        " launchd does not restart what a restart cannot fix)",
    )
    parser.add_argument(
        "--sample",
        nargs="?",
        const="openclaw-infra-sample",
        metavar="DIR",
        help="run on a sample OpenClaw home written into DIR (default ./openclaw-infra-sample)",
    )
    parser.add_argument("--version", action="version", version=f"infrad {__version__}")
    return parser


def main(argv: list[str] | None = None, *, job_table: JobTable | None = None) -> int:
    """``job_table`` lets a program embedding the daemon run jobs of its own (see Supervisor)."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    if args.sample:
        environ.update(_sample_environ(Path(args.sample).absolute(), environ))
    env_file: Path | None = args.env_file

    def reload() -> Settings:
        return load_settings(env_file, environ)

    try:
        settings = reload()
    except SettingsError as exc:
        print(f"infrad: {exc}", file=sys.stderr)
        return int(args.settings_error_status)
    if args.check_config:
        print_settings(settings, as_json=args.json)
        return 0
    from daemon import logs

    logs.configure(
        settings.log_level,
        settings.log_format,
        _redactor(settings),
        colors=logs.wants_color(environ),
    )
    return asyncio.run(serve(settings, reload, sample=bool(args.sample), job_table=job_table))


def _redactor(settings: Settings) -> Redactor:
    return Redactor(settings.secrets())


def _sample_environ(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Point the daemon at a sample OpenClaw home, written on first use; keep explicit paths."""
    from daemon.sample.home import write_sample_home

    home = root / "openclaw"
    if not home.exists():
        write_sample_home(home)
    state = root / "state"
    defaults = {
        "OPENCLAW_INFRA_OPENCLAW_STATE_DIR": str(home),
        "OPENCLAW_INFRA_STATE_DIR": str(state),
        "OPENCLAW_INFRA_SOCKET_PATH": str(state / "infrad.sock"),
    }
    return {k: v for k, v in defaults.items() if k not in environ}


def print_settings(settings: Settings, *, as_json: bool) -> None:
    """As ``.env`` lines take them (``6h``, ``true``, JSON lists): paste one back and it reads."""
    from daemon.config.envexample import effective

    values = effective(settings)
    values["(socket)"] = str(settings.resolved_socket_path())
    values["(openclaw home)"] = str(settings.resolved_openclaw_state_dir())
    if as_json:
        print(json.dumps(values, indent=2))
        return
    for name, value in values.items():
        print(f"{name}={value}" if not name.startswith("(") else f"# {name} {value}")


async def serve(
    settings: Settings,
    reload: Callable[[], Settings],
    *,
    sample: bool = False,
    job_table: JobTable | None = None,
) -> int:
    from daemon.sdnotify import Notifier
    from daemon.supervisor import DEFAULT_JOB_TABLE, AlreadyRunning, Supervisor

    refusal = await asyncio.to_thread(_other_daemon, settings.resolved_socket_path())
    if refusal is not None:
        print(f"infrad: cannot start: {refusal}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    supervisor = Supervisor(
        settings,
        notifier=Notifier.from_environ(os.environ),
        reload_settings=reload,
        job_table=job_table or DEFAULT_JOB_TABLE,
    )
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_stop_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            supervisor.request_stop(signal.Signals(signum).name)
        else:
            supervisor.force_stop()

    reloads: set[asyncio.Task[object]] = set()

    def on_hangup() -> None:
        task = loop.create_task(_reload_quietly(supervisor))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    # Before start(): the socket answers during start-up already, and a SIGTERM then must
    # still shut down cleanly (the socket removed, runs recorded), not kill the process.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await supervisor.start()
    except (AlreadyRunning, InfraError, OSError, IncompatibleDatabase) as exc:
        print(f"infrad: cannot start: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    _banner(supervisor.socket_path, sample)
    try:
        await supervisor.wait()
        await supervisor.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    return 0


def _other_daemon(socket_path: Path) -> str | None:
    """Why not to start: another daemon answers on our socket. Asked before anything starts, so
    that a second daemon creates nothing and runs nothing before it refuses."""
    from daemon.client import serving_daemon

    other = serving_daemon(socket_path)
    if other is None:
        return None
    if "pid" in other:
        who = f"infrad pid {other['pid']} (state dir {other.get('state_dir')})"
    else:
        who = f"a daemon that answers {other.get('error')!r}"
    return (
        f"{who} already serves {socket_path}; stop it first, or give this one another"
        f" {ENV_PREFIX}SOCKET_PATH"
    )


async def _reload_quietly(supervisor: object) -> None:
    from daemon.supervisor import Supervisor

    assert isinstance(supervisor, Supervisor)
    # A failure is logged by the supervisor; the old job table stays in force.
    with contextlib.suppress(InfraError):
        await supervisor.reload()


def _banner(socket_path: Path, sample: bool) -> None:
    if not sys.stderr.isatty() and not sample:
        return
    from daemon.paths import client_socket_path

    default = client_socket_path(None, os.environ, None)
    flag = "" if default == socket_path else f" --socket {shlex.quote(str(socket_path))}"
    ctl = infractl_command(os.environ.get("PATH", ""))
    print(
        f"infrad {__version__} is running; socket {socket_path}\n"
        f"  try:  {ctl}{flag} status   |   {ctl}{flag} trigger health --wait\n"
        "  stop: Ctrl-C",
        file=sys.stderr,
        flush=True,
    )


def infractl_command(search_path: str) -> str:
    """``infractl`` when that name on PATH is this install's, else the path that is."""
    beside = Path(sys.executable).parent / "infractl"
    if not beside.is_file():
        return "infractl"
    found = shutil.which("infractl", path=search_path)
    if found is not None and Path(found).resolve() == beside.resolve():
        return "infractl"
    return shlex.quote(str(beside))


if __name__ == "__main__":
    sys.exit(main())
