"""Telling an agent that something is waiting: ``openclaw system event --text ... --mode now
--session-key agent:<id>:main``.

The event goes to that agent's main session and wakes it at once (without a session key it would
reach only OpenClaw's system agent); the text says where the note is, the note itself says the
rest. The gateway must be running: events are not queued for a stopped one. Run without a
shell (the text is an argument, never parsed), with stdin closed and a timeout after which the
process is killed. A missing command, a failure or a timeout is an outcome to report in the
run's stats, never an exception: the notes are written either way and OpenClaw's indexer
finds them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MAX_TEXT = 1000
_DETAIL = 300


class AnnounceStatus(StrEnum):
    SENT = "sent"
    OFF = "off"
    SKIPPED = "skipped"
    MISSING = "missing"
    FAILED = "failed"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Announcement:
    status: AnnounceStatus
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "detail": self.detail}


def main_session(agent: str) -> str:
    """OpenClaw's key of an agent's main session."""
    return f"agent:{agent}:main"


def announce_argv(command: str, text: str, agent: str) -> list[str]:
    return [
        command,
        "system",
        "event",
        "--text",
        text[:MAX_TEXT],
        "--mode",
        "now",
        "--session-key",
        main_session(agent),
    ]


async def announce(
    command: str, text: str, *, agent: str, within: float, env: Mapping[str, str]
) -> Announcement:
    """``env`` is the child's whole environment (``stores.childenv``): never the daemon's."""
    argv = announce_argv(command, text, agent)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        return _outcome(AnnounceStatus.MISSING, f"{command}: command not found")
    except OSError as exc:
        return _outcome(AnnounceStatus.FAILED, f"{command}: {exc.strerror or exc}")
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return _outcome(AnnounceStatus.TIMEOUT, f"{command}: no answer within {within:g}s")
    if proc.returncode != 0:
        said = " ".join(stderr.decode("utf-8", "replace").split())[-_DETAIL:]
        detail = f"{command} exited with {proc.returncode}" + (f": {said}" if said else "")
        return _outcome(AnnounceStatus.FAILED, detail)
    return _outcome(AnnounceStatus.SENT)


def combined(outcomes: list[Announcement]) -> Announcement:
    """Several agents told: sent if every one was, else the first that was not, with how many."""
    failed = [o for o in outcomes if o.status is not AnnounceStatus.SENT]
    if not failed:
        return Announcement(AnnounceStatus.SENT)
    detail = failed[0].detail
    if len(outcomes) > 1:
        detail = f"{len(failed)} of {len(outcomes)} not told; {detail}"
    return Announcement(failed[0].status, detail)


def _outcome(status: AnnounceStatus, detail: str = "") -> Announcement:
    if status is AnnounceStatus.SENT:
        log.info("announce.sent")
    else:
        log.warning("announce.failed", status=status.value, detail=detail)
    return Announcement(status, detail)
