"""The backup methods of the socket API: list, verify, prune. (A backup is made by triggering
the ``backup`` job; ``infractl backup now`` does that and follows the run.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from daemon.api.host import Daemon
from daemon.errors import Busy, Forbidden, JobFailed, NotConfigured, NotFound
from jobs.base import Progress
from stores.backup.config import BackupConfig
from stores.backup.crypto import Keys
from stores.backup.errors import BackupBusy, BackupNotFound, DiskFull, KeyProblem
from stores.backup.repo import BackupDir
from stores.backup.verify import verify
from stores.backup.writeback import configured_workspaces

NAME = r"^openclaw-infra-\d{8}T\d{6}Z(-\d{1,3})?$"
#: A prune waits this long for a backup being written to finish, then says so.
PRUNE_WAIT_S = 5.0
T = TypeVar("T")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VerifyParams(_Params):
    name: str | None = Field(None, pattern=NAME, description="default: the newest backup")


class PruneParams(_Params):
    dry_run: bool = False


class BackupMethods:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, tuple[type[BaseModel], Any]]:
        return {
            "backup.list": (_Params, self.backups),
            "backup.verify": (VerifyParams, self.verify),
            "backup.prune": (PruneParams, self.prune),
            "backup.where": (_Params, self.where),
        }

    @property
    def config(self) -> BackupConfig:
        config = self.daemon.job_context.backup
        if config is None:
            raise NotConfigured("backups are not configured in this daemon")
        return config

    async def backups(self, _: _Params) -> dict[str, Any]:
        """Each backup with when and by what it was last verified, and why retention keeps it
        (empty: the next prune removes it)."""
        config = self.config
        repo = BackupDir(config.dir)
        now = self.daemon.clock()
        backups, decided = await _call(lambda: (repo.backups(), repo.plan(config.retention, now)))
        return {
            "dir": str(config.dir),
            "retention": asdict(config.retention),
            "backups": [
                {**b.to_dict(), "kept": list(decided.keep.get(b.name, ()))} for b in backups
            ],
        }

    async def where(self, _: _Params) -> dict[str, Any]:
        """Where this daemon keeps its state and backups and where the agents' workspaces are:
        what ``infractl backup restore`` needs to restore what this daemon backed up. Paths
        only; no key or passphrase ever leaves the daemon."""
        config = self.config
        source = self.daemon.job_context.openclaw
        workspaces: dict[str, str] = {}
        if source is not None:
            found = await _call(lambda: configured_workspaces(source))
            workspaces = {agent: str(path) for agent, path in found.items()}
        return {
            "state_dir": str(self.daemon.job_context.state_dir),
            "backup_dir": str(config.dir),
            "key_file": str(config.key_file) if config.key_file else None,
            "encrypted": bool(config.passphrase or config.key_file),
            "workspaces": workspaces,
        }

    async def verify(self, params: VerifyParams) -> dict[str, Any]:
        config = self.config
        repo = BackupDir(config.dir)
        keys = Keys(config.passphrase, config.key_file)
        backup = await _call(repo.get, params.name)
        report = await _call(
            lambda: verify(repo, backup, keys, self.daemon.clock(), Progress(), by="verify")
        )
        return report.to_dict()

    async def prune(self, params: PruneParams) -> dict[str, Any]:
        config = self.config
        repo = BackupDir(config.dir)

        def prune() -> Any:
            with repo.locked(timeout=PRUNE_WAIT_S):
                return repo.prune(config.retention, self.daemon.clock(), dry_run=params.dry_run)

        decided = await _call(prune)
        return {
            "dry_run": params.dry_run,
            "kept": [{"name": n, "reasons": list(r)} for n, r in decided.keep.items()],
            "removed": list(decided.remove),
        }


async def _call(func: Callable[..., T], *args: Any) -> T:
    """Run blocking backup code in a thread; its errors become the socket's error codes."""
    try:
        return await asyncio.to_thread(func, *args)
    except BackupNotFound as exc:
        raise NotFound(str(exc)) from None
    except KeyProblem as exc:
        raise Forbidden(str(exc)) from None
    except BackupBusy as exc:
        raise Busy(str(exc)) from None
    except DiskFull as exc:
        raise JobFailed(str(exc)) from None
