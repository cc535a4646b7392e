"""Three-pass prompting: draft, critique, refine.

The draft is written (temperature 0.7); a critic lists concrete problems with it as JSON, which
is parsed and validated (0.5); the draft is rewritten against that list (0.6). A critique that
finds nothing skips the rewrite, and the result says so. A critique that is not valid JSON is
asked for once more, with the schema spelled out, and then raised as ``CritiqueMalformed``:
never passed on as if it had found nothing. ``Mode.SINGLE`` stops after the draft.

Source material (a transcript) travels as a delimited data block, and so do the draft and the
critique when they are handed on: the model is told that what is inside the blocks is data,
so text in a transcript cannot change what the passes do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobs.llm import (
    ChatMessage,
    Completion,
    LLMClient,
    LLMError,
    LLMUsage,
    Usage,
    as_data,
    assistant,
    data_rules,
    user,
)

DRAFT_TEMPERATURE = 0.7
CRITIQUE_TEMPERATURE = 0.5
REFINE_TEMPERATURE = 0.6


class Mode(StrEnum):
    THREE = "three-pass"
    SINGLE = "single-pass"


class CritiqueMalformed(LLMError):
    """The critic's answer was not the JSON asked for, twice. Carries both answers, the draft
    (which a caller may still use, knowing it was not reviewed) and what the critique cost."""

    def __init__(
        self, message: str, *, replies: list[str], draft: ThreePassDraft, stats: PassStats
    ) -> None:
        super().__init__(message)
        self.replies = replies
        self.draft = draft
        self.stats = stats


# --- results --------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PassStats(_Frozen):
    """What one pass cost: tokens, money, time, and how many calls it took."""

    model: str
    #: The pass's temperature (sent only where the config allows, see ``jobs.llm``).
    temperature: float | None
    usage: Usage
    latency_ms: float
    calls: int = 1
    #: Retries the SDK made inside those calls (overload, rate limits, server errors).
    retries: int = 0
    stop_reason: str | None = None

    @classmethod
    def of(cls, *completions: Completion) -> PassStats:
        usage = Usage()
        for completion in completions:
            usage = usage + completion.usage
        last = completions[-1]
        return cls(
            model=last.model,
            temperature=last.temperature,
            usage=usage,
            latency_ms=round(sum(c.latency_ms for c in completions), 1),
            calls=len(completions),
            retries=sum(c.retries for c in completions),
            stop_reason=last.stop_reason,
        )


class Problem(_Frozen):
    issue: str = Field(min_length=1, description="what is wrong, concretely")
    fix: str = Field(min_length=1, description="what to change")


class CritiqueReply(BaseModel):
    """The JSON the critic must answer with; extra keys are tolerated, missing ones are not."""

    model_config = ConfigDict(frozen=True)

    problems: list[Problem]
    verdict: Literal["ok", "revise"]

    @model_validator(mode="after")
    def _consistent(self) -> CritiqueReply:
        if self.verdict == "ok" and self.problems:
            raise ValueError('verdict "ok" but problems listed; use "revise"')
        if self.verdict == "revise" and not self.problems:
            raise ValueError('verdict "revise" but no problems listed; use "ok"')
        return self


class ThreePassDraft(_Frozen):
    text: str
    stats: PassStats


class ThreePassCritique(_Frozen):
    problems: list[Problem]
    verdict: Literal["ok", "revise"]
    #: The critic's answer as received (the last one, if it had to be asked twice).
    raw: str
    stats: PassStats

    @property
    def needs_refine(self) -> bool:
        return bool(self.problems)


class ThreePassRefined(_Frozen):
    text: str
    stats: PassStats


class ThreePassResult(_Frozen):
    mode: Mode
    draft: ThreePassDraft
    critique: ThreePassCritique | None = None
    refined: ThreePassRefined | None = None
    refine_skipped: bool = False
    skip_reason: str | None = None
    #: The text to use: the refined one, else the draft.
    final: str
    #: All passes together.
    usage: Usage
    latency_ms: float

    @classmethod
    def build(
        cls,
        mode: Mode,
        draft: ThreePassDraft,
        critique: ThreePassCritique | None = None,
        refined: ThreePassRefined | None = None,
        skip_reason: str | None = None,
    ) -> ThreePassResult:
        passes = [p.stats for p in (draft, critique, refined) if p is not None]
        usage = Usage()
        for stats in passes:
            usage = usage + stats.usage
        return cls(
            mode=mode,
            draft=draft,
            critique=critique,
            refined=refined,
            refine_skipped=refined is None,
            skip_reason=skip_reason,
            final=refined.text if refined is not None else draft.text,
            usage=usage,
            latency_ms=round(sum(s.latency_ms for s in passes), 1),
        )


# --- prompts --------------------------------------------------------------------------------

CRITIC_SYSTEM = (
    "You are a demanding reviewer. You are given a task, the draft someone wrote for it and,"
    " when there is one, the source material the draft is based on. List the concrete problems"
    " of the draft: facts that the source does not support or contradicts, things the task asked"
    " for that are missing, errors, unclear or padded passages. Name each problem specifically"
    " and say how to fix it. Do not list matters of taste. If nothing needs fixing, say so."
    " Answer with one JSON object and nothing else: no prose, no code fence."
)

CRITIQUE_SHAPE = (
    '{"problems": [{"issue": "<what is wrong>", "fix": "<what to change>"}],'
    ' "verdict": "revise"}\n'
    'or, when nothing needs fixing: {"problems": [], "verdict": "ok"}'
)


def _with_rules(system: str, tags: list[str]) -> str:
    if not tags:
        return system
    return f"{system}\n\n{data_rules(*tags)}" if system else data_rules(*tags)


@dataclass(frozen=True)
class Task:
    """What is asked: standing instructions, the request, and the material it is about."""

    system: str
    prompt: str
    data: str | None = None
    tag: str = "transcript"

    def tags(self, *more: str) -> list[str]:
        return [self.tag, *more] if self.data is not None else list(more)


def draft_request(task: Task) -> tuple[str, list[ChatMessage]]:
    if task.data is None:
        return task.system, [user(task.prompt)]
    content = f"{as_data(task.data, task.tag)}\n\n{task.prompt}"
    return _with_rules(task.system, task.tags()), [user(content)]


def critique_request(task: Task, draft: str) -> tuple[str, list[ChatMessage]]:
    parts = [f"The task the draft was written for:\n\n{task.prompt}"]
    if task.system:
        parts.append(f"The writer's standing instructions:\n\n{task.system}")
    if task.data is not None:
        parts.append(f"The source material:\n\n{as_data(task.data, task.tag)}")
    parts.append(f"The draft:\n\n{as_data(draft, 'draft')}")
    parts.append(
        "Review the draft against the task"
        + (" and the source material" if task.data is not None else "")
        + f". Answer with JSON of exactly this shape:\n{CRITIQUE_SHAPE}"
    )
    return _with_rules(CRITIC_SYSTEM, task.tags("draft")), [user("\n\n".join(parts))]


def stricter(problem: str) -> str:
    """The follow-up when the critic's answer did not parse."""
    schema = json.dumps(CritiqueReply.model_json_schema(), separators=(",", ":"))
    return (
        f"Your answer was not valid: {problem}. Answer again with only a JSON object that"
        f" matches this JSON schema, with no other text and no code fence:\n{schema}\n"
        f"For example:\n{CRITIQUE_SHAPE}"
    )


