from __future__ import annotations

from pathlib import Path

import pytest

from daemon.sample.writer import OpenClawWriter
from stores.openclaw.config import OpenClawEnv
from stores.openclaw.home import ExtraPath, OpenClawSource, discover, read_name
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


def test_configured_workspaces_win_and_tilde_is_expanded(root: Path, tmp_path: Path) -> None:
    env = OpenClawEnv(home=tmp_path / "home")
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
    home = discover(OpenClawSource(root, env=env))
    by_id = {a.id: a for a in home.agents}
    # The owner takes agents.defaults.workspace as it is; the others live under it.
    assert by_id["main"].workspace == tmp_path / "home" / "main-ws"
    assert by_id["kid"].workspace == tmp_path / "home" / "main-ws" / "kid"
    assert by_id["ops"].workspace == Path("/srv/ops-ws")  # ids are lower-cased, as OpenClaw does
    assert by_id["ops"].agent_dir == tmp_path / "home" / "ops-agent"
    # The database stays beside the sessions whatever agentDir says.
    assert by_id["ops"].database == root / "agents" / "ops" / "agent" / "openclaw-agent.sqlite"


def test_the_agent_marked_default_gets_the_default_workspace(root: Path) -> None:
    _config(root, '{agents: {list: [{id: "main"}, {id: "home", default: true}]}}')
    by_id = {a.id: a for a in discover(root).agents}
    assert by_id["home"].is_default
    assert by_id["home"].workspace == root / "workspace"
    assert by_id["main"].workspace == root / "workspace-main"


def test_the_keyed_roster_of_current_releases_is_read(root: Path) -> None:
    """What ``openclaw agents add`` writes: ``agents.entries`` keyed by id, ownership explicit."""
    _config(
        root,
        """{agents: {ownership: "explicit",
          defaults: {systemAgent: {agentId: "main"}},
          entries: {
            main: {workspace: "ROOT/ws-main", identity: {name: "Juniper"}},
            Work: {workspace: "ROOT/ws-work", name: "work"},
            ops: {},
          },
          list: [{id: "ignored"}]}}""".replace("ROOT", str(root)),
    )
    home = discover(root)
    assert [a.id for a in home.agents] == ["main", "work", "ops"]
    by_id = {a.id: a for a in home.agents}
    assert by_id["main"].workspace == root / "ws-main"
    assert by_id["main"].name == "Juniper"
    assert by_id["work"].workspace == root / "ws-work"
    # An explicit roster of several agents has no owner of <state>/workspace.
    assert by_id["ops"].workspace == root / "workspace-ops"
    assert [a.id for a in home.agents if a.is_default] == ["main"]
    assert home.problems == ()


def test_a_sole_entry_owns_the_default_workspace(root: Path) -> None:
    _config(root, "{agents: {entries: {solo: {}}}}")
    (solo,) = discover(root).agents
    assert (solo.id, solo.workspace, solo.is_default) == ("solo", root / "workspace", True)


def test_openclaw_workspace_dir_is_the_owners_when_the_config_names_none(
    root: Path, tmp_path: Path
) -> None:
    _config(root, '{agents: {list: [{id: "main"}, {id: "work"}]}}')
    env = OpenClawEnv(workspace_dir=tmp_path / "elsewhere")
    by_id = {a.id: a for a in discover(OpenClawSource(root, env=env)).agents}
    assert by_id["main"].workspace == tmp_path / "elsewhere"
    assert by_id["work"].workspace == root / "workspace-work"
    _config(root, '{agents: {defaults: {workspace: "/cfg"}, list: [{id: "main"}]}}')
    (main,) = discover(OpenClawSource(root, env=env)).agents
    assert main.workspace == Path("/cfg")  # the config wins over the variable


@pytest.mark.parametrize(
    ("profile", "expected"),
    [(None, ".openclaw"), ("default", ".openclaw"), ("Work", ".openclaw-Work")],
)
def test_profile_names_the_state_directory(
    tmp_path: Path, profile: str | None, expected: str
) -> None:
    env = OpenClawEnv(profile=profile, home=tmp_path)
    assert env.state_dir_path() == tmp_path / expected
    explicit = OpenClawEnv(profile=profile, home=tmp_path, state_dir=Path("/x"))
    assert explicit.state_dir_path() == Path("/x")


def test_a_profile_workspace_of_older_releases_is_found(tmp_path: Path) -> None:
    env = OpenClawEnv(profile="work", home=tmp_path)
    state = env.state_dir_path()
    _config(state, '{agents: {list: [{id: "main"}]}}')
    older = tmp_path / ".openclaw" / "workspace-work"
    older.mkdir(parents=True)
    (main,) = discover(OpenClawSource(state, env=env)).agents
    assert main.workspace == older
    (state / "workspace").mkdir()
    (main,) = discover(OpenClawSource(state, env=env)).agents
    assert main.workspace == state / "workspace"


