"""OpenClaw's state directory as the daemon sees it: which agents exist and where their files are.

Agents come from two places, because either may be incomplete: the configuration's roster
(``agents.entries``, a map keyed by id, in current releases; ``agents.list`` in older ones) and
the ``agents/<id>/`` directories that hold transcripts (an agent removed from the config still
has history). Ids are normalised as OpenClaw normalises them, never refused.

Workspaces follow OpenClaw's own rule. An entry's own ``workspace`` wins. The owner agent (the
one marked ``default``, else the first listed or the only one; a roster with explicit
``ownership`` of several agents has none) gets ``agents.defaults.workspace`` as it is, else
``OPENCLAW_WORKSPACE_DIR``, else ``<state>/workspace``; every other agent gets
``<agents.defaults.workspace>/<id>``, else ``<state>/workspace-<id>``. Nothing here writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stores.openclaw.config import OpenClawEnv, config_file, load_config, user_path
from stores.openclaw.problems import Problem, ProblemKind

#: What an agent directory must be called: OpenClaw writes its directories by normalised id.
AGENT_ID = re.compile(r"[a-z0-9_][a-z0-9_-]{0,63}")
DEFAULT_AGENT_ID = "main"
DATABASE_FILE = "openclaw-agent.sqlite"

_VALID_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.IGNORECASE)
_INVALID_ID_CHARS = re.compile(r"[^a-z0-9_-]+")
#: IDENTITY.md and USER.md are a page of Markdown; anything longer is not worth parsing for a name.
_NAME_FILE_LIMIT = 64 * 1024
_NAME_LINE = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?name(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(?P<value>.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class OpenClawSource:
    """Where OpenClaw keeps its state, as the daemon's settings say."""

    home: Path
    #: The daemon's own setting for the owner agent's workspace: wins over the config.
    main_workspace: Path | None = None
    env: OpenClawEnv = field(default_factory=OpenClawEnv)

    @property
    def profile(self) -> str | None:
        return self.env.profile


@dataclass(frozen=True)
class ExtraPath:
    """A ``memorySearch.extraPaths`` entry: a Markdown file, or a folder (with a glob)."""

    path: Path
    pattern: str | None = None


@dataclass(frozen=True)
class Agent:
    id: str
    workspace: Path
    #: ``agents/<id>/agent`` (or the entry's ``agentDir``): the agent's own runtime files.
    agent_dir: Path
    #: ``agents/<id>/sessions``: the legacy layout's transcripts and published archives.
    sessions_dir: Path
    #: The agent's name (the config's identity, else IDENTITY.md), speaker of its turns.
    name: str | None
    #: The person's name (USER.md), speaker of user turns that carry no sender.
    user_name: str | None
    is_default: bool = False
    configured: bool = True
    #: Further notes OpenClaw's memory indexes for this agent.
    extra_paths: tuple[ExtraPath, ...] = ()

    @property
    def database(self) -> Path:
        """Always beside ``sessions/``: OpenClaw keeps it there whatever ``agentDir`` says."""
        return self.sessions_dir.parent / "agent" / DATABASE_FILE


@dataclass(frozen=True)
class OpenClawHome:
    state_dir: Path
    agents: tuple[Agent, ...]
    problems: tuple[Problem, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    config_path: Path | None = None

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)


def discover(source: OpenClawSource | Path) -> OpenClawHome:
    """Every agent of the state directory, configured ones first, in configuration order."""
    if isinstance(source, Path):
        source = OpenClawSource(source)
    state_dir, env = source.home, source.env
    problems: list[Problem] = []
    path = config_file(state_dir, env)
    config = load_config(path, problems, env.variables)
    roster = Roster.of(config)
    entries = dict(roster.entries)
    for agent_id in _agent_dirs(state_dir, problems):
        entries.setdefault(agent_id, {})
    if not entries:
        entries[DEFAULT_AGENT_ID] = {}
    owner = roster.owner()
    places = _Places(state_dir, env, _mapping(roster.agents.get("defaults")), source.main_workspace)
    agents = []
    for agent_id, entry in entries.items():
        workspace = places.workspace(agent_id, entry, is_owner=agent_id == owner)
        identity = _mapping(entry.get("identity"))
        agent_dir = _str(entry.get("agentDir"))
        agents.append(
            Agent(
                id=agent_id,
                workspace=workspace,
                agent_dir=(
                    _resolved(agent_dir, state_dir, env)
                    if agent_dir
                    else state_dir / "agents" / agent_id / "agent"
                ),
                sessions_dir=state_dir / "agents" / agent_id / "sessions",
                name=_str(identity.get("name"))
                or read_name(workspace / "IDENTITY.md")
                or _str(entry.get("name")),
                user_name=read_name(workspace / "USER.md"),
                is_default=agent_id == (owner or roster.system_agent()),
                configured=agent_id in roster.entries,
                extra_paths=_extra_paths(config, entry, workspace, env),
            )
        )
    return OpenClawHome(state_dir, tuple(agents), tuple(problems), config, path)


def normalise_agent_id(value: str) -> str | None:
    """OpenClaw's ``normalizeAgentIdStrict``: lower-cased, other characters made ``-``."""
    trimmed = value.strip()
    if _VALID_ID.fullmatch(trimmed):
        return trimmed.lower()
    normalised = _INVALID_ID_CHARS.sub("-", trimmed.lower()).strip("-")[:64]
    return normalised or None


def is_agent_id(value: str) -> bool:
    return AGENT_ID.fullmatch(value) is not None


