"""Three-pass prompting with a memory: every result, and every failure, goes into the history.

``refine`` is what the daemon's ``refine`` socket method calls; a job that runs ``three_pass``
itself (summarize) records with ``remember`` / ``remember_failure`` so that its results are
listed next to the manual ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobs.base import Clock
from jobs.llm import LLMClient, LLMError, LLMNotConfigured, LLMUsage
from jobs.three_pass import CritiqueMalformed, Mode, ThreePassResult, three_pass
from stores.llm_history import LLMHistory, LLMResultRecord


async def refine(
    client: LLMClient | None,
    history: LLMHistory,
    *,
    clock: Clock,
    prompt: str,
    system: str = "",
    data: str | None = None,
    mode: Mode = Mode.THREE,
    purpose: str = "refine",
    run_id: int | None = None,
    usage: LLMUsage | None = None,
) -> tuple[ThreePassResult, LLMResultRecord]:
    """Run the passes and record the outcome. Raises ``LLMError`` after recording it;
    ``LLMNotConfigured`` (recorded nowhere: nothing was tried) when there is no client."""
    if client is None:
        raise LLMNotConfigured(
            "no Anthropic API key configured (OPENCLAW_INFRA_ANTHROPIC_API_KEY); refine needs one"
        )
    try:
        result = await three_pass(
            client, system=system, prompt=prompt, data=data, mode=mode, purpose=purpose, usage=usage
        )
    except LLMError as exc:
        await remember_failure(
            history,
            clock,
            exc,
            mode=mode,
            purpose=purpose,
            prompt=prompt,
            system=system,
            run_id=run_id,
        )
        raise
    record = await remember(
        history, clock, result, purpose=purpose, prompt=prompt, system=system, run_id=run_id
    )
    return result, record


async def remember(
    history: LLMHistory,
    clock: Clock,
    result: ThreePassResult,
    *,
    purpose: str,
    prompt: str,
    system: str = "",
    run_id: int | None = None,
) -> LLMResultRecord:
    fields: dict[str, Any] = {
        "created_at": clock(),
        "purpose": purpose,
        "mode": result.mode.value,
        "run_id": run_id,
        "prompt": prompt,
        "system": system,
        "draft": result.draft.text,
        "critique": result.critique.model_dump(mode="json") if result.critique else None,
        "refined": result.refined.text if result.refined else None,
        "final": result.final,
        "usage": passes_usage(result),
        "latency_ms": result.latency_ms,
    }
    return await asyncio.to_thread(lambda: history.record(**fields))


async def remember_failure(
    history: LLMHistory,
    clock: Clock,
    error: LLMError,
    *,
    mode: Mode,
    purpose: str,
    prompt: str,
    system: str = "",
    run_id: int | None = None,
) -> LLMResultRecord:
    """A failed generation, with what it got as far as (the draft, the critic's answers)."""
    fields: dict[str, Any] = {
        "created_at": clock(),
        "purpose": purpose,
        "mode": mode.value,
        "run_id": run_id,
        "prompt": prompt,
        "system": system,
        "error": f"{type(error).__name__}: {error.message}",
    }
    if isinstance(error, CritiqueMalformed):
        fields["draft"] = error.draft.text
        fields["critique"] = {"malformed": error.replies}
        fields["usage"] = {
            "draft": error.draft.stats.model_dump(mode="json"),
            "critique": error.stats.model_dump(mode="json"),
        }
    return await asyncio.to_thread(lambda: history.record(**fields))


def passes_usage(result: ThreePassResult) -> dict[str, Any]:
    """Per pass and in total: tokens, cost, latency, calls."""
    passes = {"draft": result.draft, "critique": result.critique, "refine": result.refined}
    usage: dict[str, Any] = {
        name: done.stats.model_dump(mode="json") for name, done in passes.items() if done
    }
    usage["total"] = result.usage.model_dump(mode="json")
    return usage
