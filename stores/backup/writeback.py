"""Putting restored workspace files back into the agents' workspaces (``--force-workspaces``).

Where an agent's workspace is comes from OpenClaw's configuration as it is now
(``configured_workspaces``, the same discovery the backup job saves from), never from the
archive: a manifest is data, and one that names ``/home/me/.ssh`` as a workspace must not make a
restore write there. An agent of the backup that the configuration does not know is refused and
reported; its files stay in the restored copy.

Only files that are in the backup are written; nothing in a workspace is ever deleted. A file
whose content already matches is left alone; one that differs is first copied aside (into the
restore's "before" directory), then replaced atomically. A path that now goes through a symlink,
or that looks like a credential, is refused and reported, never written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stores.atomic import PRIVATE_DIR, PRIVATE_FILE, fsync_dir
from stores.backup.manifest import Manifest
from stores.backup.select import credential_reason
from stores.backup.snapshot import CHUNK, file_sha256
from stores.openclaw.home import OpenClawSource, discover


@dataclass
class WriteBack:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)
    #: Where the files it replaced were kept.
    aside: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "replaced_kept_in": self.aside,
        }


def configured_workspaces(source: OpenClawSource | Path) -> dict[str, Path]:
    """Agent id -> its workspace, as OpenClaw's configuration says now."""
    home = discover(source)
    return {a.id: a.workspace.expanduser().absolute() for a in home.agents}


def write_back(
    root: Path, manifest: Manifest, aside: Path, workspaces: Mapping[str, Path]
) -> WriteBack:
    """``root`` holds the restored archive layout; ``aside`` receives replaced files;
    ``workspaces`` maps agent ids to where their workspaces are now."""
    done = WriteBack()
    unknown: set[str] = set()
    for entry in manifest.files:
        if not entry.path.startswith("workspaces/"):
            continue
        _, agent, rel = entry.path.split("/", 2)
        home = workspaces.get(agent)
        if home is None:
            unknown.add(agent)
            continue
        reason = _unsafe(home, rel)
        if reason is not None:
            done.refused.append(f"{entry.path}: {reason}")
            continue
        dest = home / rel
        if dest.is_file() and file_sha256(dest)[0] == entry.sha256:
            done.unchanged += 1
            continue
        if dest.is_file():
            kept = aside / "workspaces" / agent / rel
            kept.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            shutil.copy2(dest, kept)
            done.aside = str(aside / "workspaces")
        dest.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        _replace(root / entry.path, dest)
        done.written.append(entry.path)
    done.refused.extend(
        f"workspaces/{agent}/: agent {agent} is not in the current OpenClaw configuration;"
        f" nothing written (its files are in {root / 'workspaces' / agent})"
        for agent in sorted(unknown)
    )
    return done


def _unsafe(home: Path, rel: str) -> str | None:
    if credential_reason(rel) is not None:
        return "looks like a credential; not written"
    here = home
    for part in rel.split("/")[:-1]:
        here = here / part
        if here.is_symlink():
            return f"{here} is a symlink now; not written through it"
        if here.exists() and not here.is_dir():
            return f"{here} is not a directory now"
    dest = home / rel
    if dest.is_symlink():
        return f"{dest} is a symlink now; not replaced"
    if dest.exists() and not dest.is_file():
        return f"{dest} is not a regular file now"
    return None


def _replace(source: Path, dest: Path) -> None:
    temp = dest.with_name(f".{dest.name}.restore.tmp")
    flags = os.O_CREAT | os.O_TRUNC | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        with source.open("rb") as src, open(os.open(temp, flags, PRIVATE_FILE), "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
