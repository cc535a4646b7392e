"""Settings that keep a long-running daemon within bounds: how many socket connections it holds
and for how long, and how long each store keeps what it records.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ConfigDict, Field

from daemon.config.sections import Duration
from daemon.config.values import Section


class SocketSettings(Section):
    """Connections to the control socket. Over a cap, a client is answered ``busy`` and closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_connections: int = Field(
        256, ge=1, le=65_536, description="connections open at once, from all clients together"
    )
    max_per_peer: int = Field(
        32, ge=1, le=65_536, description="connections open at once from any one process"
    )
    idle_timeout: Duration = Field(
        timedelta(minutes=5),
        description="a connection that sends no complete request for this long is closed",
    )


class RetentionSettings(Section):
    """How long records are kept; the ``retention`` job deletes what is older."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runs: Duration = Field(timedelta(days=90), description="job runs older than this are deleted")
    keep_runs_per_job: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="the newest runs of each job, and its last failure, are kept at any age",
    )
    llm_history: Duration = Field(
        timedelta(days=90), description="refine and summary results older than this are deleted"
    )
    signals: Duration = Field(
        timedelta(days=30),
        description="resolved or expired signals are deleted this long after they closed",
    )
