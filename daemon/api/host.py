"""What the socket methods need of the running daemon, as a protocol.

The supervisor builds the API and satisfies this protocol; the methods name only the protocol,
so the API never imports the supervisor and the two do not depend on each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobs.base import Clock, JobContext

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.runner import JobRunner
    from daemon.scheduler import JobScheduler
    from jobs.llm import LLMClient
    from stores.coordination.feedback import FeedbackStore
    from stores.llm_history import LLMHistory
    from stores.memory.store import MemoryStore  # chromadb is heavy; only the daemon loads it
    from stores.runlog import RunLog


class DashboardInfo(Protocol):
    """What the API tells of the dashboard: where it listens, or why it does not."""

    @property
    def address(self) -> str | None: ...

    @property
    def url(self) -> str | None: ...

    @property
    def error(self) -> str | None: ...


class Daemon(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def socket_path(self) -> Path: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def scheduler(self) -> JobScheduler: ...

    @property
    def runner(self) -> JobRunner: ...

    @property
    def run_log(self) -> RunLog: ...

    @property
    def job_context(self) -> JobContext: ...

    @property
    def memory(self) -> MemoryStore | None: ...

    @property
    def memory_error(self) -> str | None: ...

    @property
    def llm(self) -> LLMClient | None: ...

    @property
    def llm_history(self) -> LLMHistory: ...

    @property
    def feedback(self) -> FeedbackStore: ...

    @property
    def dashboard(self) -> DashboardInfo | None: ...

    async def reload(self) -> dict[str, Any]: ...

    async def reopen_memory(self, *, new_embedder: bool) -> None: ...
