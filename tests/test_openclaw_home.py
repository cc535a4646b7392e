from __future__ import annotations

from pathlib import Path

import pytest

from daemon.sample.writer import OpenClawWriter
from stores.openclaw.home import discover, read_name
from stores.openclaw.problems import ProblemKind


def _config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "openclaw.json").write_text(text)


def test_agents_workspaces_and_names_follow_openclaw_defaults(root: Path) -> None:
    writer = OpenClawWriter(root)
    writer.add_agent("main", "Juniper", "Dana")
    writer.add_agent("work", "Ledger", "Dana")
    home = discover(root)
    assert [a.id for a in home.agents] == ["main", "work"]
    main, work = home.agents
    assert main.workspace == root / "workspace"
    assert work.workspace == root / "workspace-work"
    assert (main.name, main.user_name, main.is_default) == ("Juniper", "Dana", True)
    assert (work.name, work.is_default) == ("Ledger", False)
    assert work.sessions_dir == root / "agents" / "work" / "sessions"
    assert work.database == root / "agents" / "work" / "agent" / "openclaw-agent.sqlite"
    assert home.problems == ()


def test_configured_workspaces_win_and_tilde_is_expanded(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(root / "home"))
    _config(
        root,
        """// JSON5: comments, unquoted keys, trailing commas
        {
          agents: {
            defaults: { workspace: "~/main-ws" },
            list: [
              { id: "main" },
              { id: "Ops", workspace: "/srv/ops-ws", agentDir: "~/ops-agent" },
              { id: "kid" },
            ],
          },
        }""",
    )
    home = discover(root)
    by_id = {a.id: a for a in home.agents}
    assert by_id["main"].workspace == root / "home" / "main-ws"
    assert by_id["ops"].workspace == Path("/srv/ops-ws")  # ids are lower-cased, as OpenClaw does
    assert by_id["ops"].agent_dir == root / "home" / "ops-agent"
    assert by_id["kid"].workspace == root / "workspace-kid"


def test_the_agent_marked_default_gets_the_default_workspace(root: Path) -> None:
    _config(root, '{agents: {list: [{id: "main"}, {id: "home", default: true}]}}')
    by_id = {a.id: a for a in discover(root).agents}
    assert by_id["home"].is_default
    assert by_id["home"].workspace == root / "workspace"
    assert by_id["main"].workspace == root / "workspace-main"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [(None, "workspace"), ("default", "workspace"), ("work", "workspace-work")],
)
def test_profile_names_the_default_workspace(
    root: Path, profile: str | None, expected: str
) -> None:
    OpenClawWriter(root).add_agent("main", "Juniper", "Dana")
    (main,) = discover(root, profile=profile).agents
    assert main.workspace == root / expected


def test_explicit_main_workspace_overrides_the_config(root: Path, tmp_path: Path) -> None:
    _config(root, '{agents: {defaults: {workspace: "/elsewhere"}, list: [{id: "main"}]}}')
    (main,) = discover(root, main_workspace=tmp_path / "ws").agents
    assert main.workspace == tmp_path / "ws"


def test_agents_with_transcripts_but_not_configured_are_found(root: Path) -> None:
    OpenClawWriter(root).add_agent("main", "Juniper", "Dana")
    (root / "agents" / "old-helper" / "sessions").mkdir(parents=True)
    (root / "agents" / ".trash").mkdir()
    home = discover(root)
    assert [(a.id, a.configured) for a in home.agents] == [("main", True), ("old-helper", False)]
    assert home.problems == ()


def test_invalid_agent_ids_are_ignored_with_a_problem(root: Path) -> None:
    _config(root, '{agents: {list: [{id: "main"}, {id: "../etc"}, {id: "-x"}, {name: "no id"}]}}')
    (root / "agents" / "Bad Name").mkdir(parents=True)
    (root / "agents" / "a").mkdir()
    home = discover(root)
    assert [a.id for a in home.agents] == ["main", "a"]
    bad = [p for p in home.problems if p.kind is ProblemKind.BAD_AGENT_ID]
    assert [p.where for p in bad] == [
        f"{root / 'openclaw.json'}:agents.list[1]",
        f"{root / 'openclaw.json'}:agents.list[2]",
        f"{root / 'openclaw.json'}:agents.list[3]",
        str(root / "agents" / "Bad Name"),
    ]
    assert "'../etc'" in bad[0].detail


@pytest.mark.parametrize("data", [b"{agents: {list: [", b"[1, 2]", b"\xff\xfe{}", b"[" * 10000])
def test_a_broken_config_is_reported_and_agents_still_found(root: Path, data: bytes) -> None:
    root.mkdir(exist_ok=True)
    (root / "openclaw.json").write_bytes(data)
    (root / "agents" / "main" / "sessions").mkdir(parents=True)
    (root / "agents" / "work" / "sessions").mkdir(parents=True)
    home = discover(root)
    assert [a.id for a in home.agents] == ["main", "work"]
    assert [p.kind for p in home.problems] == [ProblemKind.BAD_CONFIG]


def test_an_empty_state_directory_has_the_main_agent(root: Path) -> None:
    home = discover(root / "nothing-here")
    assert [(a.id, a.is_default, a.name) for a in home.agents] == [("main", True, None)]
    assert home.problems == ()


def test_missing_identity_falls_back_to_the_config_then_to_none(root: Path) -> None:
    writer = OpenClawWriter(root)
    writer.add_agent("main", "Juniper", "Dana")
    writer.add_agent("work", "Ledger", "Dana")
    (root / "workspace" / "IDENTITY.md").unlink()
    (root / "workspace-work" / "IDENTITY.md").unlink()
    _config(root, '{agents: {list: [{id: "main", identity: {name: "Juno"}}, {id: "work"}]}}')
    by_id = {a.id: a for a in discover(root).agents}
    assert by_id["main"].name == "Juno"
    assert by_id["work"].name is None
    assert by_id["work"].user_name == "Dana"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# IDENTITY.md\n\n- **Name:** Juniper\n- **Vibe:** calm\n", "Juniper"),
        ("**Name**: Juniper Berry\n", "Juniper Berry"),
        ("Name: Juniper\n", "Juniper"),
        # OpenClaw's template before the agent has picked a name
        ("- **Name:**\n  _(pick something you like)_\n- **Creature:**\n", None),
        ("- **Name:** _(pick something you like)_\n", None),
        ("# Who am I?\n\nNo name yet.\n", None),
    ],
)
def test_read_name(tmp_path: Path, text: str, expected: str | None) -> None:
    path = tmp_path / "IDENTITY.md"
    path.write_text(text)
    assert read_name(path) == expected
