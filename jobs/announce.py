"""Telling OpenClaw that something is waiting: ``openclaw system event --text ... --mode now``.

The event goes to the gateway's main session and wakes it at once (``--mode now``); the text
says where the note is, the note itself says the rest. Run without a shell (the text is an
argument, never parsed), with stdin closed and a timeout after which the process is killed. A
missing command, a failure or a timeout is an outcome to report in the run's stats, never an
exception: the notes are written either way and OpenClaw's indexer finds them.
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


def announce_argv(command: str, text: str) -> list[str]:
    return [command, "system", "event", "--text", text[:MAX_TEXT], "--mode", "now"]


async def announce(
    command: str, text: str, *, within: float, env: Mapping[str, str]
) -> Announcement:
    """``env`` is the child's whole environment (``stores.childenv``): never the daemon's."""
    argv = announce_argv(command, text)
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


def _outcome(status: AnnounceStatus, detail: str = "") -> Announcement:
    if status is AnnounceStatus.SENT:
        log.info("announce.sent")
    else:
        log.warning("announce.failed", status=status.value, detail=detail)
    return Announcement(status, detail)
