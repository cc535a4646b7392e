"""``infractl backup ...``: make, list, verify, restore and prune backups.

``now``, ``list``, ``verify`` and ``prune`` speak to the daemon over its socket; ``restore``
(``daemon.cli.restore``) runs here, so that it works with the daemon stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.cli import args as check
from daemon.cli.common import (
    ago,
    call,
    command,
    confirm,
    connect,
    count,
    emit,
    group,
    note,
    progress_shown,
    table,
    when,
)
from daemon.cli.progress import Bar, render_check, size
from daemon.cli.restore import cmd_backup_restore
from daemon.errors import EXIT_STATUS, Busy, ErrorCode

if TYPE_CHECKING:
    pass


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
    """A backup already under way (the scheduled one) is followed rather than refused."""
    try:
        started = call(args, "trigger", {"job": "backup"})
    except Busy as exc:
        if "run_id" not in exc.data or args.no_wait:
            raise
        started = {"run_id": exc.data["run_id"]}
        note(args, f"a backup was already under way (run {started['run_id']}); following it")
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
        with Bar() as draw:
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
                size(b["size"]),
                str(b["files"] if b["files"] is not None else "-"),
                size(b["bytes"]),
                "yes" if b["encrypted"] else "no",
                _verdict(b),
                ", ".join(b.get("kept") or []) or "none: the next prune removes it",
            ]
            for b in d["backups"]
        ]
        table(
            ["NAME", "CREATED", "SIZE", "FILES", "DATA", "ENCRYPTED", "VERIFIED", "KEPT BY"],
            rows,
            empty=f"no backups in {d['dir']}",
        )

    emit(args, data, render)
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    params = {"name": args.name} if args.name else {}
    report = call(args, "backup.verify", params, timeout=None)
    emit(args, report, render_check)
    return 0 if report["ok"] else 1


def cmd_backup_prune(args: argparse.Namespace) -> int:
    """On a terminal, what would go is shown and confirmed first (unless --yes)."""
    if not args.dry_run and not args.yes and not args.json and check.is_terminal():
        planned = call(args, "backup.prune", {"dry_run": True})
        if not planned["removed"]:
            print("nothing to remove: every backup is kept by a rule (see `infractl backup list`)")
            return 0
        doomed = ", ".join(planned["removed"])
        if not confirm(f"remove {count(len(planned['removed']), 'backup')} ({doomed})?"):
            print("nothing removed", file=sys.stderr)
            return 1
    data = call(args, "backup.prune", {"dry_run": args.dry_run})

    def render(d: dict[str, Any]) -> None:
        verb = "would remove" if d["dry_run"] else "removed"
        print(f"{verb}: {', '.join(d['removed']) or 'nothing'}")
        for kept in d["kept"]:
            print(f"kept {kept['name']}: {', '.join(kept['reasons'])}")

    emit(args, data, render)
    return 0


def _verdict(b: dict[str, Any]) -> str:
    """Whether the backup checked out, when and by what; a verdict is as old as its check."""
    if b.get("problem"):
        return f"NO: {b['problem']}"
    if b["verified"] is None:
        return "never"
    by = f" by {b['verified_by']}" if b.get("verified_by") else ""
    verdict = "yes" if b["verified"] else "FAILED"
    verdict += f", {ago(b['verified_at'])}{by}" if b.get("verified_at") else by
    if b.get("archive_changed"):
        verdict += "; the archive changed since: `infractl backup verify` it"
    return verdict
