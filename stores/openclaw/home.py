"""OpenClaw's state directory as the daemon sees it: which agents exist and where their files are.

Agents come from two places, because either may be incomplete: ``agents.list`` in
``openclaw.json`` (JSON5) and the ``agents/<id>/`` directories that hold transcripts (an agent
removed from the config still has history). Workspaces follow OpenClaw's own rule: the default
agent's workspace is ``agents.defaults.workspace`` or ``<state>/workspace`` (``workspace-<profile>``
under a profile); every other agent's is ``<state>/workspace-<id>``, unless its list entry names
one. Nothing here writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from stores.openclaw.problems import Problem, ProblemKind

AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
DEFAULT_AGENT_ID = "main"
CONFIG_FILE = "openclaw.json"
DATABASE_FILE = "openclaw-agent.sqlite"

#: IDENTITY.md and USER.md are a page of Markdown; anything longer is not worth parsing for a name.
_NAME_FILE_LIMIT = 64 * 1024
_NAME_LINE = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?name(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(?P<value>.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Agent:
    id: str
    workspace: Path
    #: ``agents/<id>/agent``: holds the current layout's database.
    agent_dir: Path
    #: ``agents/<id>/sessions``: the legacy layout's transcripts and ``sessions.json``.
    sessions_dir: Path
    #: The agent's name (IDENTITY.md, else the config's identity/name), speaker of its turns.
    name: str | None
    #: The person's name (USER.md), speaker of user turns that carry no sender block.
    user_name: str | None
    is_default: bool = False
    configured: bool = True

    @property
    def database(self) -> Path:
        return self.agent_dir / DATABASE_FILE


@dataclass(frozen=True)
class OpenClawHome:
    state_dir: Path
    agents: tuple[Agent, ...]
    problems: tuple[Problem, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)


def discover(
    state_dir: Path, *, profile: str | None = None, main_workspace: Path | None = None
) -> OpenClawHome:
    """Every agent of the state directory, configured ones first, in configuration order.

    ``main_workspace`` overrides the default agent's workspace wherever the config puts it (the
    user told the daemon where it is); ``profile`` is OpenClaw's ``OPENCLAW_PROFILE``.
    """
    problems: list[Problem] = []
    config = load_config(state_dir / CONFIG_FILE, problems)
    entries = _listed_entries(config, state_dir / CONFIG_FILE, problems)
    listed = list(entries)
    for agent_id in _agent_dirs(state_dir, problems):
        if agent_id not in entries:
            entries[agent_id] = {}
    if not entries:
        entries[DEFAULT_AGENT_ID] = {}
    default_id = _default_agent_id(config, listed)
    defaults = _mapping(_mapping(config.get("agents")).get("defaults"))
    legacy = _mapping(config.get("agent"))
    default_workspace = _str(defaults.get("workspace")) or _str(legacy.get("workspace"))
    agents = []
    for agent_id, entry in entries.items():
        is_default = agent_id == default_id
        if is_default and main_workspace is not None:
            workspace = main_workspace.expanduser()
        elif configured := _str(entry.get("workspace")):
            workspace = _user_path(configured, state_dir)
        elif is_default and default_workspace:
            workspace = _user_path(default_workspace, state_dir)
        elif is_default:
            suffix = f"-{profile}" if profile and profile.lower() != "default" else ""
            workspace = state_dir / f"workspace{suffix}"
        else:
            workspace = state_dir / f"workspace-{agent_id}"
        agent_dir = _str(entry.get("agentDir"))
        identity = _mapping(entry.get("identity"))
        agents.append(
            Agent(
                id=agent_id,
                workspace=workspace,
                agent_dir=(
                    _user_path(agent_dir, state_dir)
                    if agent_dir
                    else state_dir / "agents" / agent_id / "agent"
                ),
                sessions_dir=state_dir / "agents" / agent_id / "sessions",
                name=read_name(workspace / "IDENTITY.md")
                or _str(identity.get("name"))
                or _str(entry.get("name")),
                user_name=read_name(workspace / "USER.md"),
                is_default=is_default,
                configured=agent_id in listed,
            )
        )
    return OpenClawHome(state_dir, tuple(agents), tuple(problems), config)


def load_config(path: Path, problems: list[Problem]) -> dict[str, Any]:
    """``openclaw.json`` parsed as JSON5; a missing file is an empty config, a broken one too."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        problems.append(Problem(str(path), ProblemKind.UNREADABLE, str(exc)))
        return {}
    try:
        value = json5.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        problems.append(Problem(str(path), ProblemKind.BAD_CONFIG, f"not JSON5: {exc}"))
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(str(path), ProblemKind.BAD_CONFIG, "not an object"))
        return {}
    return value


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


def is_agent_id(value: str) -> bool:
    return AGENT_ID.fullmatch(value) is not None


def _listed_entries(
    config: Mapping[str, Any], path: Path, problems: list[Problem]
) -> dict[str, Mapping[str, Any]]:
    entries: dict[str, Mapping[str, Any]] = {}
    listed = _mapping(config.get("agents")).get("list")
    if not isinstance(listed, list):
        return entries
    for index, raw in enumerate(listed):
        entry = _mapping(raw)
        agent_id = (_str(entry.get("id")) or "").lower()
        if not is_agent_id(agent_id):
            problems.append(
                Problem(
                    f"{path}:agents.list[{index}]",
                    ProblemKind.BAD_AGENT_ID,
                    f"agent id {entry.get('id')!r} does not match {AGENT_ID.pattern}; ignored",
                )
            )
        elif agent_id not in entries:
            entries[agent_id] = entry
    return entries


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
            problems.append(
                Problem(
                    str(child),
                    ProblemKind.BAD_AGENT_ID,
                    f"directory name does not match {AGENT_ID.pattern}; ignored",
                )
            )
    return found


def _default_agent_id(config: Mapping[str, Any], listed: list[str]) -> str:
    """OpenClaw's rule: the entry marked ``default``, else ``main`` if listed, else the first."""
    for raw in _mapping(config.get("agents")).get("list") or []:
        entry = _mapping(raw)
        agent_id = (_str(entry.get("id")) or "").lower()
        if entry.get("default") is True and agent_id in listed:
            return agent_id
    if not listed or DEFAULT_AGENT_ID in listed:
        return DEFAULT_AGENT_ID
    return listed[0]


def _user_path(value: str, state_dir: Path) -> Path:
    path = Path(value).expanduser()
    # OpenClaw resolves a relative path against its own cwd, which the daemon cannot know.
    return path if path.is_absolute() else state_dir / path


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
