"""The sync methods of the socket API: cross-agent signals, priorities and the mistakes log.

``signal.list`` and ``priorities`` first read what the agents' drop files gained, so that a
signal an agent just wrote shows at once, not only after the next daily sync. Agent ids are
checked against the agents OpenClaw knows, so a typo is refused instead of stored unseen.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from daemon.api.agents import no_such_agents, openclaw_agents
from daemon.api.host import Daemon
from daemon.api.moments import LATEST, parse_moment
from daemon.errors import BadRequest, NotConfigured, NotFound
from daemon.logs import get_logger
from jobs.announce import announce
from stores.coordination.drops import collect
from stores.coordination.mistakes import MistakeRule, MistakeStore, manual_mistake
from stores.coordination.priorities import load_priorities
from stores.coordination.signals import (
    ALL,
    CrossAgentSignal,
    SignalKind,
    SignalPriority,
    SignalStore,
    new_signal,
    normalise_targets,
    parse_expiry,
)

log = get_logger(__name__)

AGENT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def _agent_id(value: str) -> str:
    if not re.fullmatch(AGENT_ID, value):
        raise ValueError(f"not an agent id: {value!r}")
    return value


def _signal_id(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{12}", value):
        raise ValueError(f"not a signal id: {value!r} (12 hex digits, see `infractl signal list`)")
    return value


def _words(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank")
    return value


#: Checked by a validator, not ``pattern=``: the API's generic message for a pattern speaks of
#: job names.
AgentId = Annotated[str, AfterValidator(_agent_id)]
SignalId = Annotated[str, AfterValidator(_signal_id)]
#: Free text that must say something: whitespace alone would be stored as an empty note.
Words = Annotated[str, AfterValidator(_words)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalAddParams(_Params):
    source: AgentId = Field(alias="from")
    to: list[str] = Field(min_length=1, max_length=64)
    kind: SignalKind
    text: Words = Field(min_length=1, max_length=2000)
    priority: SignalPriority = SignalPriority.NORMAL
    expires: str | None = Field(None, max_length=64, description="3d, a date or time, never")

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [part for v in value for part in str(v).split(",") if part.strip()]
        return value

    @field_validator("to")
    @classmethod
    def _agent_ids(cls, value: list[str]) -> list[str]:
        return [t if t == ALL else _agent_id(t) for t in (v.strip().lower() for v in value)]


class SignalListParams(_Params):
    agent: AgentId | None = Field(None, description="addressed to this agent")
    source: AgentId | None = Field(None, alias="from")
    all: bool = Field(False, description="resolved and expired ones too")
    limit: int = Field(100, ge=1, le=1000)


class SignalResolveParams(_Params):
    id: SignalId
    note: str | None = Field(None, max_length=2000)


class PrioritiesParams(_Params):
    agent: AgentId | None = None


class MistakeAddParams(_Params):
    agent: AgentId
    text: Words = Field(min_length=1, max_length=4000)
    lesson: Words | None = Field(None, min_length=1, max_length=4000)


class MistakeListParams(_Params):
    agent: AgentId | None = None
    since: str | None = Field(
        None, max_length=64, description="YYYY-MM-DD, an ISO time, or an age like 7d"
    )
    rule: MistakeRule | None = None
    limit: int = Field(50, ge=1, le=1000)


class SyncMethods:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, tuple[type[BaseModel], Any]]:
        return {
            "signal.add": (SignalAddParams, self.signal_add),
            "signal.list": (SignalListParams, self.signal_list),
            "signal.resolve": (SignalResolveParams, self.signal_resolve),
            "priorities": (PrioritiesParams, self.priorities),
            "mistake.add": (MistakeAddParams, self.mistake_add),
            "mistake.list": (MistakeListParams, self.mistake_list),
        }

    @property
    def signals(self) -> SignalStore:
        store = self.daemon.job_context.signals
        if store is None:
            raise NotConfigured("the signal store is not open")
        return store

    @property
    def mistakes(self) -> MistakeStore:
        store = self.daemon.job_context.mistakes
        if store is None:
            raise NotConfigured("the mistakes log is not open")
        return store

    async def signal_add(self, params: SignalAddParams) -> dict[str, Any]:
        now = self.daemon.clock()
        await self._known(params.source, *params.to)
        targets = normalise_targets(params.to)
        if targets == (params.source,):
            raise BadRequest(f"signal.add: {params.source} would be signalling itself")
        expires_at = _expiry(params.expires, now, self.daemon.settings.zone)
        if expires_at is not None and expires_at <= now:
            raise BadRequest(
                f"signal.add: expires {params.expires!r} is already past; give a later date"
                " or a duration like 3d"
            )
        signal = new_signal(
            source=params.source,
            targets=targets,
            kind=params.kind,
            text=params.text,
            now=now,
            priority=params.priority,
            expires_at=expires_at,
            ttl=None if params.expires else self.daemon.job_context.sync.signal_ttl,
        )
        stored, created = await asyncio.to_thread(self.signals.add, signal, now)
        woken = await self._wake(stored) if created else {}
        return {"signal": stored.to_dict(now), "created": created, "woken": woken}

    async def _wake(self, signal: CrossAgentSignal) -> dict[str, dict[str, str]]:
        """An urgent signal reaches its agents now: each is woken in its main session."""
        sync = self.daemon.job_context.sync
        if sync.wake_on == "never" or signal.priority.rank < SignalPriority(sync.wake_on).rank:
            return {}
        targets = [a.id for a in await openclaw_agents(self.daemon) if signal.addressed_to(a.id)]
        text = (
            f"Urgent from {signal.source} (openclaw-infra signal {signal.id}): {signal.text}"
            " — see your signals (the signals tool or `infractl signal list`)."
        )
        within = sync.announce_timeout.total_seconds()
        woken = {}
        for agent in targets:
            told = await announce(
                sync.openclaw_command, text, agent=agent, within=within, env=sync.child_env
            )
            woken[agent] = told.to_dict()
            log.info("signal.woke", signal=signal.id, agent=agent, status=told.status.value)
        return woken

    async def signal_list(self, params: SignalListParams) -> dict[str, Any]:
        now = self.daemon.clock()
        problems = await self._collect(now)
        found = await asyncio.to_thread(
            lambda: self.signals.signals(
                now,
                to=params.agent,
                source=params.source,
                include_closed=params.all,
                limit=params.limit,
            )
        )
        return {"signals": [s.to_dict(now) for s in found], "problems": problems}

    async def signal_resolve(self, params: SignalResolveParams) -> dict[str, Any]:
        now = self.daemon.clock()
        try:
            signal = await asyncio.to_thread(self.signals.resolve, params.id, now, params.note)
        except KeyError:
            raise NotFound(f"no signal {params.id}") from None
        return {"signal": signal.to_dict(now)}

    async def priorities(self, params: PrioritiesParams) -> dict[str, Any]:
        now = self.daemon.clock()
        if params.agent is not None:
            await self._known(params.agent)
        problems = await self._collect(now)
        ctx = self.daemon.job_context
        ranked = await asyncio.to_thread(
            lambda: load_priorities(
                self.signals, now, agent=params.agent, feedback=ctx.feedback, mistakes=ctx.mistakes
            )
        )
        return {**ranked.to_dict(), "problems": problems}

    async def mistake_add(self, params: MistakeAddParams) -> dict[str, Any]:
        now = self.daemon.clock()
        await self._known(params.agent)
        entry = manual_mistake(params.agent, params.text, now, params.lesson)
        added = await asyncio.to_thread(self.mistakes.add, [entry], now)
        return {"mistake": entry.to_dict(), "created": bool(added)}

    async def mistake_list(self, params: MistakeListParams) -> dict[str, Any]:
        since = _since(params.since, self.daemon.clock(), self.daemon.settings.zone)
        found = await asyncio.to_thread(
            lambda: self.mistakes.mistakes(
                agent=params.agent, since=since, rule=params.rule, limit=params.limit
            )
        )
        return {"mistakes": [m.to_dict() for m in found]}

    async def _known(self, *agent_ids: str) -> None:
        known = [a.id for a in await openclaw_agents(self.daemon)]
        unknown = sorted({a for a in agent_ids if a != ALL and a not in known})
        if unknown:
            raise no_such_agents(unknown, known)

    async def _collect(self, now: datetime) -> list[str]:
        agents = [a for a in await openclaw_agents(self.daemon) if a.workspace.is_dir()]
        ttl = self.daemon.job_context.sync.signal_ttl
        zone = self.daemon.settings.zone
        collected = await asyncio.to_thread(collect, self.signals, agents, now, ttl, zone)
        for problem in collected.problems:
            log.warning("signal.skipped", where=problem.where, problem=problem.detail)
        return [str(p) for p in collected.problems]


def _expiry(text: str | None, now: datetime, zone: Any) -> datetime | None:
    if text is None:
        return None
    try:
        expires = parse_expiry(text, now, zone)
    except ValueError:
        raise BadRequest(
            f"expires: not an age, date or time: {text!r} (use 3d, 2026-11-01, or never)"
        ) from None
    except OverflowError:
        expires = LATEST + LATEST.resolution
    if expires is not None and expires > LATEST:
        raise BadRequest(f"expires: {text!r} is past the year 9000; say never instead")
    return expires


def _since(text: str | None, now: datetime, zone: Any) -> datetime | None:
    return None if text is None else parse_moment(text, "since", zone, now)
