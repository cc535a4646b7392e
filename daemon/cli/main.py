"""``infractl``: the daemon's command line, a thin face on the socket API.

Imports only the stdlib and the protocol at start-up (rich is loaded only to draw a table), so
that ``infractl status`` costs little more than starting Python. Exit status: 0 on success, the
error code's status from ``daemon.errors.EXIT_STATUS`` on a refused request, 2 on bad usage,
and for ``health`` 4 when degraded and 5 when failed.
"""

from __future__ import annotations

import argparse
import sys
from argparse import SUPPRESS
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.cli import agents as cli_agents
from daemon.cli import args as check
from daemon.cli import backup as cli_backup
from daemon.cli import dashboard as cli_dashboard
from daemon.cli import feedback as cli_feedback
from daemon.cli import llm as cli_llm
from daemon.cli import memory as cli_memory
from daemon.cli import setup as cli_setup
from daemon.cli import sync as cli_sync
from daemon.cli.args import Parser, UsageError
from daemon.cli.common import call, clip, command, count, emit, examples, ms, span, table, when
from daemon.errors import ErrorCode, InfraError

HEALTH_EXIT = {"ok": 0, "degraded": 4, "failed": 5}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.env_file is not None and not args.env_file.is_file():
            raise UsageError(f"--env-file {args.env_file}: no such file")
        return int(args.handler(args))
    except UsageError as exc:
        print(f"infractl: {exc}", file=sys.stderr)
        return 2
    except InfraError as exc:
        print(f"infractl: {exc.message}", file=sys.stderr)
        if args.verbose:
            print(f"infractl: error {exc.code.value}, exit {exc.exit_status}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="infractl",
        description="control the openclaw-infra daemon",
        epilog="exit statuses: `infractl help exit-codes`, or README.md, section Exit statuses\n\n"
        + examples(("infractl status", 'infractl memory search "dentist" -k 5')),
    )
    parser.add_argument("--version", action="version", version=f"infractl {__version__}")
    parser.add_argument("--socket", help="the daemon's socket (default: from settings)")
    parser.add_argument(
        "--env-file", type=Path, help="settings file to find the daemon in (default: ./.env)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print JSON instead of a table")
    out.add_argument("-q", "--quiet", action="store_true", default=SUPPRESS, help=QUIET_HELP)
    out.add_argument("-v", "--verbose", action="store_true", default=SUPPRESS, help=VERBOSE_HELP)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _daemon_commands(sub, [out])
    cli_memory.add_commands(sub, out)
    cli_backup.add_commands(sub, out)
    cli_llm.add_commands(sub, out)
    cli_feedback.add_commands(sub, out)
    cli_sync.add_commands(sub, out)
    cli_dashboard.add_commands(sub, out)
    cli_agents.add_commands(sub, out)
    cli_setup.add_commands(sub, out, parser)
    return parser


QUIET_HELP = "no progress bars, notes or confirmations; data and errors still print"
VERBOSE_HELP = "say which socket answered, how long it took, and the error code"


def _daemon_commands(sub: Any, out: list[argparse.ArgumentParser]) -> None:
    command(sub, "status", cmd_status, "what the daemon is doing", "infractl status", parents=out)
    command(
        sub,
        "jobs",
        cmd_jobs,
        "the job table: schedules, next and last runs",
        "infractl jobs",
        parents=out,
    )
    p = command(
        sub,
        "trigger",
        cmd_trigger,
        "run a job now",
        ("infractl trigger backup --wait", "infractl trigger ingest --wait --timeout 600"),
        parents=out,
    )
    p.add_argument("job", type=check.job_name, help="the job's name (see `infractl jobs`)")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to finish (or for the run already under way) and report it",
    )
    p.add_argument(
        "--timeout",
        type=check.seconds,
        metavar="SECONDS",
        help="with --wait: give up waiting after",
    )
    for name, handler in (("pause", cmd_pause), ("resume", cmd_resume)):
        p = command(
            sub,
            name,
            handler,
            f"{name} a job's schedule, or all with --all (kept across restarts)",
            (f"infractl {name} summarize", f"infractl {name} --all"),
            parents=out,
        )
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("job", nargs="?", type=check.job_name, help="the job's name")
        target.add_argument("--all", action="store_true", help="every job")
    p = command(
        sub,
        "runs",
        cmd_runs,
        "run history, newest first",
        ("infractl runs --job backup -n 5", "infractl runs --status failed"),
        parents=out,
    )
    p.add_argument("--job", type=check.job_name, help="only this job's runs")
    p.add_argument(
        "-n", "--limit", type=check.bounded(1, 1000), default=20, help="at most this many (1-1000)"
    )
    p.add_argument("--status", choices=check.RUN_STATUSES, help="only runs that ended so")
    command(
        sub,
        "health",
        cmd_health,
        "component checks, run now (exit 4 degraded, 5 failed)",
        "infractl health",
        parents=out,
    )
    command(
        sub,
        "version",
        cmd_version,
        "versions of infractl and of the daemon",
        "infractl version",
        parents=out,
    )
    command(
        sub,
        "reload",
        cmd_reload,
        "re-read settings and apply the job table (like SIGHUP)",
        "infractl reload",
        parents=out,
    )


