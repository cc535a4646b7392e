"""Checks on a restored copy: is it a state directory the daemon can start on?

* every SQLite copy passes ``PRAGMA integrity_check``;
* memory.sqlite holds what the manifest says it held when copied, and each session's turns are
  numbered without gaps;
* the Chroma copy opens (in a subprocess: a second embedded Chroma in the daemon's process
  would share its caches), its vectors agree with memory.sqlite (every row marked embedded has
  a vector; no vector belongs to no row), and one search finds a stored vector again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stores
from stores.backup.manifest import Manifest
from stores.backup.snapshot import memory_counts, read_only
from stores.childenv import child_environ
from stores.counts import count

PROBE_TIMEOUT = 300.0


@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    sqlite: dict[str, str] = field(default_factory=dict)
    memory: dict[str, int] | None = None
    chroma: dict[str, Any] | None = None


def check_restored(root: Path, manifest: Manifest, *, probe: bool = True) -> Checked:
    """``root`` holds the archive's layout (``state/``, ``workspaces/``, ...)."""
    checked = Checked()
    for entry in manifest.files:
        if entry.kind == "sqlite" and (root / entry.path).is_file():
            verdict = integrity(root / entry.path)
            checked.sqlite[entry.path] = verdict
            if verdict != "ok":
                checked.problems.append(f"{entry.path}: integrity_check failed: {verdict}")
    memory = root / "state" / "memory.sqlite"
    if manifest.memory is not None and checked.sqlite.get("state/memory.sqlite") == "ok":
        _check_memory(memory, manifest, checked)
    chroma = root / "state" / "chroma"
    if probe and checked.memory is not None and chroma.is_dir():
        _check_chroma(chroma, memory, checked)
    return checked


def integrity(path: Path) -> str:
    try:
        with contextlib.closing(read_only(path)) as conn:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return "ok" if rows == ["ok"] else "; ".join(rows[:3])


def _check_memory(memory: Path, manifest: Manifest, checked: Checked) -> None:
    assert manifest.memory is not None
    try:
        counts = memory_counts(memory)
        gaps = _turn_gaps(memory)
    except sqlite3.DatabaseError as exc:
        checked.problems.append(f"state/memory.sqlite: not a memory store ({exc})")
        return
    checked.memory = counts.model_dump()
    if counts != manifest.memory:
        checked.problems.append(
            f"state/memory.sqlite: holds {counts.model_dump()}, the manifest says"
            f" {manifest.memory.model_dump()}"
        )
    for agent, session in gaps[:5]:
        checked.problems.append(f"state/memory.sqlite: turns of {agent}/{session} have gaps")


def _turn_gaps(memory: Path) -> list[tuple[str, str]]:
    with contextlib.closing(read_only(memory)) as conn:
        rows = conn.execute(
            "SELECT agent, session_id FROM turns GROUP BY agent, session_id"
            " HAVING MIN(idx) != 0 OR MAX(idx) != COUNT(*) - 1"
        ).fetchall()
    return [(str(a), str(s)) for a, s in rows]


def vector_problems(state: Path) -> list[str]:
    """What is wrong with the vectors of a copied state directory (its ``chroma/`` against its
    ``memory.sqlite``); nothing when either is not there."""
    chroma, memory = state / "chroma", state / "memory.sqlite"
    checked = Checked()
    if chroma.is_dir() and memory.is_file():
        _check_chroma(chroma, memory, checked)
    return checked.problems


def _check_chroma(chroma: Path, memory: Path, checked: Checked) -> None:
    try:
        result = run_probe(chroma, memory)
    except ProbeFailed as exc:
        checked.problems.append(f"state/chroma: does not open: {exc}")
        return
    checked.chroma = result
    if result["missing"]:
        checked.problems.append(
            f"state/chroma: {count(result['missing'], 'row')} marked embedded"
            f" {'has' if result['missing'] == 1 else 'have'} no vector"
            f" (e.g. {result['missing_example']})"
        )
    if result["extra"]:
        extra = result["extra"]
        belong = "belongs" if extra == 1 else "belong"
        checked.problems.append(f"state/chroma: {count(extra, 'vector')} {belong} to no row")
    search = result.get("search")
    if search is not None and not search["found"]:
        checked.problems.append(
            f"state/chroma: a search for stored vector {search['id']} missed it"
        )


class ProbeFailed(Exception):
    pass


def probe_environ(package_root: str) -> dict[str, str]:
    """The probe's environment: the daemon's, less its secrets, and where to import from."""
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return child_environ(os.environ, extra={"PYTHONPATH": path})


def run_probe(chroma: Path, memory: Path, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """``stores.backup.probe`` in a fresh interpreter; its JSON report."""
    package_root = str(Path(stores.__file__).resolve().parent.parent)
    env = probe_environ(package_root)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "stores.backup.probe", str(chroma), str(memory)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"no answer within {timeout:.0f}s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ProbeFailed(lines[-1] if lines else f"exit status {done.returncode}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report
