"""``infractl backup restore``: run here, in infractl, so that it works with the daemon stopped
(which an in-place restore requires).

Where things are comes from the running daemon when one answers (``backup.where``: its state
and backup directories, the agents' workspaces), so that a restore finds the backups of the
daemon it is pointed at (``--socket``, ``--env-file``), not those of the shell's settings.
With no daemon answering, the settings here are read (``--env-file`` as for infrad), and that
is said. A passphrase never comes over the socket: it is the settings' here. pydantic and age
are loaded inside the command only; infractl's start-up stays light.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.cli.common import call, count, emit, progress_shown
from daemon.cli.progress import Bar, render_check
from daemon.errors import (
    BadRequest,
    BadSettings,
    Busy,
    ErrorCode,
    Forbidden,
    InfraError,
    JobFailed,
    NotFound,
)

STATE_VAR = "OPENCLAW_INFRA_STATE_DIR"


@dataclass
class _Meter:
    phase: str = "starting"
    done: int = 0
    total: int | None = None


@dataclass
class Where:
    """The directories a restore works with, and whose they are."""

    state_dir: Path
    backup_dir: Path
    workspaces: dict[str, Path] = field(default_factory=dict)
    key_file: Path | None = None
    passphrase: str | None = None
    source: str = "settings"


def cmd_backup_restore(args: argparse.Namespace) -> int:
    where = _where(args)
    if args.target is not None and args.target.expanduser().absolute() == where.state_dir:
        raise BadRequest(
            f"{where.state_dir} is the daemon's state directory: use --force to restore there"
        )
    if args.other_origin and not args.force:
        raise BadRequest("--other-origin goes with --force (a --target is new: any backup fits)")
    meter = _Meter()
    result = _in_thread(lambda: _restore(args, where, meter), meter, args)
    result["directories_from"] = where.source
    emit(args, result, _render_restore)
    return 0 if result["ok"] else 1


def _where(args: argparse.Namespace) -> Where:
    from daemon.config.names import SettingsError
    from daemon.config.settings import load_settings
    from stores.backup.config import config_from_settings

    try:
        settings = load_settings(args.env_file, os.environ)
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    state_dir = settings.state_dir.expanduser().absolute()
    config = config_from_settings(settings.backup, state_dir)
    daemon = _daemon_where(args)
    if daemon is None:
        return Where(
            state_dir,
            (args.backup_dir or config.dir).expanduser().absolute(),
            _workspaces(settings) if args.force_workspaces else {},
            config.key_file,
            config.passphrase,
        )
    return Where(
        Path(daemon["state_dir"]),
        (args.backup_dir or Path(daemon["backup_dir"])).expanduser().absolute(),
        {agent: Path(path) for agent, path in daemon["workspaces"].items()},
        Path(daemon["key_file"]) if daemon["key_file"] else config.key_file,
        config.passphrase,
        source="daemon",
    )


def _daemon_where(args: argparse.Namespace) -> dict[str, Any] | None:
    try:
        return dict(call(args, "backup.where", timeout=10.0))
    except InfraError as exc:
        if exc.code in (ErrorCode.UNAVAILABLE, ErrorCode.UNKNOWN_METHOD):
            return None
        raise


def _restore(args: argparse.Namespace, where: Where, meter: _Meter) -> Any:
    from stores.backup.crypto import Keys
    from stores.backup.repo import BackupDir
    from stores.backup.restore import restore_in_place, restore_into

    backup = BackupDir(where.backup_dir).get(None if args.name == "latest" else args.name)
    keys = Keys(where.passphrase, where.key_file)
    workspaces = where.workspaces if args.force_workspaces else None
    if args.force:
        return restore_in_place(
            backup,
            keys,
            where.state_dir,
            where.backup_dir,
            meter,
            now=datetime.now(UTC),
            workspaces=workspaces,
            other_origin=args.other_origin,
        )
    return restore_into(backup, keys, args.target, meter, workspaces=workspaces)


def _workspaces(settings: Any) -> dict[str, Path]:
    """Where the agents' workspaces are now, found as the daemon's backup job finds them: the
    files go there, never to paths named in the archive."""
    from stores.backup.writeback import configured_workspaces

    return configured_workspaces(settings.openclaw_source())


def _in_thread(work: Callable[[], Any], meter: _Meter, args: argparse.Namespace) -> dict[str, Any]:
    """Run the restore in a thread, drawing its progress; its errors become infractl's."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="restore", daemon=True)
    thread.start()
    if progress_shown(args):
        with Bar() as draw:
            while thread.is_alive():
                draw({"phase": meter.phase, "done": meter.done, "total": meter.total})
                thread.join(0.1)
    thread.join()
    if "error" in outcome:
        raise _infra_error(outcome["error"], args)
    return dict(outcome["result"].to_dict())


def _infra_error(exc: BaseException, args: argparse.Namespace) -> BaseException:
    from stores.backup.errors import (
        BackupError,
        BackupNotFound,
        DaemonRunning,
        DiskFull,
        KeyProblem,
        RestoreRefused,
        no_room,
    )

    said_as: list[tuple[type[BaseException], type[InfraError]]] = [
        (BackupNotFound, NotFound),
        (KeyProblem, Forbidden),
        (DaemonRunning, Busy),  # before RestoreRefused: it is one
        (RestoreRefused, BadRequest),
    ]
    for kind, error in said_as:
        if isinstance(exc, kind):
            return error(str(exc))
    if isinstance(exc, OSError) and no_room(exc):
        where = args.target.expanduser().absolute().parent if args.target else Path.cwd()
        full = DiskFull.of(exc, f"restore of {args.name}", where, "nothing of it was kept")
        return JobFailed(str(full))
    if isinstance(exc, BackupError | OSError):
        return JobFailed(f"restore failed: {exc}")
    return exc


def _render_restore(d: dict[str, Any]) -> None:
    if d.get("directories_from") == "settings":
        print("(no daemon answered: the directories are the settings' here)")
    render_check(d)
    if not d["ok"]:
        if not d.get("placed", True):
            print(f"nothing was restored: {d['target']} is as it was")
        return
    if Path(d["state_dir"]).parent == Path(d["target"]):
        print(
            f"restored into {d['target']}; start a daemon on it with {STATE_VAR}={d['state_dir']}"
        )
    else:
        kept = d.get("replaced_kept_in")
        print(
            f"restored in place of {d['state_dir']}"
            + (f"; the old state is in {kept}" if kept else "; it held nothing to keep aside")
        )
        if Path(d["target"], "workspaces").is_dir():
            print(f"the backup's workspace files are in {d['target']}/workspaces")
    ws = d.get("workspaces")
    if ws:
        print(
            f"workspaces: {count(len(ws['written']), 'file')} written back,"
            f" {ws['unchanged']} unchanged"
        )
        for refused in ws["refused"]:
            print(f"  refused {refused}")