# --- commands ------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    data = call(args, "status")

    def render(d: dict[str, Any]) -> None:
        health = d.get("health") or {}
        state = "stopping" if d["stopping"] else d["scheduler"]
        print(f"infrad {d['version']}  pid {d['pid']}  up {span(d['uptime_s'])}  scheduler {state}")
        print(
            f"state    {d['state_dir']}\nopenclaw {d['openclaw_state_dir']}\nsocket   {d['socket']}"
        )
        if health:
            print(f"health   {health['status']} (checked {when(health['checked_at'])})")
            for problem in health.get("problems") or []:
                print(f"         {problem['name']}: {problem['detail']}")
        if d.get("dashboard"):
            print(f"dashboard {d['dashboard']} (`infractl dashboard` opens it)")
        for store in d.get("retention") or []:
            last = store["last_pruned_at"]
            pruned = (
                f"pruned {when(last)}, {store['last_removed']} removed" if last else "not pruned"
            )
            rows = count(store["rows"], "row")
            print(f"keep     {store['name']} {store['keep']}: {rows}, {pruned}")
        _jobs_table(d["jobs"])

    emit(args, data, render)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    emit(args, call(args, "jobs"), lambda d: _jobs_table(d["jobs"]))
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"job": args.job, "wait": args.wait}
    if args.timeout is not None:
        params["timeout"] = args.timeout
    # With --wait the daemon bounds the wait; the socket waits a little longer than it does.
    timeout = None if args.wait and args.timeout is None else (args.timeout or 25.0) + 5.0
    data = call(args, "trigger", params, timeout=timeout)

    def render(d: dict[str, Any]) -> None:
        if d["status"] == "running":
            print(f"{d['job']}: run {d['run_id']} started (see `infractl runs --job {d['job']}`)")
            return
        if d.get("joined"):
            print(f"{d['job']}: run {d['run_id']} ({d['trigger']}) was already under way")
        summary = (d.get("stats") or {}).get("summary", "")
        took = ms(d.get("duration_ms"))
        print(
            f"{d['job']}: run {d['run_id']} {d['status']} in {took}"
            + (f": {summary}" if summary else "")
        )

    emit(args, data, render, confirmation=not args.wait)
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    data = call(args, "pause", {"job": None if args.all else args.job})
    emit(args, data, lambda d: print("paused: " + ", ".join(d["paused"])), confirmation=True)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    data = call(args, "resume", {"job": None if args.all else args.job})
    emit(args, data, lambda d: print("resumed: " + ", ".join(d["resumed"])), confirmation=True)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.job:
        params["job"] = args.job
    if args.status:
        params["status"] = args.status
    data = call(args, "runs", params)

    def render(d: dict[str, Any]) -> None:
        rows = [
            [
                str(r["run_id"]),
                r["job"],
                r["trigger"],
                r["status"],
                when(r["started_at"] or r["finished_at"]),
                ms(r["duration_ms"]),
                clip(r["error_message"] or (r.get("stats") or {}).get("summary") or "", 60),
            ]
            for r in d["runs"]
        ]
        table(
            ["RUN", "JOB", "TRIGGER", "STATUS", "WHEN", "TOOK", "NOTE"],
            rows,
            empty="no runs recorded yet",
        )

    emit(args, data, render)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    data = call(args, "health")

    def render(d: dict[str, Any]) -> None:
        print(f"health: {d['status']}")
        table(
            ["CHECK", "STATUS", "DETAIL"],
            [[c["name"], c["status"], c["detail"]] for c in d["checks"]],
        )

    emit(args, data, render)
    return HEALTH_EXIT.get(data["status"], 5)


def cmd_version(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {"infractl": __version__}
    try:
        data["daemon"] = call(args, "version")
    except InfraError as exc:
        if exc.code is not ErrorCode.UNAVAILABLE:
            raise
        data["daemon"] = None

    def render(d: dict[str, Any]) -> None:
        print(f"infractl {d['infractl']}")
        daemon = d["daemon"]
        print(
            f"infrad   {daemon['version']} (protocol {daemon['protocol']}, pid {daemon['pid']})"
            if daemon
            else "infrad   not running"
        )

    emit(args, data, render)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    data = call(args, "reload")
    emit(
        args,
        data,
        lambda d: print("; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in d["jobs"].items())),
    )
    return 0


# --- drawing ---------------------------------------------------------------------------------


def _jobs_table(jobs: list[dict[str, Any]]) -> None:
    rows = []
    for j in jobs:
        state = (
            "running"
            if j["running_run_id"]
            else "paused"
            if j["paused"]
            else "enabled"
            if j["enabled"]
            else "disabled"
        )
        fails = str(j["consecutive_failures"]) if j["consecutive_failures"] else ""
        rows.append(
            [
                j["name"],
                state,
                j["schedule"],
                when(j["next_run_at"]),
                j["last_status"] or "-",
                when(j["last_success_at"]),
                fails,
            ]
        )
    table(["JOB", "STATE", "SCHEDULE", "NEXT", "LAST", "LAST SUCCESS", "FAILS"], rows)


if __name__ == "__main__":
    sys.exit(main())