def test_the_old_clawdbot_home_is_used_when_it_is_all_there_is(tmp_path: Path) -> None:
    env = OpenClawEnv(home=tmp_path)
    (tmp_path / ".clawdbot").mkdir()
    (tmp_path / ".clawdbot" / "clawdbot.json").write_text('{agents: {list: [{id: "old"}]}}')
    assert env.state_dir_path() == tmp_path / ".clawdbot"
    home = discover(OpenClawSource(env.state_dir_path(), env=env))
    assert [a.id for a in home.agents] == ["old"]
    assert home.config_path == tmp_path / ".clawdbot" / "clawdbot.json"
    (tmp_path / ".openclaw").mkdir()
    assert env.state_dir_path() == tmp_path / ".openclaw"


def test_openclaw_config_path_overrides_the_file(root: Path, tmp_path: Path) -> None:
    _config(root, '{agents: {list: [{id: "here"}]}}')
    other = tmp_path / "other.json"
    other.write_text('{agents: {list: [{id: "there"}]}}')
    env = OpenClawEnv(config_path=other)
    assert [a.id for a in discover(OpenClawSource(root, env=env)).agents] == ["there"]


def test_includes_and_variables_are_resolved(root: Path) -> None:
    _config(
        root,
        """{ "$include": "./agents.json5", agents: {defaults: {workspace: "${WS_ROOT}"}},
             env: {vars: {FROM_CONFIG: "cfg"}}, note: "$${LITERAL} ${FROM_CONFIG}" }""",
    )
    (root / "agents.json5").write_text('{agents: {list: [{id: "main"}, {id: "inc"}]}}')
    env = OpenClawEnv(variables={"WS_ROOT": str(root / "spaces")})
    home = discover(OpenClawSource(root, env=env))
    assert [a.id for a in home.agents] == ["main", "inc"]
    assert home.agents[0].workspace == root / "spaces"
    assert home.agents[1].workspace == root / "spaces" / "inc"
    assert home.config["note"] == "${LITERAL} cfg"
    assert home.problems == ()


@pytest.mark.parametrize(
    ("include", "detail"),
    [("../outside.json", "outside"), ("./self.json", "includes itself"), ("./nope.json", "found")],
)
def test_a_bad_include_is_a_problem_not_a_failure(root: Path, include: str, detail: str) -> None:
    _config(root, f'{{"$include": "{include}", agents: {{list: [{{id: "main"}}]}}}}')
    (root / "self.json").write_text('{"$include": "./self.json"}')
    (root.parent / "outside.json").write_text("{}")
    home = discover(root)
    assert [a.id for a in home.agents] == ["main"]
    assert [p.kind for p in home.problems] == [ProblemKind.BAD_CONFIG]
    assert detail in home.problems[0].detail


def test_an_unset_variable_is_reported(root: Path) -> None:
    _config(root, '{agents: {list: [{id: "main", workspace: "${NOPE}/ws"}]}}')
    home = discover(root)
    assert [p.kind for p in home.problems] == [ProblemKind.BAD_CONFIG]
    assert "${NOPE}" in home.problems[0].detail


def test_extra_memory_paths_of_both_releases(root: Path) -> None:
    _config(
        root,
        """{memory: {search: {extraPaths: ["notes", {path: "/abs/docs", pattern: "**/*.md"}]}},
            agents: {defaults: {memorySearch: {extraPaths: ["old"]}},
                     entries: {main: {memory: {search: {extraPaths: ["mine.md"]}}}}}}""",
    )
    (main,) = discover(root).agents
    ws = root / "workspace"
    assert main.extra_paths == (
        ExtraPath(ws / "notes"),
        ExtraPath(Path("/abs/docs"), "**/*.md"),
        ExtraPath(ws / "mine.md"),
        ExtraPath(ws / "old"),
    )


def test_explicit_main_workspace_overrides_the_config(root: Path, tmp_path: Path) -> None:
    _config(root, '{agents: {defaults: {workspace: "/elsewhere"}, list: [{id: "main"}]}}')
    (main,) = discover(OpenClawSource(root, main_workspace=tmp_path / "ws")).agents
    assert main.workspace == tmp_path / "ws"


def test_agents_with_transcripts_but_not_configured_are_found(root: Path) -> None:
    OpenClawWriter(root).add_agent("main", "Juniper", "Dana")
    (root / "agents" / "old-helper" / "sessions").mkdir(parents=True)
    (root / "agents" / ".trash").mkdir()
    home = discover(root)
    assert [(a.id, a.configured) for a in home.agents] == [("main", True), ("old-helper", False)]
    assert home.problems == ()


def test_agent_ids_are_normalised_as_openclaw_does(root: Path) -> None:
    _config(root, '{agents: {list: [{id: "main"}, {id: "../Etc"}, {id: "-x"}, {name: "no id"}]}}')
    (root / "agents" / "Bad Name").mkdir(parents=True)
    (root / "agents" / "a").mkdir()
    home = discover(root)
    # "../Etc" -> "etc", "-x" -> "x"; an entry without an id is OpenClaw's "main".
    assert [a.id for a in home.agents] == ["main", "etc", "x", "a"]
    (bad,) = home.problems
    assert (bad.where, bad.kind) == (str(root / "agents" / "Bad Name"), ProblemKind.BAD_AGENT_ID)


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
