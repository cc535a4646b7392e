"""Finding and reading OpenClaw's configuration the way OpenClaw does.

Where: ``OPENCLAW_STATE_DIR``, else the profile's ``~/.openclaw-<profile>``, else
``~/.openclaw``, else the old ``~/.clawdbot`` when only that exists (``OPENCLAW_HOME`` stands in
for ``~``). Which file: ``OPENCLAW_CONFIG_PATH``, else the first of ``openclaw.json`` and the
old ``clawdbot.json`` that exists. How: JSON5, with ``$include`` (a path or a list of paths,
relative to the including file and confined to its directory) merged under the keys beside it,
and ``${VAR}`` in strings taken from the environment (``$${VAR}`` is a literal). Nothing here
writes; a problem is reported, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from stores.openclaw.problems import Problem, ProblemKind

CONFIG_FILE = "openclaw.json"
LEGACY_CONFIG_FILE = "clawdbot.json"
STATE_DIR_NAME = ".openclaw"
LEGACY_STATE_DIR_NAME = ".clawdbot"
#: OpenClaw's ``PROFILE_NAME_RE``.
PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.IGNORECASE)
MAX_INCLUDE_BYTES = 2 * 1024 * 1024
MAX_INCLUDE_DEPTH = 16

_VARIABLE = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class OpenClawEnv:
    """OpenClaw's own variables as the daemon saw them at start-up (it reads none later)."""

    state_dir: Path | None = None
    config_path: Path | None = None
    profile: str | None = None
    #: ``OPENCLAW_HOME``: what ``~`` means to OpenClaw.
    home: Path | None = None
    #: ``OPENCLAW_WORKSPACE_DIR``: the owner agent's workspace when the config names none.
    workspace_dir: Path | None = None
    #: For ``${VAR}`` in the configuration; never shown (it may hold secrets).
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def user_home(self) -> Path:
        return (self.home or Path.home()).expanduser()

    def state_dir_path(self) -> Path:
        if self.state_dir is not None:
            return user_path(str(self.state_dir), self.user_home)
        if self.profile and PROFILE_NAME.fullmatch(self.profile):
            suffix = "" if self.profile.lower() == "default" else f"-{self.profile}"
            return self.user_home / f"{STATE_DIR_NAME}{suffix}"
        current = self.user_home / STATE_DIR_NAME
        legacy = self.user_home / LEGACY_STATE_DIR_NAME
        return legacy if not current.exists() and legacy.is_dir() else current


def config_file(state_dir: Path, env: OpenClawEnv) -> Path:
    """The configuration file OpenClaw reads for this state directory (it need not exist)."""
    if env.config_path is not None:
        return user_path(str(env.config_path), env.user_home)
    candidates = [state_dir / CONFIG_FILE, state_dir / LEGACY_CONFIG_FILE]
    return next((path for path in candidates if path.is_file()), candidates[0])


def load_config(
    path: Path, problems: list[Problem], variables: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The parsed configuration; a missing file is an empty one, and so is a broken one."""
    loader = _Loader(path.parent, problems)
    value = loader.load(path, (), required=False)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(str(path), ProblemKind.BAD_CONFIG, "not an object"))
        return {}
    merged = {**_config_variables(value.get("env")), **(variables or {})}
    substituted = _substitute(value, merged, path, problems)
    return substituted if isinstance(substituted, dict) else {}


def user_path(value: str, home: Path) -> Path:
    """``~`` expanded against OpenClaw's home; a relative path stays relative."""
    if value == "~" or value.startswith("~/"):
        return home / value[2:]
    return Path(value)


class _Loader:
    def __init__(self, root: Path, problems: list[Problem]) -> None:
        self.root = root.resolve()
        self.problems = problems

    def load(self, path: Path, chain: tuple[Path, ...], *, required: bool) -> Any:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_INCLUDE_BYTES + 1)
        except FileNotFoundError:
            if required:
                self._problem(path, "included file not found")
            return None
        except OSError as exc:
            self.problems.append(Problem(str(path), ProblemKind.UNREADABLE, str(exc)))
            return None
        if len(data) > MAX_INCLUDE_BYTES:
            self._problem(path, f"larger than {MAX_INCLUDE_BYTES} bytes; not read")
            return None
        try:
            value = json5.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            self._problem(path, f"not JSON5: {str(exc)[:200]}")
            return None
        return self._resolve(value, path, (*chain, path.resolve()))

    def _resolve(self, value: Any, path: Path, chain: tuple[Path, ...]) -> Any:
        if isinstance(value, list):
            return [self._resolve(item, path, chain) for item in value]
        if not isinstance(value, dict):
            return value
        rest = {k: self._resolve(v, path, chain) for k, v in value.items() if k != "$include"}
        if "$include" not in value:
            return rest
        included: Any = {}
        targets = value["$include"]
        for target in targets if isinstance(targets, list) else [targets]:
            part = self._include(target, path, chain)
            included = deep_merge(included, part) if part is not None else included
        return deep_merge(included, rest)

    def _include(self, target: Any, path: Path, chain: tuple[Path, ...]) -> Any:
        if not isinstance(target, str) or not target.strip():
            self._problem(path, f"$include must name a file, not {target!r}"[:200])
            return None
        resolved = (path.parent / target).resolve()
        if not resolved.is_relative_to(self.root):
            self._problem(path, f"$include {target!r} is outside {self.root}; not read")
            return None
        if resolved in chain or len(chain) >= MAX_INCLUDE_DEPTH:
            self._problem(path, f"$include {target!r} includes itself; not read")
            return None
        return self.load(resolved, chain, required=True)

    def _problem(self, path: Path, detail: str) -> None:
        self.problems.append(Problem(str(path), ProblemKind.BAD_CONFIG, detail))


def deep_merge(base: Any, over: Any) -> Any:
    """OpenClaw's merge: objects recursively, lists concatenated, anything else ``over`` wins."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(over, list):
        return [*base, *over]
    return over


def _substitute(
    value: Any, variables: Mapping[str, str], path: Path, problems: list[Problem]
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables, path, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, path, problems) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if name in variables:
            return variables[name]
        detail = f"${{{name}}} is not set in the environment; left as written"
        problems.append(Problem(str(path), ProblemKind.BAD_CONFIG, detail))
        return match.group(0)

    return _VARIABLE.sub(replace, value)


def _config_variables(block: Any) -> dict[str, str]:
    """The config's own ``env`` block (``vars`` and plain string keys); the process's own
    environment wins over it, as in OpenClaw."""
    if not isinstance(block, dict):
        return {}
    found = {k: v for k, v in block.items() if k not in ("vars", "shellEnv")}
    if isinstance(block.get("vars"), dict):
        found = {**block["vars"], **found}
    return {k: v for k, v in found.items() if isinstance(v, str) and v.strip()}
