"""infractl before it asks the daemon: help and examples everywhere, flags checked with the
daemon's own bounds, usage errors in one line naming the flag, the README's examples valid."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from daemon.api.core import RunsParams
from daemon.api.feedback import ListParams as FeedbackListParams
from daemon.api.llm import RefineHistoryParams
from daemon.api.memory import SearchParams
from daemon.api.sync import MistakeListParams, SignalListParams
from daemon.cli.main import build_parser, main
from daemon.cli.setup import EXIT_MEANINGS, exit_codes_table
from daemon.errors import EXIT_STATUS, ErrorCode
from stores.runlog import RunStatus
from tests.support import REPO


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for name, child in subcommands(parser).items():
        yield from walk(child, (*path, name))


PARSERS = dict(walk(build_parser()))
GROUPS = sorted(" ".join(p) for p, parser in PARSERS.items() if p and subcommands(parser))


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


def test_every_argument_has_help() -> None:
    missing = [
        f"{' '.join(path) or 'infractl'} {action.dest}"
        for path, parser in PARSERS.items()
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize("path", sorted(PARSERS), ids=lambda p: " ".join(p) or "infractl")
def test_every_help_ends_with_a_runnable_example(path: tuple[str, ...]) -> None:
    epilog = PARSERS[path].epilog or ""
    examples = [line.strip() for line in epilog.splitlines() if line.startswith("  infractl")]
    assert re.search(r"(?m)^examples?:\n", epilog), f"{path}: no example"
    assert PARSERS[path].format_help().rstrip().endswith(examples[-1])
    for example in examples:
        argv = shlex.split(example.split(" > ")[0])[1:]
        assert argv[: len(path)] == list(path), example
        if "..." not in example:
            build_parser().parse_args(argv)  # the example parses as written


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_without_its_action_prints_its_own_usage(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(group.split()) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: infractl {group} "), err
    for action in subcommands(PARSERS[tuple(group.split())]):
        assert action in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["memory", "search", "x", "-k", "500"], "argument -k: must be from 1 to 100, got 500"),
        (["memory", "search", "x", "-k", "many"], "argument -k: not a whole number"),
        (["memory", "search", "x", "--budget", "10"], "argument --budget: must be from 50"),
        (["memory", "search", "x", "--since", "soon"], "argument --since: not a date, time or age"),
        (["memory", "search", "x", "--recent", "-3d"], "argument --recent:"),
        (["memory", "search", "x", "--agent", "No Such"], "argument --agent: 'No Such' is not"),
        (["runs", "-n", "0"], "argument -n/--limit: must be from 1 to 1000, got 0"),
        (["runs", "--status", "weird"], "argument --status: invalid choice: 'weird'"),
        (["runs", "--job", "Bad Job"], "argument --job: 'Bad Job' is not a job name"),
        (["trigger", "health", "--wait", "--timeout", "0"], "argument --timeout: must be more"),
        (["signal", "list", "-n", "5000"], "argument -n/--limit: must be from 1 to 1000"),
        (["signal", "resolve", "12"], "argument id: '12' is not a signal id (12 hex digits"),
        (["signal", "add", "x", "--from", "a", "--to", "b c", "--kind", "fact"], "--to"),
        (
            ["signal", "add", "x", "--from", "a", "--to", "b", "--kind", "fact", "--expires", "?"],
            "argument --expires",
        ),
        (["mistake", "list", "--since", "lately"], "argument --since: not a date"),
        (["mistake", "add", "  ", "--agent", "main"], "argument text: the text is blank"),
        (["feedback", "list", "-n", "-1"], "argument -n/--limit: must be from 1 to 1000"),
        (["refine-history", "-n", "501"], "argument -n/--limit: must be from 1 to 500"),
        (["backup", "verify", "nosuch"], "argument name: 'nosuch' is not a backup name like"),
        (["backup", "restore", "nosuch", "--target", "/x"], "'nosuch' is not a backup name"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    err = usage_error(capsys, *argv)
    assert err.startswith("infractl "), err
    assert words in err
    assert "see `infractl " in err


def _bounds(check: Any) -> tuple[int, int]:
    return check.low, check.high


def _field_bounds(model: type[BaseModel], name: str) -> tuple[int, int]:
    meta = model.model_fields[name].metadata
    low = next(m.ge for m in meta if hasattr(m, "ge"))
    high = next(m.le for m in meta if hasattr(m, "le"))
    return int(low), int(high)


@pytest.mark.parametrize(
    ("path", "flag", "model", "field"),
    [
        (("memory", "search"), "k", SearchParams, "k"),
        (("memory", "search"), "budget", SearchParams, "budget"),
        (("runs",), "limit", RunsParams, "limit"),
        (("signal", "list"), "limit", SignalListParams, "limit"),
        (("mistake", "list"), "limit", MistakeListParams, "limit"),
        (("feedback", "list"), "limit", FeedbackListParams, "limit"),
        (("refine-history",), "limit", RefineHistoryParams, "limit"),
    ],
)
def test_infractl_bounds_are_the_daemons(
    path: tuple[str, ...], flag: str, model: type[BaseModel], field: str
) -> None:
    action = next(a for a in PARSERS[path]._actions if a.dest == flag)
    assert _bounds(action.type) == _field_bounds(model, field)


def test_run_statuses_are_the_daemons() -> None:
    runs = PARSERS[("runs",)]
    status = next(a for a in runs._actions if a.dest == "status")
    assert set(status.choices or ()) == {s.value for s in RunStatus}


@pytest.mark.parametrize(
    ("since", "until"), [("1d", "7d"), ("2026-03-10", "2026-03-01"), ("1d", "2026-03-01T12:00")]
)
def test_a_range_that_ends_before_it_begins_is_refused(
    capsys: pytest.CaptureFixture[str], since: str, until: str
) -> None:
    assert main(["memory", "search", "x", "--since", since, "--until", until]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"infractl: --since {since} is after --until {until}"), err


def test_a_missing_env_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--env-file", str(tmp_path / "missing.env"), "status"]) == 2
    assert (
        capsys.readouterr().err
        == f"infractl: --env-file {tmp_path / 'missing.env'}: no such file\n"
    )


def test_exit_codes_cover_every_error_code_and_match_the_readme(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = {code: status for status, code, _ in EXIT_MEANINGS if code}
    assert listed == {code.value: EXIT_STATUS[code] for code in ErrorCode}
    assert main(["help", "exit-codes"]) == 0
    assert capsys.readouterr().out == exit_codes_table() + "\n"
    readme = (REPO / "README.md").read_text()
    for status, code, meaning in EXIT_MEANINGS:
        row = f"| {status} | {f'`{code}`' if code else ''} | {meaning} |"
        assert row.replace("|  |", "| |") in readme, row


def test_top_level_help_points_at_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "`infractl help exit-codes`" in capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_the_commands(
    capsys: pytest.CaptureFixture[str], shell: str
) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for name in ("memory", "backup", "trigger", "search", "restore"):
        assert name in script


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].split(" > ")[0].strip()
            if command.startswith("infractl ") and "[" not in command:
                lines.append(command)
    return lines


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_examples_parse(command: str) -> None:
    build_parser().parse_args(shlex.split(command)[1:])


def test_readme_names_every_trigger_and_status() -> None:
    from stores.runlog import RunTrigger

    readme = (REPO / "README.md").read_text()
    for value in [*RunTrigger, *RunStatus]:
        assert f"`{value.value}`" in readme, value


def test_backup_now_follows_a_backup_already_under_way(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scheduled backup is running: `backup now` follows it instead of exiting 15."""
    from daemon.cli import backup as cli_backup
    from daemon.errors import Busy

    def busy(*_: Any, **__: Any) -> Any:
        raise Busy("backup is already running (run 7); ...", data={"run_id": 7})

    followed: list[int] = []

    def follow(args: Any, run_id: int, *, show: bool) -> dict[str, Any]:
        followed.append(run_id)
        return {"status": "success", "stats": {"summary": "done"}}

    monkeypatch.setattr(cli_backup, "call", busy)
    monkeypatch.setattr(cli_backup, "follow", follow)
    assert main(["backup", "now"]) == 0
    assert followed == [7]
    out, err = capsys.readouterr()
    assert out == "backup success: done\n"
    assert err == "infractl: a backup was already under way (run 7); following it\n"
