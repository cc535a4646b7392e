"""What a backup saves: the state directory, each agent's workspace files, optionally the agents'
OpenClaw databases, and what it leaves out on purpose.

State directory: every file, with these exceptions: the backup directory itself, the lock, the
socket, SQLite's -wal/-shm/-journal companions (the online backup of the database covers them),
databases kept aside as ``*.corrupt-*``, temporary files and symlinks. ``memory.sqlite`` and
``chroma/`` are marked to be copied while the memory store's writers wait.

Workspaces: files matching the include globs and none of the exclude globs, relative to the
workspace (``*`` stays within a directory, ``**`` crosses them). Symlinks are never followed out
of the workspace. A file that looks like a credential (``.env``, keys, ``auth-profiles.json``,
anything under a ``credentials/`` directory) is never saved, even when a glob includes it, nor
is a symlink to one (judged by its target, not its own name); it is listed in the manifest as
skipped.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stores.backup.manifest import Skipped, Sources

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
COMPANIONS = ("-wal", "-shm", "-journal")
PAUSED_FILES = ("memory.sqlite",)
PAUSED_DIRS = ("chroma",)
STATE_IGNORED = frozenset({"infrad.lock", "infrad.sock"})

CREDENTIAL_DIRS = frozenset({"credentials", ".ssh", ".gnupg", ".aws", ".password-store"})
CREDENTIAL_NAMES = frozenset(
    {
        ".env",
        ".netrc",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        "auth-profiles.json",
        "auth.json",
        "credentials.json",
        "token.json",
        "tokens.json",
        "secrets.json",
    }
)
CREDENTIAL_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".kdbx", ".age-key")
CREDENTIAL_PREFIXES = (".env.", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "service-account")

Matcher = Callable[[str], bool]


@dataclass(frozen=True)
class Item:
    """One file to save: where it goes in the archive and where it comes from."""

    arcname: str
    source: Path
    kind: Literal["sqlite", "file"] = "file"
    #: Copied while the memory store's writers wait (its SQLite file and Chroma must match).
    paused: bool = False
    #: Open read-only (an OpenClaw database: never written, not even its -shm).
    read_only: bool = False
    size: int = 0


@dataclass
class Selection:
    items: list[Item] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: Sources = field(default_factory=lambda: Sources(state_dir=""))

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.items)


@dataclass(frozen=True)
class Workspace:
    agent_id: str
    root: Path


def select(
    state_dir: Path,
    backup_dir: Path,
    *,
    openclaw_home: Path | None = None,
    workspaces: Sequence[Workspace] = (),
    databases: Mapping[str, Path] | None = None,
    include: Sequence[str] = ("*.md", "memory/**"),
    exclude: Sequence[str] = (),
) -> Selection:
    selection = Selection()
    _state_items(state_dir, backup_dir, selection)
    included, excluded = globs(include), globs(exclude)
    seen: dict[Path, str] = {}
    for ws in workspaces:
        root = ws.root.expanduser().absolute()
        if root in seen:
            selection.notes.append(f"workspace of {ws.agent_id} is {seen[root]}'s; saved once")
            continue
        seen[root] = ws.agent_id
        if not root.is_dir():
            selection.notes.append(f"workspace of {ws.agent_id} not found: {root}")
            continue
        _workspace_items(ws.agent_id, root, included, excluded, selection)
    for agent_id, path in sorted((databases or {}).items()):
        if is_sqlite(path):
            arcname = f"openclaw/{agent_id}/{path.name}"
            selection.items.append(Item(arcname, path, "sqlite", read_only=True, size=_size(path)))
    selection.sources = Sources(
        state_dir=str(state_dir),
        openclaw_home=str(openclaw_home) if openclaw_home else None,
        workspaces={ws: str(root) for root, ws in seen.items()},
        openclaw_databases={a: str(p) for a, p in sorted((databases or {}).items())},
    )
    return selection


# --- the state directory ------------------------------------------------------------------------


def _state_items(state_dir: Path, backup_dir: Path, selection: Selection) -> None:
    avoid = {backup_dir.resolve()}
    for dirpath, dirnames, filenames in os.walk(state_dir):
        here = Path(dirpath)
        for name in list(dirnames):
            child = here / name
            if child.is_symlink() or child.resolve() in avoid or name.startswith(".staging-"):
                dirnames.remove(name)
                if child.is_symlink():
                    selection.skipped.append(Skipped(path=_rel(child, state_dir), reason="symlink"))
        dirnames.sort()
        for name in sorted(filenames):
            _state_file(here / name, state_dir, selection)


def _state_file(path: Path, state_dir: Path, selection: Selection) -> None:
    rel = _rel(path, state_dir)
    name = path.name
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        selection.skipped.append(Skipped(path=rel, reason="symlink"))
        return
    quiet = (
        not stat.S_ISREG(info.st_mode)  # the socket, fifos
        or rel in STATE_IGNORED
        or name.endswith(COMPANIONS)
        or (name.startswith(".") and name.endswith(".tmp"))
    )
    if quiet:
        return
    if ".corrupt-" in name:
        selection.skipped.append(Skipped(path=rel, reason="a damaged database kept aside"))
        return
    top = rel.split("/", 1)[0]
    paused = rel in PAUSED_FILES or (top in PAUSED_DIRS and "/" in rel)
    kind: Literal["sqlite", "file"] = "sqlite" if is_sqlite(path) else "file"
    selection.items.append(Item(f"state/{rel}", path, kind, paused=paused, size=info.st_size))


def is_sqlite(path: Path) -> bool:
    if not path.name.endswith(SQLITE_SUFFIXES):
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


# --- workspaces ---------------------------------------------------------------------------------


def _workspace_items(
    agent_id: str, root: Path, included: Matcher, excluded: Matcher, selection: Selection
) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in list(dirnames):
            child = here / name
            if child.is_symlink():
                dirnames.remove(name)
                rel = _rel(child, root)
                if included(rel + "/x"):
                    selection.skipped.append(
                        Skipped(path=f"workspaces/{agent_id}/{rel}/", reason="symlinked directory")
                    )
        dirnames.sort()
        for name in sorted(filenames):
            rel = _rel(here / name, root)
            if included(rel):
                _workspace_file(agent_id, root, rel, excluded, selection)


def _workspace_file(
    agent_id: str, root: Path, rel: str, excluded: Matcher, selection: Selection
) -> None:
    arcname = f"workspaces/{agent_id}/{rel}"
    reason = "excluded by setting" if excluded(rel) else credential_reason(rel)
    path = root / rel
    source = path
    if reason is None and path.is_symlink():
        source = path.resolve()
        reason = _link_reason(source, root.resolve())
    if reason is None and not source.is_file():
        reason = "not a regular file"
    if reason is not None:
        selection.skipped.append(Skipped(path=arcname, reason=reason))
        return
    selection.items.append(Item(arcname, source, "file", size=_size(source)))


def _link_reason(target: Path, root: Path) -> str | None:
    """Why a symlinked file is not saved: its name says nothing, what it points at decides
    (``memory/x.md -> ../.env`` is the credential file under another name)."""
    if not target.is_relative_to(root) or not target.is_file():
        return "symlink leading out of the workspace"
    rel = target.relative_to(root).as_posix()
    why = credential_reason(rel)
    return f"symlink to {rel}: {why}" if why else None


def credential_reason(rel: str) -> str | None:
    """Why a workspace path looks like a credential, or None."""
    parts = rel.split("/")
    name = parts[-1].lower()
    if any(p.lower() in CREDENTIAL_DIRS for p in parts[:-1]):
        return "under a credentials directory; never saved"
    looks = (
        name in CREDENTIAL_NAMES
        or name.endswith(CREDENTIAL_SUFFIXES)
        or name.startswith(CREDENTIAL_PREFIXES)
    )
    return "looks like a credential; never saved" if looks else None


# --- globs --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|\[!?[^\]/]+\]|[^*?\[]+|\[")
_WILD = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated relative paths: ``*`` and ``?`` stay within one directory,
    ``**`` crosses directories, ``dir/`` means everything under ``dir``."""
    pattern = pattern.strip().lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    return re.compile("".join(_translate(t) for t in _TOKEN.findall(pattern)) + r"\Z")


def _translate(token: str) -> str:
    if token in _WILD:
        return _WILD[token]
    if len(token) > 2 and token.startswith("[") and token.endswith("]"):
        body = token[1:-1]
        body = "^" + body[1:] if body.startswith("!") else body
        return "[" + body.replace("\\", "\\\\") + "]"
    return re.escape(token)


def globs(patterns: Iterable[str]) -> Matcher:
    compiled = [glob_regex(p) for p in patterns if p.strip()]
    return lambda rel: any(r.match(rel) for r in compiled)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
