"""The LLM methods of the socket API: ``refine`` (three-pass prompting) and its history."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.api.host import Daemon
from daemon.errors import InfraError, JobFailed, NotConfigured, Unavailable
from jobs.llm import LLMError, LLMNotConfigured, LLMUnavailable
from jobs.refine import refine
from jobs.three_pass import Mode


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RefineParams(_Params):
    prompt: str = Field(min_length=1, max_length=20_000)
    system: str = Field("", max_length=20_000)
    mode: Literal["three-pass", "single-pass"] = "three-pass"


class RefineHistoryParams(_Params):
    limit: int = Field(20, ge=1, le=500)
    purpose: str | None = Field(None, min_length=1, max_length=64)


class LLMMethods:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, tuple[type[BaseModel], Any]]:
        return {
            "refine": (RefineParams, self.refine),
            "refine.history": (RefineHistoryParams, self.history),
        }

    async def refine(self, params: RefineParams) -> dict[str, Any]:
        try:
            result, record = await refine(
                self.daemon.llm,
                self.daemon.llm_history,
                clock=self.daemon.clock,
                prompt=params.prompt,
                system=params.system,
                mode=Mode(params.mode),
            )
        except LLMError as exc:
            raise _infra_error(exc) from None
        return {**result.model_dump(mode="json"), "history_id": record.id}

    async def history(self, params: RefineHistoryParams) -> dict[str, Any]:
        records = await asyncio.to_thread(
            self.daemon.llm_history.recent, params.limit, params.purpose
        )
        return {"results": [record.to_dict() for record in records]}


def _infra_error(exc: LLMError) -> InfraError:
    """Not configured -> not_configured (exit 20); the API down -> unavailable (3); anything
    else (refused, an unreadable critique) -> job_failed (18). Messages are already redacted."""
    data = {"status": exc.status} if exc.status is not None else None
    if isinstance(exc, LLMNotConfigured):
        return NotConfigured(exc.message)
    if isinstance(exc, LLMUnavailable):
        return Unavailable(exc.message, data=data)
    return JobFailed(f"refine failed: {exc.message}", data=data)
