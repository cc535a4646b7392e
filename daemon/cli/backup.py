"""``infractl backup ...``: make, list, verify, restore and prune backups.

``now``, ``list``, ``verify`` and ``prune`` speak to the daemon over its socket. ``restore`` runs
here, in infractl, so that it works with the daemon stopped (which an in-place restore requires):
it reads the daemon's settings (``--env-file`` as for infrad) and loads what it needs (pydantic,
age) inside the command only; infractl's start-up stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.cli import args as check
from daemon.cli.common import (
    call,
    command,
    connect,
    emit,
    group,
    progress_shown,
    table,
    when,
)
from daemon.errors import EXIT_STATUS, BadRequest, Busy, ErrorCode, Forbidden, NotFound
from stores.counts import count

if TYPE_CHECKING:
    from daemon.config.settings import Settings

STATE_VAR = "OPENCLAW_INFRA_STATE_DIR"


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    actions = group(
        sub,
        "backup",
        "backups: now, list, verify, restore, prune",
        ("infractl backup now", "infractl backup list"),
    )
    p = command(
        actions,
        "now",
        cmd_backup_now,
        "make a backup now and follow it",
        "infractl backup now",
        parents=[out],
    )
    p.add_argument("--no-wait", action="store_true", help="start it and return")
    command(
        actions,
        "list",
        cmd_backup_list,
        "the backups there are, newest first, when each was last verified and why it is kept",
        "infractl backup list",
        parents=[out],
    )
    p = command(
        actions,
        "verify",
        cmd_backup_verify,
        "check a backup as a restore would (default: the newest)",
        ("infractl backup verify", "infractl backup verify openclaw-infra-20260310T033000Z"),
        parents=[out],
    )
    p.add_argument("name", nargs="?", type=check.backup_name, help="the backup (see `backup list`)")
    p = command(
        actions,
        "restore",
        cmd_backup_restore,
        "restore a backup into a new directory, or in place of the daemon's state",
        (
            "infractl backup restore latest --target ~/restored-infra",
            "infractl backup restore openclaw-infra-20260310T033000Z --force",
        ),
        parents=[out],
    )
    p.add_argument("name", type=check.backup_ref, help="a backup's name, or latest")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", type=Path, help="a new or empty directory to restore into")
    where.add_argument(
        "--force",
        action="store_true",
        help="replace the daemon's state directory (infrad must be stopped); the old one is kept",
    )
    p.add_argument(
        "--force-workspaces",
        action="store_true",
        help="also write workspace files back to where they came from (replaced ones are kept)",
    )
    p.add_argument(
        "--other-origin",
        action="store_true",
        help="with --force: restore a backup made of another state directory over this one",
    )
    p.add_argument(
        "--backup-dir",
        type=Path,
        help="where the backups are (default: the running daemon's, else the settings')",
    )
    p = command(
        actions,
        "prune",
        cmd_backup_prune,
        "apply retention: remove the backups no rule keeps",
        ("infractl backup prune --dry-run", "infractl backup prune --yes"),
        parents=[out],
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    p.add_argument("--yes", action="store_true", help="do not ask on a terminal")


# --- through the daemon ----------------------------------------------------------------------


def cmd_backup_now(args: argparse.Namespace) -> int:
    started = call(args, "trigger", {"job": "backup"})
    if args.no_wait:
        emit(args, started, lambda d: print(f"backup started: run {d['run_id']}"))
        return 0
    run = follow(args, started["run_id"], show=progress_shown(args))

    def render(d: dict[str, Any]) -> None:
        stats = d.get("stats") or {}
        print(f"backup {d['status']}: {stats.get('summary') or d.get('error_message')}")

    emit(args, run, render)
    return 0 if run["status"] == "success" else EXIT_STATUS[ErrorCode.JOB_FAILED]


def follow(args: argparse.Namespace, run_id: int, *, show: bool) -> dict[str, Any]:
    """Poll a run until it ends; on a terminal, draw its progress (bytes) on stderr."""
    with connect(args) as client:

        def poll() -> dict[str, Any]:
            return dict(client.call("run", {"run_id": run_id}))

        if not show:
            while (run := poll())["status"] == "running":
                time.sleep(0.2)
            return run
        with _Bar() as draw:
            while (run := poll())["status"] == "running":
                draw(run.get("progress") or {})
                time.sleep(0.2)
        return run


def cmd_backup_list(args: argparse.Namespace) -> int:
    data = call(args, "backup.list")

    def render(d: dict[str, Any]) -> None:
        rows = [
            [
                b["name"],
                when(b["created_at"]),
                _size(b["size"]),
                str(b["files"] if b["files"] is not None else "-"),
                _size(b["bytes"]),
                "yes" if b["encrypted"] else "no",
                _verdict(b),
            ]
            for b in d["backups"]
        ]
        table(
            ["NAME", "CREATED", "SIZE", "FILES", "DATA", "ENCRYPTED", "VERIFIED"],
            rows,
            empty=f"no backups in {d['dir']}",
        )

    emit(args, data, render)
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    params = {"name": args.name} if args.name else {}
    report = call(args, "backup.verify", params, timeout=None)
    emit(args, report, _render_check)
    return 0 if report["ok"] else 1


def cmd_backup_prune(args: argparse.Namespace) -> int:
    data = call(args, "backup.prune", {"dry_run": args.dry_run})

    def render(d: dict[str, Any]) -> None:
        verb = "would remove" if d["dry_run"] else "removed"
        print(f"{verb}: {', '.join(d['removed']) or 'nothing'}")
        for kept in d["kept"]:
            print(f"kept {kept['name']}: {', '.join(kept['reasons'])}")

    emit(args, data, render)
    return 0


# --- restore, locally --------------------------------------------------------------------------


@dataclass
class _Meter:
    phase: str = "starting"
    done: int = 0
    total: int | None = None


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from daemon.config.settings import SettingsError, load_settings
    from stores.backup.config import config_from_settings

    try:
        settings = load_settings(args.env_file, os.environ)
    except SettingsError as exc:
        print(f"infractl: {exc}", file=sys.stderr)
        return 2
    state_dir = settings.state_dir.expanduser().absolute()
    config = config_from_settings(settings.backup, state_dir)
    if args.target is not None and args.target.expanduser().absolute() == state_dir:
        raise BadRequest(
            f"{state_dir} is the daemon's state directory: use --force to restore there"
        )
    meter = _Meter()
    result = _in_thread(lambda: _restore(args, config, state_dir, meter, settings), meter, args)
    emit(args, result, _render_restore)
    return 0 if result["ok"] else 1


def _restore(
    args: argparse.Namespace, config: Any, state_dir: Path, meter: _Meter, settings: Settings
) -> Any:
    from datetime import UTC, datetime

    from stores.backup.crypto import Keys
    from stores.backup.repo import BackupDir
    from stores.backup.restore import restore_in_place, restore_into

    backup_dir = (args.backup_dir or config.dir).expanduser().absolute()
    backup = BackupDir(backup_dir).get(None if args.name == "latest" else args.name)
    keys = Keys(config.passphrase, config.key_file)
    workspaces = _workspaces(settings) if args.force_workspaces else None
    if args.force:
        return restore_in_place(
            backup,
            keys,
            state_dir,
            backup_dir,
            meter,
            now=datetime.now(UTC),
            workspaces=workspaces,
        )
    return restore_into(backup, keys, args.target, meter, workspaces=workspaces)


def _workspaces(settings: Settings) -> dict[str, Path]:
    """Where the agents' workspaces are now, found as the daemon's backup job finds them: the
    files go there, never to paths named in the archive."""
    from stores.backup.writeback import configured_workspaces

    return configured_workspaces(
        settings.resolved_openclaw_state_dir(),
        profile=settings.openclaw_profile,
        main_workspace=settings.workspace_path,
    )


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
        with _Bar() as draw:
            while thread.is_alive():
                draw({"phase": meter.phase, "done": meter.done, "total": meter.total})
                thread.join(0.1)
    thread.join()
    if "error" in outcome:
        raise _infra_error(outcome["error"])
    return dict(outcome["result"].to_dict())


def _infra_error(exc: BaseException) -> BaseException:
    from stores.backup.errors import BackupError, BackupNotFound, KeyProblem, RestoreRefused

    if isinstance(exc, BackupNotFound):
        return NotFound(str(exc))
    if isinstance(exc, KeyProblem):
        return Forbidden(str(exc))
    if isinstance(exc, RestoreRefused):
        return Busy(str(exc)) if "infrad is running" in str(exc) else BadRequest(str(exc))
    if isinstance(exc, BackupError | OSError):
        from daemon.errors import JobFailed

        return JobFailed(f"restore failed: {exc}")
    return exc


# --- drawing -----------------------------------------------------------------------------------


class _Bar:
    """A rich progress bar in bytes on stderr, updated from a progress dict."""

    def __enter__(self) -> Callable[[dict[str, Any]], None]:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(binary_units=True),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.__enter__()
        task = self.progress.add_task("starting", total=None)

        def draw(p: dict[str, Any]) -> None:
            self.progress.update(
                task,
                description=p.get("phase") or "working",
                completed=p.get("done", 0),
                total=p.get("total"),
            )

        return draw

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def _render_check(d: dict[str, Any]) -> None:
    if d["ok"]:
        chroma = d.get("chroma") or {}
        vectors = f", {count(chroma['count'], 'vector')}, search ok" if chroma else ""
        sqlite = f", {count(len(d['sqlite']), 'SQLite file')} intact" if d["sqlite"] else ""
        print(
            f"{d['name']}: ok: {count(d['files'], 'file')} ({_size(d['bytes'])}){sqlite}{vectors}"
        )
        return
    print(f"{d['name']}: FAILED")
    for problem in d["problems"]:
        print(f"  {problem}")


def _render_restore(d: dict[str, Any]) -> None:
    _render_check(d)
    if d.get("replaced_kept_in"):
        print(f"restored in place of {d['state_dir']}; the old state is in {d['replaced_kept_in']}")
        if Path(d["target"], "workspaces").is_dir():
            print(f"the backup's workspace files are in {d['target']}/workspaces")
    elif d["ok"]:
        print(
            f"restored into {d['target']}; start a daemon on it with {STATE_VAR}={d['state_dir']}"
        )
    ws = d.get("workspaces")
    if ws:
        print(
            f"workspaces: {count(len(ws['written']), 'file')} written back,"
            f" {ws['unchanged']} unchanged"
        )
        for refused in ws["refused"]:
            print(f"  refused {refused}")


def _verdict(b: dict[str, Any]) -> str:
    if b.get("problem"):
        return f"NO: {b['problem']}"
    if b["verified"] is None:
        return "-"
    return "yes" if b["verified"] else "FAILED"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
    return f"{n} B"