def read_name(path: Path) -> str | None:
    """The ``Name:`` field of IDENTITY.md or USER.md; None if absent or still the template's."""
    try:
        with path.open("rb") as handle:
            text = handle.read(_NAME_FILE_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return None
    match = _NAME_LINE.search(text)
    if match is None:
        return None
    value = match.group("value").strip("*_` \t")
    # OpenClaw's template leaves the field empty with a hint on the next line: "_(pick ...)_".
    if not value or value.startswith(("(", "[", "<")):
        return None
    return value


@dataclass(frozen=True)
class Roster:
    """The configured agents: ``agents.entries`` (keyed by id) wins over ``agents.list``."""

    agents: Mapping[str, Any]
    kind: str | None
    entries: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Roster:
        agents = _mapping(config.get("agents"))
        found: dict[str, Mapping[str, Any]] = {}
        if isinstance(agents.get("entries"), dict):
            kind = "entries"
            raw = [(_str(key), value) for key, value in agents["entries"].items()]
        elif isinstance(agents.get("list"), list):
            kind = "list"
            raw = [(_str(_mapping(e).get("id")), e) for e in agents["list"]]
        else:
            return cls(agents, None, found)
        for key, value in raw:
            agent_id = normalise_agent_id(key or "") or DEFAULT_AGENT_ID
            found.setdefault(agent_id, _mapping(value))
        return cls(agents, kind, found)

    def owner(self) -> str | None:
        """The agent that owns ``<state>/workspace``: OpenClaw's legacy data owner."""
        ids = list(self.entries)
        marked = [i for i in ids if self.entries[i].get("default") is True]
        if self.kind is None:
            return DEFAULT_AGENT_ID
        if self.kind == "list":
            return marked[0] if marked else ids[0] if ids else DEFAULT_AGENT_ID
        if len(marked) == 1 and self.agents.get("ownership") != "explicit":
            return marked[0]
        return ids[0] if len(ids) == 1 else None

    def system_agent(self) -> str | None:
        """Who does ambient work when no agent owns the workspace: ``systemAgent.agentId``."""
        system = _mapping(_mapping(self.agents.get("defaults")).get("systemAgent"))
        agent_id = normalise_agent_id(_str(system.get("agentId")) or "")
        return agent_id if agent_id in self.entries else None


class _Places:
    def __init__(
        self,
        state_dir: Path,
        env: OpenClawEnv,
        defaults: Mapping[str, Any],
        main_workspace: Path | None,
    ) -> None:
        self.state_dir = state_dir
        self.env = env
        self.root = _str(defaults.get("workspace"))
        self.main_workspace = main_workspace

    def workspace(self, agent_id: str, entry: Mapping[str, Any], *, is_owner: bool) -> Path:
        if is_owner and self.main_workspace is not None:
            return self.main_workspace.expanduser()
        if configured := _str(entry.get("workspace")):
            return _resolved(configured, self.state_dir, self.env)
        if is_owner:
            if self.root:
                return _resolved(self.root, self.state_dir, self.env)
            return self._default_workspace()
        if self.root:
            return _resolved(self.root, self.state_dir, self.env) / agent_id
        return self.state_dir / f"workspace-{agent_id}"

    def _default_workspace(self) -> Path:
        """``OPENCLAW_WORKSPACE_DIR``, else ``<state>/workspace``; releases up to 2026.7 put a
        profile's at ``~/.openclaw/workspace-<profile>`` and never followed ``~/.clawdbot``,
        so those are taken when they exist and the current place does not."""
        if self.env.workspace_dir is not None:
            return self.env.workspace_dir.absolute()
        current = self.state_dir / "workspace"
        older = self.env.user_home / ".openclaw"
        profile = self.env.profile
        candidates = [current]
        if profile and profile.lower() != "default":
            candidates.append(older / f"workspace-{profile}")
        candidates.append(older / "workspace")
        return next((p for p in candidates if p.is_dir()), current)


def _extra_paths(
    config: Mapping[str, Any], entry: Mapping[str, Any], workspace: Path, env: OpenClawEnv
) -> tuple[ExtraPath, ...]:
    """``memory.search.extraPaths`` (global and the entry's own) in current releases;
    ``memorySearch.extraPaths`` under ``agents.defaults`` and the entry in older ones."""
    agents = _mapping(config.get("agents"))
    places = [
        _mapping(_mapping(config.get("memory")).get("search")),
        _mapping(_mapping(entry.get("memory")).get("search")),
        _mapping(_mapping(agents.get("defaults")).get("memorySearch")),
        _mapping(entry.get("memorySearch")),
    ]
    found: list[ExtraPath] = []
    for place in places:
        raw = place.get("extraPaths")
        for item in raw if isinstance(raw, list) else []:
            spec = _mapping(item)
            value = _str(item) or _str(spec.get("path"))
            if value is None:
                continue
            path = user_path(value, env.user_home)
            extra = ExtraPath(
                path if path.is_absolute() else workspace / path, _str(spec.get("pattern"))
            )
            if extra not in found:
                found.append(extra)
    return tuple(found)


def _agent_dirs(state_dir: Path, problems: list[Problem]) -> list[str]:
    root = state_dir / "agents"
    try:
        children = sorted(root.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        problems.append(Problem(str(root), ProblemKind.UNREADABLE, str(exc)))
        return []
    found = []
    for child in children:
        if child.name.startswith(".") or not child.is_dir():
            continue
        if is_agent_id(child.name):
            found.append(child.name)
        else:
            detail = "not an agent directory OpenClaw would write (ids are lower-case); ignored"
            problems.append(Problem(str(child), ProblemKind.BAD_AGENT_ID, detail))
    return found


def _resolved(value: str, state_dir: Path, env: OpenClawEnv) -> Path:
    path = user_path(value, env.user_home)
    # OpenClaw resolves a relative path against its own cwd, which the daemon cannot know.
    return path if path.is_absolute() else state_dir / path


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