def refine_request(
    task: Task, draft: str, problems: list[Problem]
) -> tuple[str, list[ChatMessage]]:
    listed = "\n".join(f"{n}. {p.issue}\n   Fix: {p.fix}" for n, p in enumerate(problems, 1))
    parts = [as_data(task.data, task.tag)] if task.data is not None else []
    parts += [
        f"The task:\n\n{task.prompt}",
        f"A first draft:\n\n{as_data(draft, 'draft')}",
        f"A review found these problems in it:\n\n{as_data(listed, 'critique')}",
        "Rewrite the draft so that it does the task and every listed problem is fixed."
        " Keep what was right. Answer with the rewritten text only.",
    ]
    system = _with_rules(task.system, task.tags("draft", "critique"))
    return system, [user("\n\n".join(parts))]


# --- the passes -----------------------------------------------------------------------------


def parse_critique(text: str) -> CritiqueReply:
    """The critic's JSON, tolerating a code fence or a sentence around the object.
    Raises ``ValueError`` (``ValidationError`` is one) when there is no valid object."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    return CritiqueReply.model_validate_json(body[start : end + 1])


def _problem_of(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the object"
        return f"{where}: {first['msg']}"
    return str(exc)


class ThreePass:
    """One three-pass (or single-pass) generation for a task."""

    def __init__(
        self, client: LLMClient, task: Task, *, purpose: str, usage: LLMUsage | None
    ) -> None:
        self.client = client
        self.task = task
        self.purpose = purpose
        self.usage = usage

    async def run(self, mode: Mode) -> ThreePassResult:
        draft = await self.draft()
        if mode is Mode.SINGLE:
            return ThreePassResult.build(mode, draft, skip_reason="single-pass mode")
        critique = await self.critique(draft)
        if not critique.needs_refine:
            return ThreePassResult.build(
                mode, draft, critique, skip_reason="the critique found nothing to fix"
            )
        refined = await self.refine(draft, critique)
        return ThreePassResult.build(mode, draft, critique, refined)

    async def _call(
        self, system: str, messages: list[ChatMessage], temperature: float, step: str
    ) -> Completion:
        return await self.client.complete(
            system=system,
            messages=messages,
            temperature=temperature,
            purpose=f"{self.purpose}.{step}",
            usage=self.usage,
        )

    async def draft(self) -> ThreePassDraft:
        system, messages = draft_request(self.task)
        done = await self._call(system, messages, DRAFT_TEMPERATURE, "draft")
        return ThreePassDraft(text=done.text, stats=PassStats.of(done))

    async def critique(self, draft: ThreePassDraft) -> ThreePassCritique:
        system, messages = critique_request(self.task, draft.text)
        first = await self._call(system, messages, CRITIQUE_TEMPERATURE, "critique")
        try:
            return _critique(parse_critique(first.text), first)
        except ValueError as exc:
            problem = _problem_of(exc)
        messages = [*messages, assistant(first.text), user(stricter(problem))]
        second = await self._call(system, messages, CRITIQUE_TEMPERATURE, "critique-retry")
        try:
            return _critique(parse_critique(second.text), first, second)
        except ValueError as exc:
            raise CritiqueMalformed(
                f"the critique was not valid JSON twice ({problem}; then {_problem_of(exc)})",
                replies=[first.text, second.text],
                draft=draft,
                stats=PassStats.of(first, second),
            ) from None

    async def refine(self, draft: ThreePassDraft, critique: ThreePassCritique) -> ThreePassRefined:
        system, messages = refine_request(self.task, draft.text, critique.problems)
        done = await self._call(system, messages, REFINE_TEMPERATURE, "refine")
        return ThreePassRefined(text=done.text, stats=PassStats.of(done))


def _critique(reply: CritiqueReply, *completions: Completion) -> ThreePassCritique:
    return ThreePassCritique(
        problems=reply.problems,
        verdict=reply.verdict,
        raw=completions[-1].text,
        stats=PassStats.of(*completions),
    )


async def three_pass(
    client: LLMClient,
    *,
    system: str,
    prompt: str,
    data: str | None = None,
    data_tag: str = "transcript",
    mode: Mode = Mode.THREE,
    purpose: str = "refine",
    usage: LLMUsage | None = None,
) -> ThreePassResult:
    """Draft, critique, refine. ``data`` (untrusted text, e.g. a transcript) goes in as a
    ``<data_tag>`` block. Raises ``LLMError`` (``CritiqueMalformed`` is one)."""
    task = Task(system=system, prompt=prompt, data=data, tag=data_tag)
    return await ThreePass(client, task, purpose=purpose, usage=usage).run(mode)
