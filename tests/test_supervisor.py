from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.errors import Unavailable
from daemon.supervisor import AlreadyRunning, Supervisor
from tests.support import settings_for


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def test_watchdog_vouches_only_while_nothing_is_overdue(root: Path) -> None:
    clock = Clock()
    async with Supervisor(settings_for(root), clock=clock) as sup:
        assert sup.alive()
        clock.offset = timedelta(minutes=10)  # health (every 5m) due and not picked up
        assert not sup.alive()
        await sup.scheduler.pause(None)
        assert sup.alive(), "paused jobs are not overdue"


async def test_one_supervisor_per_state_directory(root: Path) -> None:
    async with Supervisor(settings_for(root)):
        other = Supervisor(settings_for(root, OPENCLAW_INFRA_SOCKET_PATH=str(root / "t.sock")))
        with pytest.raises(AlreadyRunning, match="another infrad already runs"):
            await other.start()


async def test_a_failed_start_releases_everything(root: Path) -> None:
    blocker = root / "s.sock"
    blocker.write_text("not a socket")
    sup = Supervisor(settings_for(root))
    with pytest.raises(Unavailable, match="is not a socket"):
        await sup.start()
    blocker.unlink()
    async with Supervisor(settings_for(root)) as again:
        assert again.scheduler.is_running()


async def test_a_caught_up_health_run_sees_the_scheduler_running(root: Path) -> None:
    from stores.runlog import RunLog, RunStatus, RunTrigger
    from tests.inprocess import settle

    state = root / "state"
    state.mkdir(mode=0o700)
    log = RunLog(state / "runs.sqlite")
    log.set_anchor("health", datetime.now(UTC) - timedelta(minutes=12))  # due while down
    log.close()
    async with Supervisor(settings_for(root)) as sup:
        await settle(lambda: bool(sup.run_log.runs("health", status=RunStatus.SUCCESS)))
        (run,) = sup.run_log.runs("health")
        assert run.trigger is RunTrigger.CATCHUP
        checks = {c["name"]: c["status"] for c in run.stats["checks"]}
        assert checks["scheduler"] == "ok"
