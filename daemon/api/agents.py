"""OpenClaw's agents as the socket methods see them: one lookup, and one way to refuse an
agent id that no one knows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from daemon.api.host import Daemon
from daemon.errors import BadRequest
from stores.openclaw.home import Agent, discover


async def openclaw_agents(daemon: Daemon) -> list[Agent]:
    """The agents of the OpenClaw home the daemon reads, as found now (none without a home)."""
    source = daemon.job_context.openclaw
    if source is None:
        return []
    home = await asyncio.to_thread(discover, source)
    return list(home.agents)


def no_such_agents(unknown: Iterable[str], known: Iterable[str]) -> BadRequest:
    return BadRequest(f"no agent {', '.join(unknown)}; OpenClaw knows {', '.join(known) or 'none'}")
