"""Alerts: one message when something goes wrong, one when it is right again, never a flood.

The run history is the source: every run (scheduled, manual, caught up) and every missed run
is recorded there before anything else sees it, so the watcher reads new records instead of
being told by the runner and the scheduler. Three conditions, each a key that is either
active or not, so that a job failing every minute alerts once:

- ``job:<name>``: N failed runs in a row, or a missed run; cleared by its next success.
- ``health``: the scheduled health report turned degraded or failed; cleared when ok again.
  Job checks and the bot's own check are left out: jobs have the rule above (so one failure
  does not page), and an alert about Telegram cannot travel over Telegram.
- whatever key a job passes to ``outbox.alert``: sent at most once per window.

On top, at most ``limit`` messages per ``window``. An alert held back by the limit, or not
delivered because Telegram is down, is tried again while its condition lasts; a recovery is
sent only for an alert that was delivered, and tried again until it is (if the condition comes
back first, the person was never told it had gone, so neither message is sent).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.logs import get_logger
from jobs.base import Clock
from stores.counts import count
from stores.runlog import FAILURES, JobRun, JobState, RunLog, RunStatus

log = get_logger(__name__)

#: Delivers one alert text to the person; True when at least one chat got it.
Send = Callable[[str], Awaitable[bool]]

_BAD = ("degraded", "failed")
#: How many recent runs one check reads; more finish between two checks only in a storm.
_BATCH = 200


@dataclass(frozen=True)
class AlertPolicy:
    failures_in_a_row: int = 3
    limit: int = 5
    window: timedelta = timedelta(hours=1)


@dataclass
class _Active:
    text: str
    delivered: bool = False


class Alerts:
    def __init__(self, policy: AlertPolicy, run_log: RunLog, send: Send, clock: Clock) -> None:
        self.policy = policy
        self.run_log = run_log
        self._send = send
        self._clock = clock
        self._active: dict[str, _Active] = {}
        #: Recoveries of delivered alerts, not sent yet (held back, or Telegram down).
        self._recoveries: dict[str, str] = {}
        self._sent_at: deque[datetime] = deque()
        self._notified: dict[str, datetime] = {}
        self._lost = 0
        self._cursor: int | None = None
        self._seen: set[int] = set()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Alerts(active={sorted(self._active)}, cursor={self._cursor})"

    @property
    def active(self) -> dict[str, bool]:
        """Active conditions and whether their alert reached the person."""
        return {key: state.delivered for key, state in self._active.items()}

    async def begin(self) -> None:
        """Start from the runs recorded so far: what happened before we watched is history."""
        runs = await asyncio.to_thread(self.run_log.runs, None, 1)
        self._cursor = runs[0].run_id if runs else 0

    async def check(self) -> None:
        """Read the runs finished since the last check, then retry what is undelivered."""
        async with self._lock:
            if self._cursor is None:
                await self.begin()
            for run, states in await asyncio.to_thread(self._new_runs):
                await self._observe(run, states)
            await self._retry()

    async def notify(self, key: str, text: str) -> None:
        """A job's own alert (``outbox.alert``): once per window for one key."""
        async with self._lock:
            now = self._clock()
            last = self._notified.get(key)
            if last is not None and now - last < self.policy.window:
                log.info("alert.repeat_dropped", key=key)
                return
            if await self._emit(text):
                self._notified[key] = now
            else:
                self._lost += 1

    def _new_runs(self) -> list[tuple[JobRun, dict[str, JobState]]]:
        assert self._cursor is not None
        recent = self.run_log.runs(None, _BATCH)
        fresh = sorted(
            (r for r in recent if r.run_id > self._cursor and r.run_id not in self._seen),
            key=lambda r: r.run_id,
        )
        finished = [r for r in fresh if r.status is not RunStatus.RUNNING]
        self._seen.update(r.run_id for r in finished)
        going = [r.run_id for r in fresh if r.status is RunStatus.RUNNING]
        # Everything below the oldest run still going is done: forget it and move on.
        horizon = min(going) - 1 if going else max((r.run_id for r in fresh), default=self._cursor)
        self._cursor = max(self._cursor, horizon)
        self._seen = {run_id for run_id in self._seen if run_id > self._cursor}
        states = self.run_log.states() if finished else {}
        return [(run, states) for run in finished]

    async def _observe(self, run: JobRun, states: dict[str, JobState]) -> None:
        key = f"job:{run.job}"
        if run.status in FAILURES:
            state = states.get(run.job)
            failed = state.consecutive_failures if state else 1
            if failed >= self.policy.failures_in_a_row:
                error = f": {run.error_message}" if run.error_message else ""
                times = f" {count(failed, 'time')} in a row" if failed > 1 else ""
                await self._raise(key, f"❌ {run.job} failed{times}{error}")
        elif run.status is RunStatus.MISSED:
            when = run.scheduled_for.isoformat(timespec="minutes") if run.scheduled_for else "?"
            await self._raise(key, f"⚠️ {run.job}: the run due {when} was missed")
        elif run.status is RunStatus.SUCCESS:
            await self._clear(key, f"✅ {run.job} succeeded again")
            if run.job == "health":
                await self._health(run)

    async def _health(self, run: JobRun) -> None:
        checks = run.stats.get("checks") or []
        bad = [
            c
            for c in checks
            if c.get("status") in _BAD
            and c.get("name") != "bot"
            and "job:" not in c.get("name", "")
        ]
        if bad:
            detail = "; ".join(f"{c['name']}: {c.get('detail', '')}" for c in bad)
            await self._raise("health", f"⚠️ health degraded: {detail}")
        else:
            await self._clear("health", "✅ health is ok again")

    async def _raise(self, key: str, text: str) -> None:
        if key in self._active:
            return
        log.warning("alert.raised", key=key)
        state = self._active[key] = _Active(text)
        if self._recoveries.pop(key, None) is not None:
            state.delivered = True  # its last alert still stands as far as the person knows
            return
        state.delivered = await self._emit(text)

    async def _clear(self, key: str, text: str) -> None:
        state = self._active.pop(key, None)
        if state is None:
            return
        log.info("alert.cleared", key=key, delivered=state.delivered)
        if not state.delivered:
            self._lost += 1
        elif not await self._emit(text):
            self._recoveries[key] = text

    async def _retry(self) -> None:
        for key, text in list(self._recoveries.items()):
            if await self._emit(text, again=True):
                del self._recoveries[key]
        for state in self._active.values():
            if not state.delivered:
                state.delivered = await self._emit(state.text, again=True)

    async def _emit(self, text: str, *, again: bool = False) -> bool:
        now = self._clock()
        while self._sent_at and now - self._sent_at[0] >= self.policy.window:
            self._sent_at.popleft()
        if len(self._sent_at) >= self.policy.limit:
            if not again:
                log.info("alert.held_back", limit=self.policy.limit)
            return False
        if self._lost:
            text += f"\n(and {self._lost} earlier alert(s) that could not be sent)"
        if not await self._send(text):
            return False
        self._sent_at.append(now)
        self._lost = 0
        return True
