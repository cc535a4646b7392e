"""Health of what the daemon reads: is OpenClaw's home there, with agents, readable, configured?

A typo in ``OPENCLAW_STATE_DIR`` otherwise leaves a daemon that says ``health: ok`` and reads
nothing forever. The check is cheap (one ``discover``, a stat and a 16-byte read per agent),
so it runs with every health check: what it finds itself, plus the problems the latest ingest
run met that stop a whole source from being read (a damaged database, an unreadable file, a
configuration that does not parse). Problems of single lines are the ingest run's business.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.checks import HealthCheck, HealthStatus
from stores.counts import count
from stores.openclaw.home import Agent, OpenClawSource, discover
from stores.openclaw.problems import ProblemKind
from stores.runlog import JobRun, RunStatus

NAME = "openclaw"
#: The kinds of problem that keep a whole source (a database, a file, the configuration) unread.
SERIOUS = frozenset(
    {
        ProblemKind.BAD_CONFIG,
        ProblemKind.UNREADABLE,
        ProblemKind.CORRUPT_DATABASE,
        ProblemKind.OLD_SCHEMA,
        ProblemKind.SOURCE_FAILED,
    }
)
SQLITE_HEADER = b"SQLite format 3\x00"
#: Problems named in the check's one line; the rest are counted.
NAMED = 3


def openclaw_check(source: OpenClawSource | None, last_ingest: JobRun | None) -> HealthCheck | None:
    """None when the daemon reads no OpenClaw home at all (then there is nothing to judge)."""
    if source is None:
        return None
    home = source.home
    if not home.is_dir():
        return HealthCheck(
            NAME,
            HealthStatus.DEGRADED,
            f"no OpenClaw home at {home}: nothing is read; check OPENCLAW_STATE_DIR"
            " (or OPENCLAW_INFRA_OPENCLAW_STATE_DIR, OPENCLAW_PROFILE)",
        )
    found = discover(source)
    agents = [a for a in found.agents if _has_data(a)]
    problems = [f"{_short(p.where, home)}: {p.detail}" for p in found.problems if p.kind in SERIOUS]
    problems += [p for a in agents if (p := _unreadable(a, home))]
    problems += _ingest_problems(last_ingest, home)
    if not agents:
        problems.insert(
            0,
            f"no agents in {home}: no agents/ directory and none listed in"
            f" {found.config_path or 'openclaw.json'}",
        )
    if problems:
        more = f" (+{len(problems) - NAMED} more)" if len(problems) > NAMED else ""
        return HealthCheck(NAME, HealthStatus.DEGRADED, "; ".join(problems[:NAMED]) + more)
    names = ", ".join(a.id for a in agents)
    return HealthCheck(NAME, HealthStatus.OK, f"{count(len(agents), 'agent')} ({names}) in {home}")


def last_finished(runs: Sequence[JobRun]) -> JobRun | None:
    return next((r for r in runs if r.status is not RunStatus.RUNNING), None)


def _has_data(agent: Agent) -> bool:
    return agent.configured or agent.sessions_dir.is_dir() or agent.database.is_file()


def _unreadable(agent: Agent, home: Path) -> str | None:
    """Why this agent's transcripts cannot be read, found without reading them."""
    sessions = agent.sessions_dir
    if sessions.is_dir() and not os.access(sessions, os.R_OK | os.X_OK):
        return f"{_short(str(sessions), home)}: not readable by this user"
    database = agent.database
    if not database.is_file():
        return None
    try:
        with database.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"{_short(str(database), home)}: not readable ({exc.strerror or exc})"
    if header != SQLITE_HEADER:
        return f"{_short(str(database), home)}: not an SQLite database (damaged?)"
    return None


def _ingest_problems(run: JobRun | None, home: Path) -> list[str]:
    if run is None:
        return []
    examples: Any = (run.stats or {}).get("problem_examples") or []
    found = []
    for example in examples:
        if isinstance(example, dict) and example.get("kind") in SERIOUS:
            where = _short(str(example.get("where", "?")), home)
            found.append(f"{where}: {example.get('kind')} (ingest run {run.run_id})")
    return list(dict.fromkeys(found))


def _short(where: str, home: Path) -> str:
    """A place under the home, relative to it: the line stays readable."""
    prefix = str(home) + os.sep
    return where.removeprefix(prefix)
