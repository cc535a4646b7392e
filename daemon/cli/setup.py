"""``infractl config``, ``service``, ``completion`` and ``help``: setting infractl and infrad up.

None of these speak to the daemon. Each loads what it needs inside the command (the settings
model, the service templates, shtab), so that infractl's start-up stays light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from daemon.cli.common import command, group

#: Every exit status of infractl, with what it means; the README's table says the same.
EXIT_MEANINGS: tuple[tuple[int, str, str], ...] = (
    (0, "", "done"),
    (1, "", "the answer is no: a backup that does not verify, a question answered no"),
    (2, "", "bad usage: a flag or value infractl refuses (the message names it)"),
    (3, "unavailable", "no daemon answering on the socket"),
    (4, "", "`health`: degraded"),
    (5, "", "`health`: failed"),
    (10, "bad_request", "the daemon refused a parameter"),
    (11, "unsupported_version", "infractl and infrad speak different protocol versions"),
    (12, "unknown_method", "the daemon has no such method (an older infrad)"),
    (13, "unknown_job", "no job of that name"),
    (14, "too_large", "the request is over the socket's size limit"),
    (15, "busy", "the work is already under way, or the daemon is stopping"),
    (16, "forbidden", "not allowed: another user's daemon, a wrong backup key"),
    (17, "timeout", "still running when the wait ended (the run goes on)"),
    (18, "job_failed", "the run, or the restore, failed; the message says why"),
    (19, "not_found", "no such run, signal, backup or file"),
    (20, "not_configured", "the part asked for is not set up (memory store, backups, an API key)"),
    (21, "bad_settings", "the settings (environment, .env) have a bad value; nothing was changed"),
    (70, "internal", "a fault of infractl or infrad; please report it"),
    (130, "", "interrupted (Ctrl-C)"),
)


def add_commands(sub: Any, out: argparse.ArgumentParser, top: argparse.ArgumentParser) -> None:
    config = group(sub, "config", "settings", "infractl config example > .env")
    command(
        config,
        "example",
        cmd_config_example,
        "print a complete .env.example: every setting with its default",
        "infractl config example > .env",
        parents=[],
    )
    service = group(
        sub,
        "service",
        "run infrad as a systemd user service or a launchd agent",
        ("infractl service install --env-file ~/.config/openclaw-infra.env",),
    )
    p = command(
        service,
        "install",
        cmd_service_install,
        "write the service file for this install",
        ("infractl service install --dry-run", "infractl service install --env-file ./.env"),
        parents=[],
    )
    p.add_argument("--dry-run", action="store_true", help="print it instead of writing it")
    p.add_argument(
        "--kind", choices=["systemd", "launchd"], help="service manager (default: this platform's)"
    )
    p.add_argument(
        "--env-file",
        dest="service_env_file",
        type=Path,
        help="settings file the service reads (default: ./.env when there is one)",
    )
    p.add_argument("--force", action="store_true", help="replace a service file already there")
    p = command(
        service,
        "uninstall",
        cmd_service_uninstall,
        "remove the service file (and its enablement) written by install",
        "infractl service uninstall",
        parents=[],
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be removed")
    p.add_argument(
        "--kind", choices=["systemd", "launchd"], help="service manager (default: this platform's)"
    )
    p = command(
        sub,
        "completion",
        cmd_completion,
        "print a shell completion script for infractl",
        (
            "infractl completion bash > ~/.local/share/bash-completion/completions/infractl",
            "infractl completion zsh > ~/.zfunc/_infractl",
            "infractl completion fish > ~/.config/fish/completions/infractl.fish",
        ),
        parents=[],
    )
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete in")
    p.set_defaults(top=top)
    p = command(
        sub,
        "help",
        cmd_help,
        "help on a command, or on a topic: exit-codes",
        ("infractl help exit-codes", "infractl help memory"),
        parents=[],
    )
    p.add_argument("topic", nargs="?", help="exit-codes, or a command's name")
    p.set_defaults(top=top)


def cmd_config_example(args: argparse.Namespace) -> int:
    from daemon.config.envexample import render_env_example

    sys.stdout.write(render_env_example())
    return 0


def cmd_service_install(args: argparse.Namespace) -> int:
    from daemon.cli.args import UsageError, is_terminal
    from daemon.cli.common import confirm
    from daemon.service import (
        after_install,
        default_env_file,
        install,
        platform_kind,
        target_path,
    )

    kind = platform_kind(args.kind)
    env_file = default_env_file(args.service_env_file)
    if env_file is not None and not env_file.is_file():
        raise UsageError(f"--env-file {env_file}: no such file")
    target = target_path(kind)
    replacing = target.exists() and not args.force and not args.dry_run
    if replacing and not (is_terminal() and confirm(f"{target} exists; replace it?")):
        raise UsageError(
            f"{target} exists; pass --force to replace it (or `infractl service uninstall`)"
        )
    target, text = install(kind, args.dry_run, env_file)
    if args.dry_run:
        sys.stdout.write(text)
        print(f"\n# would be written to {target}", file=sys.stderr)
    else:
        print("\n".join(after_install(kind, target, env_file)))
    return 0


def cmd_service_uninstall(args: argparse.Namespace) -> int:
    from daemon.service import after_uninstall, platform_kind, target_path, uninstall

    kind = platform_kind(args.kind)
    removed = uninstall(kind, args.dry_run)
    if not removed:
        print(f"no service installed at {target_path(kind)}")
        return 0
    for path in removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {path}")
    print(after_uninstall(kind))
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab  # only here: infractl's other commands never pay for it

    sys.stdout.write(shtab.complete(args.top, shell=args.shell))
    return 0


def cmd_help(args: argparse.Namespace) -> int:
    top: argparse.ArgumentParser = args.top
    if args.topic in (None, ""):
        top.print_help()
        return 0
    if args.topic in ("exit-codes", "exit-statuses"):
        print(exit_codes_table())
        return 0
    commands = _commands(top)
    if args.topic in commands:
        commands[args.topic].print_help()
        return 0
    from daemon.cli.args import UsageError

    raise UsageError(
        f"no help topic {args.topic!r}; topics: exit-codes, {', '.join(sorted(commands))}"
    )


def exit_codes_table() -> str:
    """``infractl help exit-codes``: status, error code, meaning."""
    lines = ["STATUS  CODE                 MEANING"]
    lines += [f"{status:<7} {code or '-':<20} {meaning}" for status, code, meaning in EXIT_MEANINGS]
    return "\n".join(lines)


def _commands(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in top._actions:  # argparse keeps its subcommands here, with no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}
