"""What a health check says: a status per component and the report that gathers them.

Below ``jobs.base`` (whose context carries the daemon's component checks) and ``jobs.health``
(which runs them), so neither imports the other for these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"


_RANK = {HealthStatus.OK: 0, HealthStatus.DEGRADED: 1, HealthStatus.FAILED: 2}


@dataclass(frozen=True)
class HealthCheck:
    name: str
    status: HealthStatus
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


@dataclass(frozen=True)
class HealthReport:
    checked_at: datetime
    checks: list[HealthCheck] = field(default_factory=list)

    @property
    def status(self) -> HealthStatus:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default=HealthStatus.OK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "checked_at": self.checked_at.isoformat(),
            "checks": [c.to_dict() for c in self.checks],
        }
